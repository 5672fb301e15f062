"""The per-GPU memory estimate (`srlkit train --dry-run`) against parameter counts and measured peaks.

Measured peaks come from `tests/helpers/memory_probe.py` in a fresh process: two learner updates of a
fixed batch, full fine-tuning or LoRA in fp32 on CPU (the allocator's peak, read from the torch
profiler's memory events), or `torch.cuda.max_memory_allocated` on a GPU. The issue's bar: the
estimate within 20% of the measured peak, at two shapes, with and without checkpointing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from srlkit.train.memory import GiB, Shape, estimate
from tests.helpers import HELPERS

PROBE = HELPERS / "memory_probe.py"


def _measure(model_dir: Path, *cases: tuple[int, ...]) -> list[dict]:
    """Peaks of `cases` (mbs, prompt, completion, lora_r, ckpt), all in one fresh process."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    arg = ",".join(":".join(str(x) for x in c) for c in cases)
    r = subprocess.run([sys.executable, str(PROBE), str(model_dir), arg], env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    return [json.loads(x) for x in r.stdout.strip().splitlines() if x.startswith("{")]


def _estimate(model_dir: Path, mbs: int, p: int, c: int, lora_r: int = 0, ckpt: int = 0,
              dtype: str = "float32") -> float:
    shape = Shape.from_config(json.loads((Path(model_dir) / "config.json").read_text()))
    return estimate(shape, lora_r=lora_r or None, compute_dtype=dtype, micro_batch=mbs, prompt_len=p, completion_len=c,
                    grad_ckpt=bool(ckpt), accumulate=False).peak  # the probe's step is one micro-batch


@pytest.fixture(scope="module")
def wide_model_dir(tmp_path_factory, smollm2_dir) -> Path:
    """A 4-layer, 256-wide random Llama with a 4k vocabulary (the probe's token ids are small), so
    that the activations, not the embedding and the LM head, are most of the peak."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("models") / "wide"
    cfg = LlamaConfig(vocab_size=4096, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, pad_token_id=0,
                      bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(smollm2_dir).save_pretrained(out)
    return out


def test_parameter_count_is_the_models(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    shape = Shape.from_config(model.config)
    assert shape.params() == sum(p.numel() for p in model.parameters())
    qwen = Shape.from_config(dict(hidden_size=3584, num_hidden_layers=28, intermediate_size=18944, vocab_size=152064,
                                  num_attention_heads=28, num_key_value_heads=4, model_type="qwen2"))
    assert 7.60e9 < qwen.params() < 7.63e9  # Qwen2.5-7B: 7.61B


def test_packed_prompts_keep_one_prompt_per_group():
    shape = Shape(hidden=64, layers=2, intermediate=128, vocab=1000, heads=4, kv_heads=2)
    kw = dict(lora_r=None, compute_dtype="float32", micro_batch=16, prompt_len=300, completion_len=64)
    plain = estimate(shape, flex=True, **kw).parts["activations"]
    packed = estimate(shape, shared_prompts=8, flex=True, **kw).parts["activations"]
    # 16 rows x 364 tokens against 2 prompts x 300 + 16 completions x 64
    assert packed / plain == pytest.approx((2 * 300 + 16 * 64) / (16 * 364))
    # a dense kernel keeps a float [rows, S, S] mask per layer: 2 packed rows of 300 + 8 x 64
    dense = estimate(shape, shared_prompts=8, **kw).parts["activations"]
    assert dense - packed == pytest.approx(shape.layers * 2 * (300 + 8 * 64) ** 2 * 4)


def test_backends_divide_what_they_shard():
    shape = Shape(hidden=64, layers=2, intermediate=128, vocab=1000, heads=4, kv_heads=2)
    kw = dict(lora_r=None, compute_dtype="bfloat16", micro_batch=1, prompt_len=8, completion_len=8)
    ddp = estimate(shape, world_size=8, backend="ddp", **kw).parts
    z2 = estimate(shape, world_size=8, backend="zero2", **kw).parts
    fsdp = estimate(shape, world_size=8, backend="fsdp", **kw).parts
    assert ddp["optimizer"] == 8 * z2["optimizer"] == 8 * fsdp["optimizer"]
    assert ddp["weights"] == 8 * fsdp["weights"] and ddp["weights"] == shape.params() * 4  # fp32 master weights
    lora = estimate(shape, world_size=1, backend="ddp", **{**kw, "lora_r": 4}).parts
    assert lora["optimizer"] == shape.lora_params(4) * 8 and lora["weights"] < ddp["weights"]
    small = estimate(shape, world_size=1, card_bytes=1e5, **kw)
    assert any("WARNING" in n and "exceeds the card" in n for n in small.notes)


CASES = [(8, 128, 64, 0, 0), (8, 128, 64, 0, 1), (16, 64, 32, 8, 0), (16, 64, 32, 8, 1)]


def test_estimate_within_20_percent_of_the_allocator_peak(wide_model_dir):
    """Two shapes (full fine-tuning; LoRA), each with and without gradient checkpointing."""
    for got in _measure(wide_model_dir, *CASES):
        est = _estimate(wide_model_dir, *got["case"])
        assert 0.8 < est / got["peak"] < 1.2, (got["case"], est / 2**20, got["peak"] / 2**20)


@pytest.mark.slow  # the real SmolLM2-135M: ~3 GB of fp32 weights, grads and AdamW state
def test_estimate_matches_the_measured_peak_of_smollm2(smollm2_dir):
    for got in _measure(smollm2_dir, (2, 128, 128, 0, 0), (4, 256, 64, 8, 1)):
        est = _estimate(smollm2_dir, *got["case"])
        assert 0.8 < est / got["peak"] < 1.2, (got["case"], est / 2**20, got["peak"] / 2**20)


@pytest.mark.gpu
def test_estimate_matches_max_memory_allocated_on_gpu(wide_model_dir):
    for got in _measure(wide_model_dir, (4, 256, 256, 8, 0), (4, 256, 256, 8, 1)):
        assert got["device"] == "cuda"
        est = _estimate(wide_model_dir, *got["case"], dtype="bfloat16")  # dtype "auto" on a GPU: bf16 compute
        assert 0.8 < est / got["peak"] < 1.2, (got["case"], est / 2**20, got["peak"] / 2**20)


def test_dry_run_prints_the_estimate_and_warns(cli):
    res = cli("train", "--config", "pipelines/s1k-qwen2.5-7b.toml", "--dry-run", "--world-size", "8",
              "--backend", "zero2", "--gpu-gib", "80")
    assert res.code == 0, res.err
    tomllib.loads(res.out)  # the estimate is TOML comments: the output still parses
    assert "# memory per GPU (8 process(es), zero2, 7.62B parameters):" in res.out
    for part in ("weights", "grads", "optimizer", "activations", "logits", "vllm", "peak"):
        assert f"#   {part}" in res.out
    assert "WARNING" not in res.out
    res = cli("train", "--config", "pipelines/s1k-qwen2.5-7b.toml", "--dry-run", "--world-size", "1",
              "--backend", "ddp", "--gpu-gib", "80")
    assert "WARNING: the estimate" in res.out and "exceeds the card (80 GiB)" in res.out


def test_dry_run_reads_a_local_model_config(cli, tiny_model_dir):
    res = cli("train", "--model", str(tiny_model_dir), "--dry-run", "--no-lora")
    assert res.code == 0, res.err
    line = next(x for x in res.out.splitlines() if x.startswith("#   peak"))
    assert float(line.split()[2]) * GiB > 0
