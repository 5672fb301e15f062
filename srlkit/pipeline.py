"""`srlkit run RECIPE`: decompose -> embed -> train -> eval -> report, skipping finished stages.

Layout under the pipeline root (`--out`, else the recipe's `out`, else `runs/<recipe name>`):

    ROOT/data/               the decomposed dataset (+ embeddings/)
    ROOT/train/              the training run folder
    ROOT/eval/results.json   base vs trained
    ROOT/report/report.md    plots + tables
    ROOT/.stamps/<stage>.json

A stage is skipped when its stamp holds the same fingerprint *and* its outputs are there and
match the sha256 their manifest recorded (`srlkit.stage`). The fingerprint is a hash
of the stage's resolved config plus the fingerprints upstream, so a changed decompose
setting reruns everything after it. Output paths are left out of the hash, so a moved
folder stays valid. Once a stage runs, every stage after it runs too (its inputs are new).
A stage that was interrupted (started stamp, same fingerprint, no done stamp) resumes
where the stage supports it (train) instead of starting from scratch.
"""

from __future__ import annotations

import hashlib
import json
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srlkit import stage
from srlkit.config import Recipe
from srlkit.errors import ConfigError, SrlkitError, StageError
from srlkit.extras import require
from srlkit.fileio import read_json, write_json
from srlkit.report.chain import phase_label

STAGES = ("decompose", "embed", "train", "eval", "report")


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def eval(self) -> Path:
        return self.root / "eval" / "results.json"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def stamp(self, stage: str, kind: str = "done") -> Path:
        return self.root / ".stamps" / f"{stage}.{kind}.json"


@dataclass
class StagePlan:
    name: str
    fingerprint: str
    action: str  # "run", "resume", "skip", "off"
    reason: str


def pipeline_root(recipe: Recipe, out: Path | None = None) -> Path:
    return Path(out or recipe.out or Path("runs") / recipe.name)


def eval_models(recipe: Recipe, paths: Paths) -> list[str]:
    """The recipe's models, else base, the end of each earlier phase, and the trained run (so
    the eval shows what every phase added on the same held-out problems)."""
    if recipe.eval.models:
        return list(recipe.eval.models)
    base = recipe.train.model.name_or_path or "base"
    cur = recipe.train.curriculum
    earlier = [n for n in dict.fromkeys(cur[:-1]) if n != cur[-1]]  # a repeated name keeps one folder
    return [f"base={base}", *(f"{phase_label(n)}={paths.train / n / 'final'}" for n in earlier),
            f"trained={paths.train}"]


def stage_configs(recipe: Recipe, paths: Paths) -> dict[str, dict[str, Any]]:
    """What each stage depends on, with output locations removed (they follow the layout)."""
    dec = recipe.decompose.model_dump(mode="json", exclude={"out"})
    train = recipe.train.model_dump(mode="json", exclude={"data", "out", "resume", "report_to"})
    ev = recipe.eval.model_dump(mode="json")
    ev["models"] = [m if "=" + str(paths.train) not in m else m.split("=")[0] + "=<train>"
                    for m in eval_models(recipe, paths)]
    return {
        "decompose": dec,
        "embed": recipe.embed.model_dump(mode="json") if recipe.embed.enabled else {"enabled": False},
        "train": train,
        "eval": ev,
        "report": {"version": 1},
    }


