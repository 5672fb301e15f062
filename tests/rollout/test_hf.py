"""HFEngine on the tiny random Llama: the Sample contract, padding, EOS, seeds, logprobs, weights."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from srlkit.errors import SrlkitError  # noqa: E402
from srlkit.rollout import SamplingParams, make_engine, sampling_params  # noqa: E402
from srlkit.rollout import decode  # noqa: E402
from srlkit.rollout.decode import common_prefix  # noqa: E402
from srlkit.rollout.hf import HFEngine  # noqa: E402
from srlkit.rollout.weights import merged_state_dict  # noqa: E402


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)


@pytest.fixture(scope="module")
def prompts(tok):
    return [tok("The answer to 2 + 2 is")["input_ids"], tok("Step 1:")["input_ids"]]


def teacher_forced(model, prompt, completion, temperature=1.0):
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1]
    lp = (logits / temperature).log_softmax(-1)
    return lp.gather(-1, torch.tensor(completion)[:, None])[:, 0], logits


def boost_eos(model, eos, rows=None, from_call=0, only_call=None):
    """Make EOS overwhelmingly likely (for `rows` of each batch, from the n-th forward on, or
    at forward `only_call` alone; forward 1 is the prefill, shared by a prompt's samples)."""
    calls = {"n": 0}

    def hook(_mod, _inp, out):
        calls["n"] += 1
        if (calls["n"] == only_call) if only_call is not None else calls["n"] > from_call:
            out = out.clone()
            out[rows if rows is not None else slice(None), :, eos] += 1e4
        return out

    return model.lm_head.register_forward_hook(hook)


def test_contract_shapes_and_fields(model, tok, prompts):
    eng = HFEngine(model, tok, batch_size=4)
    groups = eng.generate(prompts, SamplingParams(n=3, max_new_tokens=6, seed=0))
    assert [len(g) for g in groups] == [3, 3]
    for g in groups:
        for s in g:
            assert all(isinstance(t, int) for t in s.token_ids)
            assert len(s.logprobs) == len(s.token_ids) >= 1
            assert s.finish_reason in ("stop", "length")
            if s.finish_reason == "length":
                assert len(s.token_ids) == 6
            assert s.text == tok.decode(s.token_ids, skip_special_tokens=True)
            assert all(math.isfinite(x) and x <= 0 for x in s.logprobs)
    assert eng.stats.calls == 1 and eng.stats.samples == 6 and eng.stats.prompts == 2
    assert eng.stats.tokens == sum(len(s.token_ids) for g in groups for s in g)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_are_tempered_logsoftmax_of_sampled_tokens(model, tok, prompts, temperature):
    eng = HFEngine(model, tok)
    s = eng.generate(prompts[:1], SamplingParams(n=1, temperature=temperature, max_new_tokens=8, seed=3))[0][0]
    expected, _ = teacher_forced(model, prompts[0], s.token_ids, temperature)
    assert torch.allclose(torch.tensor(s.logprobs), expected, atol=1e-4)


def test_top_k_logprobs_ignore_truncation_but_tokens_respect_it(model, tok, prompts):
    eng = HFEngine(model, tok)
    s = eng.generate(prompts[:1], SamplingParams(n=1, temperature=1.0, top_k=3, max_new_tokens=8, seed=5))[0][0]
    expected, logits = teacher_forced(model, prompts[0], s.token_ids)
    assert torch.allclose(torch.tensor(s.logprobs), expected, atol=1e-4)  # documented: temperature only
    top3 = logits.topk(3, dim=-1).indices
    assert all(t in top3[i].tolist() for i, t in enumerate(s.token_ids))


def test_greedy_is_argmax_and_left_padding_does_not_change_it(model, tok, prompts):
    short, long_ = prompts[1], prompts[0] + prompts[0]
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
    alone = HFEngine(model, tok).generate([short], greedy)[0][0]
    batched = HFEngine(model, tok, batch_size=8).generate([long_, short], greedy)[1][0]
    assert batched.token_ids == alone.token_ids
    _, logits = teacher_forced(model, short, alone.token_ids)
    assert logits.argmax(-1).tolist() == alone.token_ids


def test_eos_stops_row_and_padding_is_dropped(model, tok, prompts):
    eos = tok.eos_token_id
    handle = boost_eos(model, eos, rows=0, only_call=2)  # the first row stops at its second token
    try:
        g = HFEngine(model, tok).generate(prompts[:1], SamplingParams(n=2, max_new_tokens=5, seed=0))[0]
    finally:
        handle.remove()
    assert len(g[0].token_ids) == 2 and g[0].token_ids[-1] == eos and g[0].finish_reason == "stop"
    assert g[0].logprobs[-1] == pytest.approx(0.0, abs=1e-4)
    assert g[1].finish_reason == "length" and len(g[1].token_ids) == 5 and eos not in g[1].token_ids
    handle = boost_eos(model, eos)  # EOS from the prefill on: every row is a lone EOS
    try:
        g = HFEngine(model, tok).generate(prompts[:1], SamplingParams(n=2, max_new_tokens=5, seed=0))[0]
    finally:
        handle.remove()
    assert [s.token_ids for s in g] == [[eos], [eos]] and all(s.text == "" for s in g)


def test_eos_mid_completion_is_kept_as_last_token(model, tok, prompts):
    eos = tok.eos_token_id
    handle = boost_eos(model, eos, from_call=3)  # prefill + 2 decode steps, then EOS
    try:
        groups = HFEngine(model, tok).generate(prompts, SamplingParams(n=2, max_new_tokens=10, seed=1))
    finally:
        handle.remove()
    for s in (s for g in groups for s in g):
        assert s.finish_reason == "stop" and len(s.token_ids) == 4 and s.token_ids[-1] == eos
        assert eos not in s.token_ids[:-1]


def _batch_shapes(model):
    """Record the input_ids shape of every forward (via the embedding layer)."""
    shapes = []
    handle = model.get_input_embeddings().register_forward_pre_hook(lambda _m, a: shapes.append(tuple(a[0].shape)))
    return shapes, handle


def test_group_shares_one_prefill_and_every_sample_matches_teacher_forcing(model, tok, prompts):
    shapes, handle = _batch_shapes(model)
    try:
        groups = HFEngine(model, tok).generate(prompts, SamplingParams(n=4, temperature=0.8, max_new_tokens=6, seed=2))
    finally:
        handle.remove()
    width = max(len(p) for p in prompts)
    assert shapes[0] == (2, width)  # one prefill row per prompt, not per sample
    assert all(s == (8, 1) for s in shapes[1:]) and len(shapes) == 6
    for p, g in zip(prompts, groups):
        assert len({tuple(s.token_ids) for s in g}) > 1
        for s in g:
            expected, _ = teacher_forced(model, p, s.token_ids, 0.8)
            assert torch.allclose(torch.tensor(s.logprobs), expected, atol=1e-4)


def test_common_prompt_head_runs_once_and_changes_nothing(model, tok, monkeypatch):
    """Prompts opening with the same 24 tokens (a system prompt): the head is one [1, 24] forward,
    the tails (of different lengths: padding between head and tail) one [3, width] prefill, and
    the samples equal those without sharing, their logprobs those of teacher forcing."""
    head = tok(" ".join(["You are a careful solver of sums; think step by step."] * 2))["input_ids"][:24]
    tails = [tok(t)["input_ids"] for t in ("What is 2 + 2?", "Add 10 and 32, then subtract 7.", "1 + 1")]
    many = [head + t for t in tails]
    assert common_prefix(many) == 0  # 48 prefill tokens saved: below the default threshold
    monkeypatch.setattr(decode, "MIN_SAVED_TOKENS", 32)
    assert common_prefix(many) == 24
    params = SamplingParams(n=2, temperature=0.9, max_new_tokens=6, seed=5)
    shapes, handle = _batch_shapes(model)
    try:
        shared = HFEngine(model, tok).generate(many, params)
    finally:
        handle.remove()
    assert shapes[0] == (1, 24) and shapes[1] == (3, max(len(t) for t in tails)) and shapes[2] == (6, 1)
    plain = HFEngine(model, tok)
    plain.share_prefix = False
    alone = plain.generate(many, params)
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
    assert [s.token_ids for g in HFEngine(model, tok).generate(many, greedy) for s in g] == \
        [s.token_ids for g in plain.generate(many, greedy) for s in g]
    for p, g, h in zip(many, shared, alone):
        for s, t in zip(g, h):
            assert s.token_ids == t.token_ids
            assert torch.allclose(torch.tensor(s.logprobs), torch.tensor(t.logprobs), atol=1e-5)
            expected, _ = teacher_forced(model, p, s.token_ids, 0.9)
            assert torch.allclose(torch.tensor(s.logprobs), expected, atol=1e-4)


def test_finished_rows_leave_the_batch_and_a_finished_batch_stops(model, tok, prompts):
    eos = tok.eos_token_id
    shapes, handle = _batch_shapes(model)
    boost = boost_eos(model, eos, rows=slice(0, 4), only_call=2)  # 4 of 8 rows stop at token 2
    try:
        groups = HFEngine(model, tok).generate(prompts, SamplingParams(n=4, max_new_tokens=6, seed=0))
    finally:
        handle.remove()
        boost.remove()
    assert [len(s.token_ids) for s in groups[0]] == [2, 2, 2, 2]
    assert [len(s.token_ids) for s in groups[1]] == [6, 6, 6, 6]
    assert [b for b, _ in shapes] == [2, 8, 4, 4, 4, 4]  # the finished rows are not computed on
    shapes, handle = _batch_shapes(model)
    boost = boost_eos(model, eos, from_call=1)  # every row stops at token 2
    try:
        groups = HFEngine(model, tok).generate(prompts, SamplingParams(n=4, max_new_tokens=50, seed=0))
    finally:
        handle.remove()
        boost.remove()
    assert len(shapes) == 2 and all(len(s.token_ids) == 2 for g in groups for s in g)


def test_greedy_batched_by_tokens_equals_plain_generate_per_prompt(model, tok, prompts):
    many = [prompts[0], prompts[1], prompts[0] + prompts[1], prompts[1][:2], prompts[0] * 3]
    eng = HFEngine(model, tok, batch_size=3, max_batch_tokens=60)
    got = eng.generate(many, SamplingParams(n=1, temperature=0.0, max_new_tokens=7))
    for p, g in zip(many, got):
        ref = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                             do_sample=False, max_new_tokens=7, pad_token_id=tok.pad_token_id)[0, len(p):].tolist()
        if tok.eos_token_id in ref:
            ref = ref[: ref.index(tok.eos_token_id) + 1]
        assert g[0].token_ids == ref


