"""Exact resume: a run SIGKILLed mid-phase and again between phases, resumed each time with
`--resume`, ends bit-equal to an uninterrupted run. Also: the curriculum hand-off and the
final model folders (transformers alone; the adapter with peft).

The killed runs are real subprocesses of the CLI entry point, killed by SIGKILL from the
test-only hook `SRLKIT_TEST_KILL_AT=phase:step|phase:end` right after that checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO
from tests.helpers import training as fx

WRAPPER = (
    "import sys; sys.path.insert(0, {root!r}); from tests.helpers import training as f; f.install(); "
    "from srlkit.cli import main; main(sys.argv[1:])"
)


def _subprocess(args: list[str], kill_at: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.pop("SRLKIT_TEST_KILL_AT", None)
    if kill_at:
        env["SRLKIT_TEST_KILL_AT"] = kill_at
    code = WRAPPER.format(root=str(REPO))
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir, tiny_data):
    """An uninterrupted srl,rlvr run (in-process), recording the weights each phase starts from."""
    from srlkit.cli import main
    from srlkit.train.learner import Learner

    fx.install()
    starts: list[tuple[int, dict[str, torch.Tensor]]] = []
    orig = Learner.begin_phase

    def spy(self, phase, total_steps):
        starts.append((id(self.policy.model), {n: p.detach().clone() for n, p in self.policy.trainable()}))
        return orig(self, phase, total_steps)

    mp = pytest.MonkeyPatch()
    mp.setattr(Learner, "begin_phase", spy)
    out = tmp_path_factory.mktemp("ref") / "run"
    try:
        main(fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl,rlvr"))
    finally:
        mp.undo()
    return out, starts


def _assert_same_run(ref: Path, out: Path) -> None:
    for rel in ("final/model.safetensors", "final/adapter/adapter_model.safetensors",
                "srl/final/adapter_model.safetensors", "rlvr/best/adapter_model.safetensors"):
        a, b = _tensors(ref / rel), _tensors(out / rel)
        assert a.keys() == b.keys() and a
        for k in a:
            assert torch.equal(a[k], b[k]), f"{rel}:{k}"
    ref_m = [json.loads(x) for x in (ref / "metrics.jsonl").read_text().splitlines()]
    got_m = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(m["phase"], m["step"]) for m in got_m] == [(m["phase"], m["step"]) for m in ref_m]
    assert [m["reward/mean"] for m in got_m] == [m["reward/mean"] for m in ref_m]
    assert json.loads((out / "state.json").read_text())["finished"] is True


class _Abort(Exception):
    pass


def test_abort_after_checkpoints_then_resume_is_bit_equal(reference, tmp_path, tiny_model_dir, tiny_data, monkeypatch,
                                                         capsys):
    """Fast in-process variant: the kill hook raises instead of SIGKILL (on-disk state is all that survives).
    The last resume finds another CPU in summary.json's machine block and says so (the run still goes on)."""
    from srlkit.cli import main
    from srlkit.train import curriculum

    out = tmp_path / "run"
    args = fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl,rlvr")
    for kill_at in ("srl:2", "srl:end"):
        phase, _, step = kill_at.partition(":")

        def hook(p, s, *, phase_end=False, _phase=phase, _step=step):
            if p == _phase and ((_step == "end" and phase_end) or (_step.isdigit() and int(_step) == s and not phase_end)):
                raise _Abort(kill_at)

        monkeypatch.setattr(curriculum, "kill_hook", hook)
        monkeypatch.setenv("SRLKIT_DEBUG", "1")  # the CLI lets the abort through instead of printing it
        with pytest.raises(_Abort):
            main(args + (["--resume"] if kill_at == "srl:end" else []))
    monkeypatch.undo()
    summ = out / "summary.json"
    body = json.loads(summ.read_text())
    assert body["machine"]["libs"]["torch"]  # the run recorded where it ran
    body["machine"]["cpu"] = "Another CPU"
    summ.write_text(json.dumps(body))
    capsys.readouterr()
    main(args + ["--resume"])
    err = capsys.readouterr().err
    assert "warning: resuming on another machine or library set (cpu Another CPU -> " in err
    assert json.loads(summ.read_text())["machine"]["cpu"] != "Another CPU"  # this machine now
    _assert_same_run(reference[0], out)


@pytest.mark.slow  # three fresh interpreters (torch + transformers imports each)
def test_sigkill_mid_phase_and_between_phases_then_resume_is_bit_equal(reference, tmp_path, tiny_model_dir, tiny_data):
    ref, _ = reference
    out = tmp_path / "run"
    args = fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl,rlvr")
    r1 = _subprocess(args, "srl:2")  # mid-phase, right after the step-2 checkpoint
    assert r1.returncode == -signal.SIGKILL, r1.stderr[-2000:]
    assert not (out / "final").exists()
    r2 = _subprocess(args + ["--resume"], "srl:end")  # between phases
    assert r2.returncode == -signal.SIGKILL, r2.stderr[-2000:]
    assert json.loads((out / "state.json").read_text())["done"] == [0]
    r3 = _subprocess(args + ["--resume"], None)
    assert r3.returncode == 0, r3.stderr[-2000:]
    _assert_same_run(ref, out)


def test_curriculum_hand_off_continues_the_adapter(reference):
    """Phase 2 starts from phase 1's final weights, on the same (peft) model object."""
    ref, starts = reference
    assert len(starts) == 2
    (id1, w1), (id2, w2) = starts
    assert id1 == id2  # the same LoRA-wrapped policy: the adapter continues training
    assert any(not torch.equal(w1[n], w2[n]) for n in w1)  # phase 1 trained it
    ckpts = sorted((ref / "checkpoints").glob("srl-*"))
    srl_end = _tensors(ckpts[-1] / "trainable.safetensors")
    assert srl_end.keys() == w2.keys()
    assert all(torch.equal(srl_end[n], w2[n]) for n in w2)
    assert any(".lora_" in n for n in w2) and all(".lora_" in n for n in w2)


def test_final_model_loads_with_transformers_and_adapter_with_peft(reference, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref, _ = reference
    merged = AutoModelForCausalLM.from_pretrained(ref / "final")
    AutoTokenizer.from_pretrained(ref / "final")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    adapted = PeftModel.from_pretrained(base, ref / "final" / "adapter")
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        a = merged(ids).logits
        b = adapted(ids).logits
        c = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-4)  # training changed the model
    for name in ("metrics.jsonl", "eval.jsonl", "summary.json", "config.toml", "state.json"):
        assert (ref / name).is_file(), name
    assert sorted(p.name for p in (ref / "samples").iterdir())[:1] == ["rlvr-000001.jsonl"]
    rec = json.loads((ref / "metrics.jsonl").read_text().splitlines()[0])
    from srlkit.schema import METRIC_KEYS

    assert set(METRIC_KEYS) <= set(rec) and "reward/test_len" in rec