def fingerprint(stage: str, config: dict[str, Any], upstream: str) -> str:
    blob = json.dumps({"stage": stage, "config": config, "upstream": upstream}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _stage_files(name: str, paths: Paths) -> tuple[Path, dict[str, Any] | None, dict[str, Any]]:
    """(folder, its manifest, the files of stage `name` in it) under the pipeline layout. For
    eval the manifest is the results JSON itself; for embed, the dataset's embeddings records."""
    if name == "eval":
        m = read_json(paths.eval) if paths.eval.is_file() else None
        ours = isinstance(m, dict) and (m.get("stage") == "eval" or {"config", "results"} <= set(m))
        return paths.eval.parent, m if ours else None, (m or {}).get("files") or {}
    folder = {"decompose": paths.data, "embed": paths.data, "train": paths.train, "report": paths.report}[name]
    m = stage.read(folder) if folder.is_dir() else None
    if name == "embed":
        recs = (m or {}).get("embeddings")
        return folder, m if recs else None, stage.listed({"embeddings": recs})
    return folder, m, (m or {}).get("files") or {}


def outputs_problem(name: str, paths: Paths) -> str | None:
    """None when stage `name`'s outputs are there and match the sha256 its manifest recorded;
    else what is wrong (so `srlkit run` reruns a stage whose files changed, not only its config)."""
    try:
        folder, m, files = _stage_files(name, paths)
        if m is None and name == "train" and stage.stage_of(folder) == "train":  # a run from before manifests
            return None if (folder / "final").is_dir() else "no finished outputs"
        if m is None or (name != "eval" and stage.stage_of(folder) != {"embed": "decompose"}.get(name, name)):
            return "no outputs yet"
        if not stage.complete(m):
            return "no finished outputs"
        skip = (lambda r: not r.startswith("checkpoints/")) if name == "train" else None  # checked on resume
        bad = stage.problems(folder, files, skip)  # outputs from before manifests list none: nothing to check
    except SrlkitError as e:
        return str(e)
    return f"{bad[0]}{f' (+{len(bad) - 1} more)' if len(bad) > 1 else ''}" if bad else None


def _read_stamp(p: Path) -> str | None:
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, json.JSONDecodeError):
        return None


def _write_stamp(p: Path, fp: str, **extra: Any) -> None:
    write_json(p, {"fingerprint": fp, "time": time.time(), **extra}, indent=None, sort_keys=False, ensure_ascii=True)


def plan(recipe: Recipe, paths: Paths, force: Iterable[str] = ()) -> list[StagePlan]:
    """Decide, per stage, whether it runs, resumes, is skipped or is switched off."""
    force = set(force)
    unknown = force - set(STAGES)
    if unknown:
        raise ConfigError(f"--force {sorted(unknown)[0]}: unknown stage; stages: {', '.join(STAGES)}")
    cfgs = stage_configs(recipe, paths)
    upstream, dirty, out = "", False, []
    for name in STAGES:
        fp = fingerprint(name, cfgs[name], upstream)
        upstream = fp
        if name == "embed" and not recipe.embed.enabled:
            out.append(StagePlan(name, fp, "off", "embed.enabled = false"))
            continue
        stamped = _read_stamp(paths.stamp(name)) == fp
        problem = outputs_problem(name, paths) if stamped else None
        if name in force:
            action, reason = "run", "forced"
        elif dirty:
            action, reason = "run", "an upstream stage reran"
        elif stamped and problem is None:
            action, reason = "skip", "outputs match the config"
        elif stamped and problem not in ("no outputs yet", "no finished outputs"):
            action, reason = "run", f"its outputs changed since it ran: {problem}"
        elif name == "train" and _read_stamp(paths.stamp(name, "started")) == fp:
            action, reason = "resume", "interrupted with the same config"
        elif _read_stamp(paths.stamp(name)) not in (None, fp):
            action, reason = "run", "config changed"
        else:
            action, reason = "run", "no outputs yet"
        dirty = dirty or action != "skip"
        out.append(StagePlan(name, fp, action, reason))
    return out


# --------------------------------------------------------------------------- stages
# Each takes (recipe, paths, resume) and does one thing; tests monkeypatch these by name.


def stage_decompose(recipe: Recipe, paths: Paths, resume: bool) -> None:
    from srlkit.data.decompose import decompose

    decompose(recipe.decompose.model_copy(update={"out": str(paths.data)}), paths.data,
              command="srlkit run (decompose stage)")