def test_lora_policy_generates_merged_and_its_weights_stay_bit_equal(model, tok, prompts):
    policy = _lora(model)
    params = dict(policy.named_parameters())
    before = {k: v.detach().clone() for k, v in params.items()}
    lora_calls = []
    first_lora = next(m for n, m in policy.named_modules() if n.endswith("lora_A.default"))
    handle = first_lora.register_forward_hook(lambda *_: lora_calls.append(1))
    try:
        groups = HFEngine(policy, tok).generate(prompts, SamplingParams(n=2, temperature=1.0, max_new_tokens=5,
                                                                        seed=4))
    finally:
        handle.remove()
    assert not lora_calls  # generation ran on merged weights, not through the adapter
    after = dict(policy.named_parameters())
    assert all(after[k] is params[k] and torch.equal(after[k], before[k]) for k in params)
    for p, g in zip(prompts, groups):  # the sampling policy is the adapted model
        for s in g:
            expected, _ = teacher_forced(policy, p, s.token_ids)
            assert torch.allclose(torch.tensor(s.logprobs), expected, atol=1e-4)
    handle = first_lora.register_forward_hook(lambda *_: lora_calls.append(1))
    try:
        with torch.no_grad():
            policy(torch.tensor([prompts[0]]))
    finally:
        handle.remove()
    assert lora_calls  # adapters are live again after generate


