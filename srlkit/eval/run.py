"""`evaluate()`: score models on benches the way the paper does.

Per model x bench: one greedy completion per problem (temperature 0) and `k` samples at
`cfg.temperature`, all through a rollout engine (HF `generate`, or vLLM on GPU), checked
with the verified-math reward. Results go to a JSON file (plus a samples jsonl beside it)
and a rich table with the models side by side.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

from srlkit.config import EvalConfig
from srlkit.errors import ConfigError
from srlkit.eval import metrics
from srlkit.eval.benches import BenchRow, bench_name, data_templates, load_bench
from srlkit.eval.models import ModelRef, resolve_ref, run_data_dir
from srlkit.fileio import atomic_path, write_json
from srlkit.progress import warn

# HF engine batches: rows x (longest prompt + max_new_tokens) <= this many tokens, so short
# prompts share big batches and long ones never blow the KV cache (fp32 135M: ~1 GB of cache)
EVAL_BATCH_TOKENS = 48_000
# 128 rows decode ~12% faster than 64 on CPU (the weights are read once per step for more rows;
# 128 short eval prompts x 48 tokens, SmolLM2, 1 thread: 49 s against 56 s)
EVAL_BATCH_ROWS = 128
VLLM_MAX_PROMPT = 2048  # prompt budget in vLLM's max_model_len (eval prompts are one problem)


def _tokenize(tok, rows: list[BenchRow], templates=None) -> list[list[int]]:
    """Token ids of each problem's prompt, built exactly as training builds its RLVR prompts:
    the stored messages when the bench has them (validation), else `rlvr_prompt` with the
    data's templates, both through training's own `encode_prompt`."""
    from srlkit.data.templates import Templates, rlvr_prompt
    from srlkit.train.data import encode_prompt

    templates = templates or Templates()
    return [encode_prompt(tok, list(r.prompt) if r.prompt else rlvr_prompt(r.problem, templates=templates))
            for r in rows]


def _engine(cfg: EvalConfig, ref: ModelRef):
    """(rollout engine, tokenizer) for one model; the HF engine owns the loaded model."""
    from srlkit.eval.models import load

    if cfg.engine == "vllm":
        import tempfile

        from transformers import AutoTokenizer

        from srlkit.config import RolloutConfig
        from srlkit.rollout import make_engine

        path = ref.path
        if ref.adapter:  # vLLM loads full models: merge the adapter into a temporary copy
            model, tok = load(ref, device="cpu")
            path = tempfile.mkdtemp(prefix="srlkit-eval-")
            model.save_pretrained(path)
            tok.save_pretrained(path)
            del model
        tok = AutoTokenizer.from_pretrained(path)
        rollout = RolloutConfig(engine="vllm", gpu_memory_utilization=cfg.gpu_memory_utilization,
                                sleep_mode=False, max_prompt_tokens=VLLM_MAX_PROMPT,
                                max_new_tokens=cfg.max_new_tokens)
        return make_engine(rollout, None, tok, path, seed=cfg.seed), tok
    from srlkit.rollout.hf import HFEngine

    model, tok = load(ref)
    return HFEngine(model, tok, batch_size=EVAL_BATCH_ROWS, max_batch_tokens=EVAL_BATCH_TOKENS), tok


def _free_memory() -> None:
    """Drop one model before loading the next (several models are evaluated in one process)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _generate(engine, prompts, params, bar, task) -> list:
    """All of a bench's prompts in one engine call; the engine batches them by tokens (HF) or
    schedules them itself (vLLM). The bar advances by problems as batches finish."""
    done = {"rows": 0}

    def advance(rows_done: int, _rows_total: int) -> None:
        bar.advance(task, (rows_done - done["rows"]) / params.n)
        done["rows"] = rows_done

    had = getattr(engine, "progress", None)
    if hasattr(engine, "progress"):
        engine.progress = advance
    try:
        out = engine.generate(prompts, params)
    finally:
        if hasattr(engine, "progress"):
            engine.progress = had
    bar.advance(task, len(prompts) - done["rows"] / params.n)
    return out


