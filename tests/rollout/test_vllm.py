"""VLLMEngine: a *contract* test against a fake `vllm` module (injected via sys.modules), plus a
`gpu` test with the real vLLM. The real CPU run is scripts/check_vllm_cpu.py (benchmarks/RESULTS.md).

The fake records what the engine asks of vLLM's public API (constructor arguments, prompts,
sampling params, RPCs) and answers like vLLM 0.32 does, so these tests pin the mapping both ways.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import types
from pathlib import Path

import pytest

from srlkit.errors import SrlkitError
from srlkit.rollout import SamplingParams
from tests.helpers import REPO

EOS = 2


# ----------------------------------------------------------------------------- the fake vllm


@dataclasses.dataclass
class FakeLogprob:
    logprob: float


@dataclasses.dataclass
class FakeCompletion:
    index: int
    text: str
    token_ids: list
    logprobs: list | None
    finish_reason: str


@dataclasses.dataclass
class FakeRequestOutput:
    outputs: list


class FakeSamplingParams:
    def __init__(self, **kw):
        self.kw = kw


class FakeLLM:
    instances: list = []
    has_reload = True
    finish_override: str | None = None
    drop_logprobs = False

    def __init__(self, **kw):
        self.kw = kw
        self.calls: list = []
        self.weights_version = 0
        FakeLLM.instances.append(self)
        self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(get_vocab_size=lambda: 1000))

    def get_tokenizer(self):
        return types.SimpleNamespace(eos_token_id=EOS)

    def generate(self, prompts, params, use_tqdm=True, lora_request=None):
        self.calls.append(("generate", prompts, params, lora_request))
        outs = []
        for p, sp in zip(prompts, params):
            comps = []
            for j in reversed(range(sp.kw["n"])):  # out of order on purpose: the engine sorts by index
                # sample j: j+1 tokens; even j stops with EOS, odd j runs out of tokens
                stop = j % 2 == 0 and j + 1 < sp.kw["max_tokens"]
                length = j + 1 if stop else sp.kw["max_tokens"]
                toks = [10 + self.weights_version + (sp.kw["seed"] or 0) % 7 + k for k in range(length - stop)]
                toks += [EOS] if stop else []
                lps = None if FakeLLM.drop_logprobs else [{t: FakeLogprob(-0.1 * (k + 1))} for k, t in enumerate(toks)]
                reason = FakeLLM.finish_override or ("stop" if stop else "length")
                comps.append(FakeCompletion(j, f"text{j}", toks, lps, reason))
            outs.append(FakeRequestOutput(comps))
        return outs

    def collective_rpc(self, method, timeout=None, args=(), kwargs=None):
        if method == "reload_weights" and not FakeLLM.has_reload:
            raise AttributeError("'CPUWorker' object has no attribute 'reload_weights'")
        self.calls.append(("rpc", method, kwargs))
        self.weights_version += 1
        return [None]

    def apply_model(self, fn):
        self.calls.append(("apply_model", fn))
        self.weights_version += 1
        return [None]

    def reset_prefix_cache(self):
        self.calls.append(("reset_prefix_cache",))

    def sleep(self, level=1):
        self.calls.append(("sleep", level))

    def wake_up(self, tags=None):
        self.calls.append(("wake_up",))

    def names(self):
        return [c[0] if c[0] != "rpc" else f"rpc:{c[1]}" for c in self.calls]


@dataclasses.dataclass
class FakeLoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str = ""


@dataclasses.dataclass
class FakeEngineArgs:
    model: str = ""
    logprobs_mode: str = "raw_logprobs"


@pytest.fixture
def fake_vllm(monkeypatch):
    """Install a fake `vllm` package; returns a handle to tune the platform and inspect LLMs."""
    FakeLLM.instances = []
    FakeLLM.has_reload, FakeLLM.finish_override, FakeLLM.drop_logprobs = True, None, False
    platform = types.SimpleNamespace(sleep=True)
    mods = {
        "vllm": types.ModuleType("vllm"),
        "vllm.inputs": types.ModuleType("vllm.inputs"),
        "vllm.lora": types.ModuleType("vllm.lora"),
        "vllm.lora.request": types.ModuleType("vllm.lora.request"),
        "vllm.platforms": types.ModuleType("vllm.platforms"),
        "vllm.engine": types.ModuleType("vllm.engine"),
        "vllm.engine.arg_utils": types.ModuleType("vllm.engine.arg_utils"),
    }
    mods["vllm"].LLM, mods["vllm"].SamplingParams = FakeLLM, FakeSamplingParams
    mods["vllm.inputs"].TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    mods["vllm.lora.request"].LoRARequest = FakeLoRARequest
    mods["vllm.platforms"].current_platform = types.SimpleNamespace(
        is_sleep_mode_available=lambda: platform.sleep)
    mods["vllm.engine.arg_utils"].EngineArgs = FakeEngineArgs
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    return platform


def engine(**kw):
    from srlkit.rollout.vllm import VLLMEngine

    kw.setdefault("max_model_len", 64)
    return VLLMEngine("some/model", **kw)


# ----------------------------------------------------------------------------- contract tests


def test_contract_missing_vllm_is_a_one_line_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    from srlkit.rollout.vllm import VLLMEngine

    with pytest.raises(SrlkitError, match=r"pip install 'srlkit\[vllm\]'"):
        VLLMEngine("m")


def test_contract_constructor_maps_to_llm_kwargs(fake_vllm):
    import os

    eng = engine(gpu_memory_utilization=0.3, seed=7, dtype="bfloat16", tensor_parallel_size=2,
                 enforce_eager=True, tokenizer="tok/path", enable_lora=True, lora_rank=32)
    kw = FakeLLM.instances[-1].kw
    assert kw["model"] == "some/model" and kw["tokenizer"] == "tok/path"
    assert kw["gpu_memory_utilization"] == 0.3 and kw["enable_sleep_mode"] is True
    assert (kw["seed"], kw["dtype"], kw["tensor_parallel_size"], kw["enforce_eager"]) == (7, "bfloat16", 2, True)
    assert kw["enable_lora"] and kw["max_lora_rank"] == 32 and kw["max_loras"] == 1
    assert kw["logprobs_mode"] == "processed_logprobs" and kw["max_model_len"] == 64
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"  # colocated: in-process engine core
    assert eng.sleep_mode


def test_contract_generate_maps_prompts_params_and_outputs(fake_vllm):
    eng = engine()
    groups = eng.generate([[5, 6, 7], [8]], SamplingParams(n=3, temperature=0.8, top_p=0.9, top_k=20,
                                                          max_new_tokens=4, seed=100))
    _, prompts, params, lora = FakeLLM.instances[-1].calls[-1]
    assert prompts == [{"prompt_token_ids": [5, 6, 7]}, {"prompt_token_ids": [8]}] and lora is None
    assert [p.kw["seed"] for p in params] == [100, 103]  # per prompt: seed + i * n (children add 0..n-1)
    assert params[0].kw == dict(n=3, temperature=0.8, top_p=0.9, top_k=20, max_tokens=4, logprobs=0, seed=100)
    assert [len(g) for g in groups] == [3, 3]
    s0, s1, s2 = groups[0]
    assert s0.text == "text0" and s0.finish_reason == "stop" and s0.token_ids[-1] == EOS
    assert s1.finish_reason == "length" and len(s1.token_ids) == 4
    assert s2.token_ids[-1] == EOS and len(s2.token_ids) == 3
    assert all(len(s.logprobs) == len(s.token_ids) for g in groups for s in g)
    assert s1.logprobs == pytest.approx([-0.1, -0.2, -0.3, -0.4])
    assert eng.stats.samples == 6 and eng.stats.tokens == sum(len(s.token_ids) for g in groups for s in g)


def test_contract_unseeded_generate_passes_no_seed(fake_vllm):
    engine().generate([[1]], SamplingParams(n=2, max_new_tokens=3))
    assert FakeLLM.instances[-1].calls[-1][2][0].kw["seed"] is None


def test_contract_sleep_wake_and_auto_wake(fake_vllm):
    eng = engine()
    llm = FakeLLM.instances[-1]
    eng.sleep()
    eng.sleep()  # idempotent
    assert llm.names() == ["sleep"] and llm.calls[0] == ("sleep", 1)
    eng.generate([[1]], SamplingParams(n=1, max_new_tokens=2))  # generating wakes it first
    assert llm.names() == ["sleep", "wake_up", "generate"]
    eng.sleep()
    eng.wake()
    eng.wake()
    assert llm.names()[-2:] == ["sleep", "wake_up"]


def test_contract_sleep_is_noop_where_platform_lacks_it(fake_vllm):
    fake_vllm.sleep = False  # e.g. the CPU backend, which refuses enable_sleep_mode
    eng = engine(sleep_mode=True)
    assert FakeLLM.instances[-1].kw["enable_sleep_mode"] is False and not eng.sleep_mode
    eng.sleep()
    eng.wake()
    assert FakeLLM.instances[-1].calls == []


def test_contract_bad_requests_are_one_line_errors(fake_vllm):
    eng = engine(max_prompt_tokens=100)
    with pytest.raises(SrlkitError, match="max_model_len"):
        eng.generate([list(range(64))], SamplingParams(n=1, max_new_tokens=2))
    with pytest.raises(SrlkitError, match="vocabulary"):
        eng.generate([[5000]], SamplingParams(n=1, max_new_tokens=2))
    FakeLLM.finish_override = "abort"
    with pytest.raises(SrlkitError, match="abort"):
        eng.generate([[1]], SamplingParams(n=1, max_new_tokens=2))
    FakeLLM.finish_override, FakeLLM.drop_logprobs = None, True
    with pytest.raises(SrlkitError, match="logprobs"):
        eng.generate([[1]], SamplingParams(n=1, max_new_tokens=2))


@pytest.fixture
def tiny(tiny_model_dir):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)


def _peft(model):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))


def test_contract_full_sync_uses_reload_weights_rpc_with_hf_names(fake_vllm, tiny):
    eng = engine(sleep_mode=True)
    llm = FakeLLM.instances[-1]
    before = eng.generate([[1]], SamplingParams(n=2, max_new_tokens=3, seed=0))
    eng.sleep()
    policy = _peft(tiny)
    eng.load_weights(policy)  # wakes first, pushes merged weights, resets the prefix cache
    assert llm.names()[-4:] == ["sleep", "wake_up", "rpc:reload_weights", "reset_prefix_cache"]
    kwargs = llm.calls[-2][2]
    names = [k for k, _ in kwargs["weights_iterator"]]
    assert kwargs["is_checkpoint_format"] is True
    assert set(names) == set(tiny.__class__.from_pretrained(tiny.name_or_path).state_dict())
    assert not any("lora" in n or "base_layer" in n for n in names)
    assert eng.generate([[1]], SamplingParams(n=2, max_new_tokens=3, seed=0)) != before
    assert eng.stats.extra["syncs"] == 1


def test_contract_full_sync_falls_back_to_apply_model_on_older_vllm(fake_vllm, tiny):
    FakeLLM.has_reload = False
    eng = engine()
    eng.load_weights(tiny)
    assert FakeLLM.instances[-1].names() == ["apply_model", "reset_prefix_cache"]


def test_contract_lora_sync_is_adapter_only_with_fresh_ids(fake_vllm, tiny, tmp_path):
    eng = engine(enable_lora=True, lora_rank=4, adapter_dir=tmp_path)
    llm = FakeLLM.instances[-1]
    with pytest.raises(SrlkitError, match="load_weights"):
        eng.generate([[1]], SamplingParams(n=1, max_new_tokens=2))
    with pytest.raises(SrlkitError, match="peft"):
        eng.load_weights(tiny)
    policy = _peft(tiny)
    eng.load_weights(policy)
    first = eng._lora
    files = sorted(p.name for p in Path(first.lora_path).iterdir())
    assert "adapter_model.safetensors" in files and "adapter_config.json" in files
    assert "model.safetensors" not in files  # never the merged full weights
    eng.generate([[1]], SamplingParams(n=1, max_new_tokens=2))
    assert llm.calls[-1][3] is first
    eng.load_weights(policy)
    second = eng._lora
    assert second.lora_int_id == first.lora_int_id + 1 and second.lora_name != first.lora_name
    assert not Path(first.lora_path).exists() and Path(second.lora_path).is_dir()
    eng.generate([[1]], SamplingParams(n=1, max_new_tokens=2))
    assert llm.calls[-1][3] is second
    assert not any(n.startswith("rpc") or n == "apply_model" for n in llm.names())  # no full push


def test_contract_make_engine_vllm_follows_the_policy(fake_vllm, tiny):
    from srlkit.config import RolloutConfig
    from srlkit.rollout import make_engine
    from srlkit.rollout.vllm import VLLMEngine

    cfg = RolloutConfig(engine="vllm", gpu_memory_utilization=0.4, max_prompt_tokens=100, max_new_tokens=50)
    eng = make_engine(cfg, _peft(tiny), types.SimpleNamespace(name_or_path="tok/dir"), "base/dir", seed=3)
    kw = FakeLLM.instances[-1].kw
    assert isinstance(eng, VLLMEngine) and eng.enable_lora and kw["max_lora_rank"] == 4
    assert (kw["model"], kw["tokenizer"], kw["max_model_len"], kw["dtype"], kw["seed"]) == (
        "base/dir", "tok/dir", 150, "float32", 3)
    assert eng._lora is not None  # synced at birth: the first generate already uses the adapter
    plain = make_engine(cfg, tiny, None, "base/dir")
    assert not plain.enable_lora and "enable_lora" not in FakeLLM.instances[-1].kw
    assert FakeLLM.instances[-1].names() == ["rpc:reload_weights", "reset_prefix_cache"]


# ----------------------------------------------------------------------------- real vLLM (GPU)


@pytest.mark.gpu
def test_real_vllm_engine_on_gpu(smollm2_dir):
    """The same checks as scripts/check_vllm_cpu.py, where vLLM and CUDA exist."""
    pytest.importorskip("vllm")
    spec = importlib.util.spec_from_file_location(
        "check_vllm", REPO / "scripts" / "check_vllm_cpu.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    res = check.part_full(str(smollm2_dir), 4, 16)
    assert not res["contract"]["violations"]
    assert res["seed_reproducible"] and res["logprobs_match_hf"]
    assert res["full_sync_changes_output"] and res["full_sync_back_restores_output"]


# ----------------------------------------------------------------------------- one engine per rank


def test_contract_each_rank_builds_an_external_launcher_engine(fake_vllm):
    """2 trainer ranks, no TP: each rank's LLM joins the torch.distributed world, own seed."""
    for rank in (0, 1):
        engine(seed=5, rank=rank, world_size=2, gpu_memory_utilization=0.35)
    a, b = (i.kw for i in FakeLLM.instances)
    assert a["distributed_executor_backend"] == b["distributed_executor_backend"] == "external_launcher"
    assert (a["seed"], b["seed"]) == (5, 6) and a["tensor_parallel_size"] == 1
    assert a["gpu_memory_utilization"] == 0.35
    engine(seed=5)  # a single process keeps vLLM's own executor
    assert "distributed_executor_backend" not in FakeLLM.instances[-1].kw