def test_seed_reproducible_independent_of_and_not_touching_global_rng(model, tok, prompts):
    eng = HFEngine(model, tok, batch_size=3)
    sp = SamplingParams(n=3, max_new_tokens=6, seed=42)
    torch.manual_seed(1)
    first = eng.generate(prompts, sp)
    torch.manual_seed(999)
    state = torch.get_rng_state()
    second = eng.generate(prompts, sp)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    assert [[s.token_ids for s in g] for g in first] == [[s.token_ids for s in g] for g in second]
    other = eng.generate(prompts, SamplingParams(n=3, max_new_tokens=6, seed=43))
    assert [[s.token_ids for s in g] for g in other] != [[s.token_ids for s in g] for g in first]
    assert len({tuple(s.token_ids) for s in first[0]}) > 1  # samples in a group differ


def test_modes_and_generation_config_are_restored(model, tok, prompts):
    model.train()
    saved = model.generation_config
    HFEngine(model, tok).generate(prompts[:1], SamplingParams(n=1, max_new_tokens=3, seed=0))
    assert model.training and model.generation_config is saved
    model.eval()
    HFEngine(model, tok).generate(prompts[:1], SamplingParams(n=1, max_new_tokens=3, seed=0))
    assert not model.training


def test_model_generation_defaults_do_not_leak_into_sampling(model, tok, prompts):
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
    plain = HFEngine(model, tok).generate(prompts, greedy)
    model.generation_config.repetition_penalty = 50.0  # would change greedy output if applied
    assert HFEngine(model, tok).generate(prompts, greedy) == plain