def _correct(reward, texts: list[str], rows: list[BenchRow], errors: list[float] | None = None) -> list[bool]:
    """Verified-math verdicts; `errors` collects checks that reached no verdict (timeouts...)."""
    dicts = [{"id": r.id, "problem": r.problem, "answer": r.answer} for r in rows]
    values = reward(texts, dicts)
    if errors is not None:
        errors.append(float(getattr(reward, "last_stats", {}).get("scoring_errors", 0.0)))
    return [v > 0.5 for v in values]


def score_bench(
    greedy: list, sampled: list[list], rows: list[BenchRow], reward, cfg: EvalConfig
) -> tuple[dict[str, Any], list[dict]]:
    """Metrics for one model on one bench from engine samples (pure apart from the reward)."""
    g_texts = [s[0].text for s in greedy]
    errors: list[float] = []
    g_ok = _correct(reward, g_texts, rows, errors)
    res: dict[str, Any] = {"n": len(rows), "greedy_acc": metrics.greedy_accuracy(g_ok)}
    res["greedy_ci"] = list(metrics.bootstrap_ci([float(x) for x in g_ok], n_boot=cfg.bootstrap, seed=cfg.seed))
    res["greedy_len"] = metrics.mean([len(s[0].token_ids) for s in greedy])
    texts = list(g_texts)
    s_ok: list[list[bool]] = [[] for _ in rows]
    all_samples = [s[0] for s in greedy]
    if cfg.k > 0:
        flat_rows = [r for r, ss in zip(rows, sampled) for _ in ss]
        flat = [s for ss in sampled for s in ss]
        ok = _correct(reward, [s.text for s in flat], flat_rows, errors)
        pos = 0
        for i, ss in enumerate(sampled):
            s_ok[i] = ok[pos:pos + len(ss)]
            pos += len(ss)
        per_problem = [metrics.mean([float(x) for x in row]) for row in s_ok]
        res[f"avg@{cfg.k}"] = metrics.avg_at_k(s_ok)
        res["avg_ci"] = list(metrics.bootstrap_ci(per_problem, n_boot=cfg.bootstrap, seed=cfg.seed))
        res["pass@"] = {str(j): metrics.pass_at_k_mean(s_ok, j) for j in range(1, cfg.k + 1)}
        res["mean_len"] = metrics.mean([len(s.token_ids) for s in flat])
        texts += [s.text for s in flat]
        all_samples += flat
    res["truncated_frac"] = metrics.mean([float(s.finish_reason == "length") for s in all_samples])
    res["think"] = metrics.think_stats(texts)
    res["scoring_errors"] = int(sum(errors))  # counted as wrong; non-zero means look at the log
    records = [
        {"id": r.id, "answer": r.answer, "greedy": g, "greedy_correct": ok, "samples_correct": so}
        for r, g, ok, so in zip(rows, g_texts, g_ok, s_ok)
    ]
    return res, records