def test_contract_tensor_parallel_ranks_share_one_engine(fake_vllm, monkeypatch):
    """4 ranks, TP=2: ranks {0,1} and {2,3} form engines; the group's ranks share the seed, gather
    their prompts, generate the union with each owner's params, and keep their own slice."""
    import torch.distributed as td

    groups = []
    monkeypatch.setattr(td, "new_subgroups_by_enumeration", lambda ranks: (groups.append(ranks) or "G", None))
    engines = [engine(seed=5, rank=r, world_size=4, tensor_parallel_size=2) for r in range(4)]
    assert groups[0] == [[0, 1], [2, 3]]
    assert [e.llm.kw["seed"] for e in engines] == [5, 5, 6, 6]
    assert [(e.tp_group, e.tp_index) for e in engines] == [("G", 0), ("G", 1), ("G", 0), ("G", 1)]
    eng = engines[1]
    mine = ([[8], [9, 9]], SamplingParams(n=2, max_new_tokens=3, seed=200))
    other = ([[7]], SamplingParams(n=2, max_new_tokens=3, seed=100))
    monkeypatch.setattr(eng, "_tp_gather", lambda p, s: [other, (p, s)])
    out = eng.generate(*mine)
    _, prompts, params, _ = eng.llm.calls[-1]
    assert [p["prompt_token_ids"] for p in prompts] == [[7], [8], [9, 9]]  # the group's union, rank order
    assert [p.kw["seed"] for p in params] == [100, 200, 202]  # each owner's seeds
    assert len(out) == 2 and out[0][1].token_ids[0] == 10 + 200 % 7  # rank 1's slice: its own prompts
    with pytest.raises(SrlkitError, match="tensor_parallel_size"):
        engine(rank=0, world_size=3, tensor_parallel_size=2)


