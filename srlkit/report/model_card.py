"""`export_model(run_dir)`: a folder ready to publish, with a model card built from the run.

The folder holds the run's final merged model (loads with transformers alone) and, when the
run trained LoRA, its adapter under `adapter/`. The README.md card is generated, never hand
edited: base model, datasets, the curriculum with each phase's settings, the resolved config,
the training summary and the eval table when `eval/results.json` sits beside the run.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from pathlib import Path
from typing import Any, Literal

from srlkit import stage
from srlkit.errors import DataError, StageError

BUNDLED_BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"
What = Literal["both", "merged", "adapter"]


def _hub_like(ref: str | None) -> bool:
    """`owner/name` that is not a local path: worth a `base_model:` entry in the card."""
    return bool(ref) and ref.count("/") == 1 and not Path(ref).exists() and not ref.startswith((".", "/"))


def _read_json(p: Path) -> dict[str, Any]:
    try:
        obj = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}
    except ValueError:  # not JSON, or not text: the card leaves it out
        return {}
    return obj if isinstance(obj, dict) else {}


def _base_model(cfg: dict[str, Any]) -> str:
    ref = (cfg.get("model") or {}).get("name_or_path")
    return ref if ref else BUNDLED_BASE


def _dataset_line(cfg: dict[str, Any]) -> tuple[str, str | None]:
    """(human description, Hub id or None) of the data the run trained on."""
    data = cfg.get("data")
    manifest = _read_json(Path(data) / "manifest.json") if data else {}
    src = manifest.get("source") or {}
    spec = src.get("spec")
    desc = src.get("description") or (spec or "CHAMP (bundled `champ-dataset`)")
    counts = manifest.get("counts") or {}
    if counts:
        desc += f"; {counts.get('accepted', '?')} trajectories accepted of {counts.get('input', '?')}"
    return desc, spec if _hub_like(spec) else None


TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"


def _phases(cfg: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per curriculum phase for the card's table."""
    g = (cfg.get("rollout") or {}).get("num_generations", "?")
    rows = []
    for name in cfg.get("curriculum") or []:
        p = (cfg.get("phases") or {}).get(name, {})
        kind = p.get("kind", "grpo")
        rows.append({"name": name, "kind": kind, "table": p.get("table", "?"),
                     "rewards": ", ".join(r["name"] for r in p.get("rewards", [])) or "— (cross-entropy)",
                     "steps": (summary.get(name) or {}).get("steps", p.get("steps", "?")),
                     "prompts": p.get("prompts_per_step", "?"), "G": (p.get("num_generations") or g) if kind != "sft" else "—",
                     "lr": p.get("lr", "?"),
                     "dynamic": "yes" if (p.get("sampling") or {}).get("dynamic", False) else "no"})
    return rows


def model_card(run_dir: Path, eval_path: Path | None, has_merged: bool, has_adapter: bool) -> str:
    """The README.md text for an exported run (`huggingface_hub.ModelCard` from `templates/model_card.md`)."""
    from huggingface_hub import ModelCard, ModelCardData

    from srlkit.fileio import read_text

    cfg_text = read_text(run_dir / "config.toml", fix="restore the run's config.toml") if (run_dir / "config.toml").is_file() else ""
    try:
        cfg = tomllib.loads(cfg_text) if cfg_text else {}
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{run_dir / 'config.toml'} is not valid TOML ({e}); restore the run's config.toml") from None
    summary = _read_json(run_dir / "summary.json").get("phases", {})
    base = _base_model(cfg)
    data_desc, data_id = _dataset_line(cfg)
    curriculum = cfg.get("curriculum") or []
    data = ModelCardData(library_name="transformers" if has_merged else "peft",
                         base_model=base if _hub_like(base) else None,
                         datasets=[data_id] if data_id else None,
                         tags=["srlkit", "supervised-reinforcement-learning", "grpo", *curriculum])
    eval_table = None
    if eval_path is not None:
        from srlkit.eval.table import markdown_table

        eval_table = markdown_table(json.loads(eval_path.read_text(encoding="utf-8")))
    card = ModelCard.from_template(
        data, template_path=str(TEMPLATE),
        title=run_dir.parent.name if run_dir.name == "train" else run_dir.name,  # pipeline layout: ROOT/train
        curriculum=" → ".join(p.upper() for p in curriculum) or "unknown", base=base, data_desc=data_desc,
        phases=_phases(cfg, summary), eval_table=eval_table, has_merged=has_merged, has_adapter=has_adapter,
        config_text=cfg_text.strip())
    return str(card).rstrip("\n") + "\n"


def export_model(run_dir: Path, out: Path | None = None, *, what: What = "both") -> Path:
    """Build `RUN/export/` (or `out`): model files + README.md card; returns the folder."""
    from srlkit.report.build import find_eval

    run_dir = Path(run_dir)
    final = run_dir / "final"
    if not final.is_dir():
        raise DataError(f"{run_dir} has no final/ model; finish training (or resume) before pushing")
    merged = (final / "config.json").is_file() and what in ("both", "merged")
    adapter_src = final / "adapter" if (final / "adapter" / "adapter_config.json").is_file() else None
    if (final / "adapter_config.json").is_file() and not (final / "config.json").is_file():
        adapter_src = final  # the final model is itself an adapter folder
    adapter = adapter_src is not None and what in ("both", "adapter")
    if not merged and not adapter:
        raise DataError(f"{final} holds no {'adapter' if what == 'adapter' else 'model'} to export")
    out = Path(out) if out else run_dir / "export"
    old = stage.claim(out, "export", reads=[final])  # empty, or an earlier export: never other files
    tmp = out.with_name(f".{out.name}.tmp")  # srlkit's own temp folder (hidden)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if merged:
        for f in final.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
    if adapter:
        shutil.copytree(adapter_src, tmp / "adapter", ignore=shutil.ignore_patterns("adapter"))
    if (run_dir / "config.toml").is_file():
        shutil.copy2(run_dir / "config.toml", tmp / "srlkit_config.toml")
    eval_path = find_eval(run_dir)
    if eval_path:
        shutil.copy2(eval_path, tmp / "eval_results.json")
    (tmp / "README.md").write_text(model_card(run_dir, eval_path, merged, adapter), encoding="utf-8")
    # the manifest lists exactly what `srlkit push --model` uploads, with sha256
    stage.finish(tmp, "export", stage.walk(tmp), config={"run": str(run_dir), "what": what})
    stage.clear(out, old)
    if out.exists():
        try:
            out.rmdir()
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StageError(f"{out} holds files srlkit did not write ({', '.join(sorted(os.listdir(out))[:3])}); "
                             "move them away and export again") from None
    os.replace(tmp, out)
    return out