def stage_embed(recipe: Recipe, paths: Paths, resume: bool) -> None:
    require("embed", "the embed stage")
    from srlkit.embed.run import embed_dataset

    embed_dataset(paths.data, recipe.embed)


def stage_train(recipe: Recipe, paths: Paths, resume: bool) -> None:
    require("train", "the train stage")
    from srlkit.train.run import train

    resume = resume and stage.stage_of(paths.train) == "train"  # killed before it wrote anything: start
    train(recipe.train.model_copy(update={"data": str(paths.data), "out": str(paths.train), "resume": resume}))


def stage_eval(recipe: Recipe, paths: Paths, resume: bool) -> None:
    require("train", "the eval stage")
    from srlkit.eval.run import evaluate

    cfg = recipe.eval.model_copy(update={
        "bench": [f"validation:{paths.data}" if b == "validation" else b for b in recipe.eval.bench]})
    from srlkit.eval.table import results_table
    from srlkit.progress import out

    out.print(results_table(evaluate(eval_models(recipe, paths), cfg, paths.eval, data_dir=paths.data)))


def stage_report(recipe: Recipe, paths: Paths, resume: bool) -> None:
    from srlkit.report.build import build_report

    build_report(paths.train, paths.report, eval_path=paths.eval if paths.eval.is_file() else None)


def _clear(name: str, paths: Paths) -> None:
    """Remove a stage's stale outputs so a rerun never mixes old and new files: only the files its
    manifest lists (`srlkit.stage`); anything else stays, and the stage then refuses the folder."""
    folder, m, files = _stage_files(name, paths)
    if m is None:
        return
    if name == "eval":
        stage.remove(folder, [paths.eval.name, *files])
    elif name == "embed":  # the vectors; the dataset's manifest then no longer records them
        stage.remove(folder, files)
        m.pop("embeddings", None)
        write_json(folder / stage.MANIFEST, m)
    else:
        stage.clear(folder, m)


def preflight(steps: list[StagePlan], paths: Paths) -> None:
    """Before any stage runs (hours before the report does): every folder a stage will write is
    missing, empty or that stage's own output, with no file srlkit did not write. One line if not."""
    folders = {"decompose": paths.data, "train": paths.train, "report": paths.report}
    for step in steps:
        if step.action == "run" and step.name == "eval" and paths.eval.exists() and _stage_files("eval", paths)[1] is None:
            raise StageError(f"{paths.eval} exists and is not an `srlkit eval` results file; move it away")
        if step.action not in ("run", "resume") or step.name not in folders:
            continue
        m = stage.claim(folders[step.name], step.name)
        foreign = stage.not_owned(folders[step.name], m) if m is not None and step.action == "run" else []
        if foreign:
            raise StageError(f"{folders[step.name]} holds {', '.join(foreign[:3])}, which srlkit did not write; "
                                   f"the {step.name} stage would not write beside them: move them away")


def _run_step(step: StagePlan, recipe: Recipe, paths: Paths, log: Callable[[str], None]) -> None:
    if step.action in ("skip", "off"):
        log(f"[{step.name}] skipped: {step.reason}")
        return
    log(f"[{step.name}] {'resuming' if step.action == 'resume' else 'running'}: {step.reason}")
    paths.stamp(step.name).unlink(missing_ok=True)
    if step.action == "run":
        _clear(step.name, paths)
    _write_stamp(paths.stamp(step.name, "started"), step.fingerprint)
    start = time.perf_counter()
    globals()[f"stage_{step.name}"](recipe, paths, step.action == "resume")
    _write_stamp(paths.stamp(step.name), step.fingerprint, seconds=round(time.perf_counter() - start, 2))
    paths.stamp(step.name, "started").unlink(missing_ok=True)


