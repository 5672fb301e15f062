"""When the learner packs: the cost rule, its measured constants, and the kernel per device."""

from __future__ import annotations

import pytest

from srlkit.train import pack_policy, packing
from srlkit.train.batch import collate
from srlkit.train.memory import Shape
from srlkit.train.pack_policy import Packer

SMOLLM2 = Shape(hidden=576, layers=30, intermediate=1536, vocab=49152, heads=9, kv_heads=3, tied=True)


def test_flex_counts_only_the_blocks_someone_sees(monkeypatch):
    monkeypatch.setattr(pack_policy, "FLEX_BLOCK", 4)
    # P = 4, two slots of 4: blocks [prompt], [slot 1], [slot 2]; visible: (0,0) (1,0) (1,1) (2,0) (2,2)
    assert pack_policy.scores(1, 4, 4, 2, "flex_attention") == 5 * 16
    assert pack_policy.scores(1, 4, 4, 2, "sdpa") == 12 * 12  # a dense kernel computes every score
    # P = 6, slots of 3: blocks [prompt], [prompt tail + slot 1], [slot 1 tail + slot 2]; the middle
    # block holds prompt keys, so every later block sees it: 1 + 2 + 3 blocks per row
    assert pack_policy.scores(2, 6, 3, 2, "flex_attention") == 2 * 6 * 16


def _mb(G: int, P: int, L: int, rows: int = 8):
    prompts = [list(range(100 + u, 100 + u + P)) for u in range(rows // G)]
    return collate([prompts[r // G] for r in range(rows)], [list(range(500, 500 + L))] * rows, [0.0] * rows, pad_id=0)


def _decide(G: int, P: int, L: int, rows: int = 8) -> bool:
    mb = _mb(G, P, L, rows)
    old = packing.MIN_SAVED
    packing.MIN_SAVED = -1.0  # ask the rule about every shape (the plan alone would skip some)
    try:
        plan = packing.plan(mb.input_ids, mb.attention_mask, mb.prompt_len)
    finally:
        packing.MIN_SAVED = old
    return Packer(kind="sdpa", own="sdpa", mode="auto", device="cpu", shape=SMOLLM2).use(plan, mb)


# micro-batches measured on CPU with benchmarks/packing.py (SmolLM2 + LoRA, 8 rows, medians of
# paired repeats): shape G:P:L -> whether packed with SDPA was faster than the plain layout
MEASURED_CPU = {(4, 250, 64): True, (8, 256, 64): True, (2, 300, 48): True, (4, 128, 128): True,
                (8, 64, 256): False, (8, 32, 320): False}


@pytest.mark.parametrize("shape,faster", sorted(MEASURED_CPU.items()))
def test_cpu_rule_packs_exactly_where_packing_was_measured_faster(shape, faster):
    assert _decide(*shape) == faster


def test_unmeasured_kernels_never_pack_under_auto():
    mb = _mb(8, 256, 64)
    plan = packing.plan(mb.input_ids, mb.attention_mask, mb.prompt_len)
    assert plan is not None
    assert not Packer(kind="flex_attention", own="sdpa", mode="auto", device="cuda", shape=SMOLLM2).use(plan, mb) \
        or ("cuda", "flex_attention") in pack_policy.MEASURED_W
    assert Packer(kind="eager", own="eager", mode="always", device="cpu", shape=SMOLLM2).use(plan, mb)


def test_packer_picks_the_kernel_per_device(tiny_model_dir):
    from srlkit.config import LoraConfig, ModelConfig
    from srlkit.train.model import load_policy

    model = load_policy(ModelConfig(name_or_path=str(tiny_model_dir), lora=LoraConfig(r=4))).model
    cpu = pack_policy.packer("auto", model, "cpu")
    assert (cpu.kind, cpu.own, cpu.mode, cpu.device) == ("sdpa", "sdpa", "auto", "cpu")
    assert cpu.shape.hidden == model.get_base_model().config.hidden_size
    assert pack_policy.packer(True, model, "cpu").mode == "always"
    assert pack_policy.packer(False, model, "cpu") is None
    assert pack_policy.packer("auto", model, "cuda").kind == "flex_attention"  # FlexAttention has a CUDA backward