def evaluate(
    models: list[str],
    cfg: EvalConfig,
    out: Path | None = None,
    *,
    problem_col: str | None = None,
    answer_col: str | None = None,
    data_dir: Path | None = None,
    phase: str | None = None,
    pick: str = "final",
) -> dict:
    """Evaluate every model on every bench; returns (and writes to `out`) the results dict.
    Prints nothing but progress: callers show it (`srlkit.eval.table.results_table`)."""
    from srlkit.progress import progress
    from srlkit.rewards import make_reward
    from srlkit.rollout.base import SamplingParams

    if not models:
        raise ConfigError("give at least one model to evaluate (a path, a Hub id, a run folder or 'base')")
    if cfg.k < 0 or cfg.max_new_tokens < 1:
        raise ConfigError("eval needs k >= 0 and max_new_tokens >= 1")
    refs = [resolve_ref(m, phase=phase, pick=pick) for m in models]
    if out is not None:  # before any generation: a bad --out must not cost the whole eval
        benches_read = [Path(b.split(":", 1)[1] if b.startswith("validation:") else b) for b in cfg.bench]
        claim_results(Path(out), reads=[*(Path(r.path) for r in refs), *benches_read])
    labels = [r.label for r in refs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two models share the label {labels}; name them LABEL=REF")
    if data_dir is None:
        data_dir = next((run_data_dir(r.run_dir) for r in refs if r.run_dir), None)
    benches = {bench_name(b): load_bench(b, problem_col=problem_col, answer_col=answer_col,
                                         data_dir=data_dir, limit=cfg.limit) for b in cfg.bench}
    for name, rows in benches.items():  # say which rows were left out, and why
        if rows.dropped:
            why = ", ".join(f"{k}: {v}" for k, v in sorted(rows.dropped.items()))
            warn(f"bench {name}: {sum(rows.dropped.values())} rows left out ({why}); {len(rows)} scored")
    templates = data_templates(data_dir)
    greedy_p = SamplingParams(n=1, temperature=0.0, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    sample_p = SamplingParams(n=max(cfg.k, 1), temperature=cfg.temperature,
                              max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    reward = make_reward("math")
    results: dict[str, dict] = {}
    records: list[dict] = []
    total = sum(len(rows) for rows in benches.values()) * len(refs) * (2 if cfg.k else 1)
    try:
        with progress() as bar:
            task = bar.add_task("eval", total=total, info="")
            for ref in refs:
                engine, tok = _engine(cfg, ref)
                results[ref.label] = {}
                for name, rows in benches.items():
                    bar.update(task, info=f"{ref.label} / {name}")
                    prompts = _tokenize(tok, rows, templates)
                    greedy = _generate(engine, prompts, greedy_p, bar, task)
                    sampled = _generate(engine, prompts, sample_p, bar, task) if cfg.k else []
                    res, recs = score_bench(greedy, sampled, rows, reward, cfg)
                    results[ref.label][name] = res
                    records += [{"model": ref.label, "bench": name, **r} for r in recs]
                del engine
                _free_memory()
    finally:
        close = getattr(reward, "close", None)
        if callable(close):
            close()
    summary = {
        "config": cfg.model_dump(mode="json"),
        "models": {r.label: {"path": r.path, "adapter": r.adapter,
                             "run": str(r.run_dir) if r.run_dir else None} for r in refs},
        "benches": {n: {"spec": s, "n": len(benches[n]), "dropped": benches[n].dropped}
                    for n, s in zip(benches, cfg.bench)},
        "results": results,
    }
    if out is not None:
        write_results(summary, records, Path(out))
    return summary


def samples_path(out: Path) -> Path:
    return out.with_name(out.stem + ".samples.jsonl")


def _is_results(obj: object) -> bool:
    """An `srlkit eval` results file (also one written before results named their stage)."""
    return isinstance(obj, dict) and (obj.get("stage") == "eval" or {"config", "results", "benches"} <= set(obj))


def claim_results(out: Path, reads: list[Path]) -> None:
    """`--out` is a file path that is no input, and only an earlier results file is replaced
    (the stage contract for an output that is one file; see `srlkit.stage`)."""
    from srlkit import stage
    from srlkit.errors import StageError

    stage.check_path(out, "--out", folder=False)
    for src in reads:
        if src.exists() and stage.overlap(out, src):
            where = "is the input" if out.resolve() == src.resolve() else "overlaps the input"
            raise StageError(f"--out {out} {where} {src}; write the results elsewhere")
    if out.exists():
        try:
            ours = _is_results(json.loads(out.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise StageError(f"--out {out} exists and is not an `srlkit eval` results file; give a new path")
    elif samples_path(out).exists():
        raise StageError(f"{samples_path(out)} exists and srlkit did not write it beside {out}; move it away or "
                         "give another --out")


def write_results(summary: dict, records: list[dict], out: Path) -> None:
    """`<stem>.samples.jsonl`, then the results JSON that lists it with its sha256 (each atomic), and
    where it was measured (`srlkit.provenance`: greedy answers can differ on another CPU or library)."""
    from srlkit import stage

    side = samples_path(out)
    with atomic_path(side) as tmp, tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    from srlkit import provenance

    summary.update(stage="eval", machine=provenance.machine(), files={side.name: stage.file_info(side)})
    write_json(out, summary, sort_keys=False, ensure_ascii=True)