def test_load_weights_same_module_is_noop_other_module_is_copied(model, tok, prompts, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    eng = HFEngine(model, tok)
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=6)
    before = eng.generate(prompts, greedy)
    eng.load_weights(model)
    assert eng.generate(prompts, greedy) == before
    other = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    eng.load_weights(other)
    after = eng.generate(prompts, greedy)
    assert after != before
    assert after == HFEngine(other, tok).generate(prompts, greedy)


def test_policy_updates_are_seen_without_sync(model, tok, prompts):
    eng = HFEngine(model, tok)
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=6)
    before = eng.generate(prompts, greedy)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    assert eng.generate(prompts, greedy) != before


def _lora(model, seed=0):
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    torch.manual_seed(seed)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.add_(torch.randn_like(p) * 0.3)
    return peft_model


def test_merged_state_dict_matches_merge_and_unload_without_mutating(model, tiny_model_dir):
    import copy

    policy = _lora(model)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    merged = merged_state_dict(policy)
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())  # untouched
    reference = copy.deepcopy(policy).merge_and_unload().state_dict()
    assert set(merged) == set(reference)
    for k in reference:
        assert torch.allclose(merged[k], reference[k], atol=1e-6), k


def test_peft_policy_generates_and_syncs_into_plain_engine(model, tok, prompts, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    policy = _lora(model)
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=6)
    ids = lambda groups: [s.token_ids for g in groups for s in g]  # noqa: E731
    peft_out = HFEngine(policy, tok).generate(prompts, greedy)
    plain = HFEngine(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32), tok)
    assert ids(plain.generate(prompts, greedy)) != ids(peft_out)
    plain.load_weights(policy)
    synced = plain.generate(prompts, greedy)
    assert ids(synced) == ids(peft_out)  # merged weights: same tokens, logprobs up to rounding
    for a, b in zip((s for g in synced for s in g), (s for g in peft_out for s in g)):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_bad_inputs_are_one_line_errors(model, tok, prompts):
    eng = HFEngine(model, tok, max_prompt_tokens=3)
    for bad in ([[]], "text", [["a", "b"]], [[10**9]]):
        with pytest.raises(SrlkitError):
            eng.generate(bad, SamplingParams(n=1, max_new_tokens=2))
    for sp in (SamplingParams(n=0), SamplingParams(max_new_tokens=0), SamplingParams(temperature=-1),
               SamplingParams(top_p=0.0), SamplingParams(top_k=0)):
        with pytest.raises(SrlkitError):
            eng.generate([[1, 2]], sp)
    with pytest.raises(SrlkitError, match="max_prompt_tokens=3"):
        eng.generate(prompts, SamplingParams(n=1, max_new_tokens=2))


def test_truncate_left_keeps_the_prompt_tail(model, tok, prompts):
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=4)
    cut = HFEngine(model, tok, max_prompt_tokens=3, overflow="truncate_left").generate(prompts[:1], greedy)
    assert cut == HFEngine(model, tok).generate([prompts[0][-3:]], greedy)


def test_make_engine_hf_and_sampling_params(model, tok):
    from srlkit.config import RolloutConfig

    cfg = RolloutConfig(num_generations=4, temperature=0.9, max_new_tokens=7, generation_batch_size=5)
    eng = make_engine(cfg, model, tok, None)
    assert isinstance(eng, HFEngine) and eng.batch_size == 5 and eng.max_prompt_tokens == cfg.max_prompt_tokens
    sp = sampling_params(cfg, seed=3)
    assert (sp.n, sp.temperature, sp.max_new_tokens, sp.seed, sp.top_k) == (4, 0.9, 7, 3, -1)
    with pytest.raises(SrlkitError, match="model's folder"):
        make_engine(cfg.model_copy(update={"engine": "vllm"}), model, tok, None)


@pytest.mark.slow
def test_real_smollm2_greedy_matches_plain_generate(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 3 + 4?"}], add_generation_prompt=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    s = HFEngine(model, tok).generate([ids], SamplingParams(n=1, temperature=0.0, max_new_tokens=12))[0][0]
    ref = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         do_sample=False, max_new_tokens=12, pad_token_id=tok.pad_token_id)[0, len(ids):]
    ref = ref.tolist()
    if tok.eos_token_id in ref:
        ref = ref[: ref.index(tok.eos_token_id) + 1]
    assert s.token_ids == ref and s.text.strip()


def test_docstring_examples_hold():
    import doctest

    import srlkit.rollout.common as common
    import srlkit.rollout.weights as weights

    for mod in (common, weights):
        assert doctest.testmod(mod).failed == 0