def bundled_data(log: Callable[[str], None] = print) -> Path:
    """The bundled CHAMP problems decomposed with the default settings, built once into the
    cache (what `srlkit train` trains on when neither --data nor a recipe names a dataset)."""
    from srlkit.assets import cache_dir
    from srlkit.config import DecomposeConfig
    from srlkit.data.decompose import decompose

    out = cache_dir() / "data" / "champ"
    if not (out / "manifest.json").is_file():
        log(f"no --data: decomposing the bundled CHAMP problems into {out} (once)")
        decompose(DecomposeConfig(), out, show_progress=False)
    return out


def prepare_data(recipe: Recipe, out: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """The recipe's dataset, as `srlkit run` builds it (ROOT/data): the decompose stage, and the
    embed stage when a phase uses the embedding reward, run first when their outputs do not
    match the config (`srlkit train --config RECIPE` trains on this)."""
    paths = Paths(pipeline_root(recipe, out))
    stage.check_path(paths.root, "--out")
    paths.root.mkdir(parents=True, exist_ok=True)
    names = {r.name for n in recipe.train.curriculum for r in recipe.train.phases[n].rewards}
    wanted = {"decompose", "embed"} if "embedding" in names else {"decompose"}
    steps = [step for step in plan(recipe, paths) if step.name in wanted]
    preflight(steps, paths)
    for step in steps:
        _run_step(step, recipe, paths, log)
    return paths.data


def run_pipeline(
    recipe: Recipe,
    out: Path | None = None,
    force: Iterable[str] = (),
    log: Callable[[str], None] = print,
) -> Path:
    """Run the stages that need it; returns the report path."""
    paths = Paths(pipeline_root(recipe, out))
    stage.check_path(paths.root, "--out")
    paths.root.mkdir(parents=True, exist_ok=True)
    steps = plan(recipe, paths, force)
    preflight(steps, paths)
    for step in steps:
        _run_step(step, recipe, paths, log)
    for line in headline(paths):
        log(line)
    return paths.report / "report.md"


def headline(paths: Paths) -> list[str]:
    """What the run achieved, said plainly: phases that did not train, base vs trained accuracy."""
    import json

    from srlkit.report.build import idle_warnings

    lines = []
    summ = paths.train / "summary.json"
    if summ.is_file():
        lines += [f"WARNING: {w.replace('**', '')}" for w in idle_warnings(json.loads(summ.read_text()))]
    if paths.eval.is_file():
        res = json.loads(paths.eval.read_text()).get("results", {})
        if "base" in res and "trained" in res:
            for bench, b in res["base"].items():
                t = res["trained"].get(bench)
                if not t or "greedy_ci" not in b:
                    continue
                verdict = ("trained beats base outside the 95% CIs" if t["greedy_ci"][0] > b["greedy_ci"][1]
                           else "NOT better than base outside the 95% CIs")
                lines.append(f"[eval] {bench} greedy accuracy, n={b['n']}: base {100 * b['greedy_acc']:.1f}% "
                             f"[{100 * b['greedy_ci'][0]:.1f}, {100 * b['greedy_ci'][1]:.1f}] -> trained "
                             f"{100 * t['greedy_acc']:.1f}% [{100 * t['greedy_ci'][0]:.1f}, "
                             f"{100 * t['greedy_ci'][1]:.1f}]: {verdict}")
        lines += chain_lines(paths, res)
    return lines


def chain_lines(paths: Paths, results: dict[str, Any]) -> list[str]:
    """The last phase against the end of the one before it, on the same held-out problems."""
    from srlkit.report.chain import gain_line, phase_gain

    cfg = paths.train / "config.toml"
    if not cfg.is_file():
        return []
    cur = tomllib.loads(cfg.read_text(encoding="utf-8")).get("curriculum", [])
    if len(cur) < 2 or phase_label(cur[-2]) not in results or cur[-2] == cur[-1]:
        return []
    before = phase_label(cur[-2])
    return [f"[chain] {gain_line(g, cur[-2], cur[-1])}" for g in phase_gain(paths.eval, before, "trained")]