def test_contract_sleep_level_2_wakes_weights_before_the_push(fake_vllm, tiny):
    eng = engine(sleep_level=2)
    llm = FakeLLM.instances[-1]
    eng.sleep()
    eng.load_weights(tiny)  # weights only, then the push, then the KV cache
    eng.wake()
    assert llm.calls[0] == ("sleep", 2)
    assert llm.names() == ["sleep", "wake_up", "rpc:reload_weights", "reset_prefix_cache", "wake_up"]
    with pytest.raises(SrlkitError, match="sleep_level"):
        engine(sleep_level=2, enable_lora=True)


def test_contract_wake_up_tags(fake_vllm, tiny, monkeypatch):
    tags = []
    monkeypatch.setattr(FakeLLM, "wake_up", lambda self, tags_=None, **kw: tags.append(kw.get("tags", tags_)))
    eng = engine(sleep_level=2)
    eng.sleep()
    eng.load_weights(tiny)
    eng.wake()
    eng.sleep()
    eng.wake()  # no push in between: everything wakes
    assert tags == [["weights"], ["kv_cache"], None]


def test_contract_make_engine_passes_rank_and_compute_dtype(fake_vllm, tiny):
    from srlkit.config import RolloutConfig
    from srlkit.rollout import make_engine

    cfg = RolloutConfig(engine="vllm", sleep_level=2, tensor_parallel_size=1, max_prompt_tokens=10, max_new_tokens=6)
    make_engine(cfg, tiny, None, "base/dir", seed=3, dtype="bfloat16", rank=1, world_size=2)
    kw = FakeLLM.instances[-1].kw
    assert (kw["dtype"], kw["seed"], kw["distributed_executor_backend"]) == ("bfloat16", 4, "external_launcher")


def test_contract_eval_builds_its_vllm_engine_through_make_engine(fake_vllm, tiny_model_dir):
    """`srlkit eval --engine vllm`: the same factory as training, the eval's memory share, no sleep,
    no weight push (the engine serves the model folder as it is)."""
    from srlkit.config import EvalConfig
    from srlkit.eval.models import ModelRef
    from srlkit.eval.run import VLLM_MAX_PROMPT, _engine

    cfg = EvalConfig(engine="vllm", max_new_tokens=40, seed=9, gpu_memory_utilization=0.7)
    eng, tok = _engine(cfg, ModelRef(label="m", path=str(tiny_model_dir), adapter=False, run_dir=None))
    kw = FakeLLM.instances[-1].kw
    assert kw["gpu_memory_utilization"] == 0.7 and kw["seed"] == 9
    assert kw["max_model_len"] == VLLM_MAX_PROMPT + 40 and kw["model"] == str(tiny_model_dir)
    assert not kw.get("enable_sleep_mode") and "enable_lora" not in kw
    assert FakeLLM.instances[-1].names() == []  # nothing pushed
    assert tok.eos_token_id is not None
