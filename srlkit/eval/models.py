"""Model references for `srlkit eval` and how to load them.

A reference is `[LABEL=]REF` where REF is:
- `base` (also `bundled`, `smollm2`): the packaged SmolLM2-135M-Instruct;
- an srlkit run folder: `RUN/final/`, or `RUN/<phase>/<best|final>/` with `phase`/`pick`;
- a LoRA adapter folder (`adapter_config.json`): its base model plus the adapter, merged;
- any other folder or Hub id that transformers can load.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from srlkit.errors import DataError

BASE_ALIASES = ("base", "bundled", "smollm2")
_LABEL = re.compile(r"^([A-Za-z][\w.+-]*)=(.+)$")


@dataclass(frozen=True)
class ModelRef:
    label: str  # the column header in tables
    path: str  # what is loaded: a folder or a Hub id
    adapter: bool = False  # `path` is a peft adapter folder
    run_dir: Path | None = None  # set when the reference was an srlkit run


def is_run_dir(p: Path) -> bool:
    return p.is_dir() and ((p / "state.json").is_file() or (p / "metrics.jsonl").is_file())


def run_data_dir(run_dir: Path) -> Path | None:
    """The decomposed dataset a run trained on, read from its resolved config."""
    cfg = run_dir / "config.toml"
    if not cfg.is_file():
        return None
    from srlkit.fileio import read_text

    try:
        data = tomllib.loads(read_text(cfg, fix="restore the run's config.toml"))
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"'{cfg}' is not valid TOML ({e}); restore the run's config.toml") from None
    d = data.get("data") or data.get("train", {}).get("data")
    return Path(d) if d else None


def _folder_ref(label: str, p: Path, run_dir: Path | None = None) -> ModelRef:
    if (p / "adapter_config.json").is_file() and not (p / "config.json").is_file():
        return ModelRef(label, str(p), adapter=True, run_dir=run_dir)
    if (p / "config.json").is_file():
        return ModelRef(label, str(p), run_dir=run_dir)
    raise DataError(f"{p} is not a model folder (no config.json or adapter_config.json)")


def resolve_ref(spec: str, *, phase: str | None = None, pick: str = "final") -> ModelRef:
    """Turn a user reference into what to load; raises a one-line DataError when it cannot."""
    label, ref = spec, spec
    m = _LABEL.match(spec)
    if m and not Path(spec).exists():
        label, ref = m.group(1), m.group(2)
    if ref in BASE_ALIASES:
        from srlkit.assets import resolve_model

        return ModelRef(label, resolve_model(None))
    p = Path(ref)
    if label == spec:
        label = p.name if p.exists() else ref
    if is_run_dir(p):
        if label == p.name and phase:
            label = f"{p.name}:{phase}/{pick}"
        target = p / phase / pick if phase else p / "final"
        if not target.is_dir():
            hint = "pass --phase P --pick best|final" if not phase else "check the run's phases"
            raise DataError(f"run {p} has no {target.relative_to(p)}/ (unfinished run?); {hint}")
        return _folder_ref(label, target, run_dir=p)
    if p.is_dir():
        return _folder_ref(label, p)
    if p.exists() or ref.startswith((".", "/")) or ref.count("/") > 1:
        raise DataError(f"model '{ref}' is not a folder that transformers, peft or srlkit can load")
    return ModelRef(label, ref)  # a Hub id


def load(ref: ModelRef, *, device: str | None = None):
    """(model, tokenizer) in eval mode; adapters are merged into their base for speed."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from srlkit.fileio import read_json

    hf_logging.disable_progress_bar()  # our own bar is the one that matters
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        if ref.adapter:
            from peft import PeftModel

            cfg = read_json(Path(ref.path) / "adapter_config.json", fix="restore the adapter folder")
            base = cfg.get("base_model_name_or_path")
            if not base:
                raise DataError(f"{ref.path}/adapter_config.json names no base_model_name_or_path")
            model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
            model = PeftModel.from_pretrained(model, ref.path).merge_and_unload()
            tok_src = ref.path if (Path(ref.path) / "tokenizer_config.json").is_file() else base
        else:
            model = AutoModelForCausalLM.from_pretrained(ref.path, dtype=dtype)
            tok_src = ref.path
        tok = AutoTokenizer.from_pretrained(tok_src)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - missing, damaged or foreign files: the folder is not loadable
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise DataError(f"cannot load model '{ref.path}': {type(e).__name__}: {first}; check the model folder") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(device).eval()
    return model, tok
