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

from srlkit.errors import DataError

BUNDLED_BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"
What = Literal["both", "merged", "adapter"]


def _hub_like(ref: str | None) -> bool:
    """`owner/name` that is not a local path: worth a `base_model:` entry in the card."""
    return bool(ref) and ref.count("/") == 1 and not Path(ref).exists() and not ref.startswith((".", "/"))


def _read_json(p: Path) -> dict[str, Any]:
    try:
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}
    except json.JSONDecodeError:
        return {}


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


def _phase_rows(cfg: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    rows = ["| phase | table | rewards | steps | prompts/step | G | lr | dynamic sampling |",
            "|---|---|---|---|---|---|---|---|"]
    g = (cfg.get("rollout") or {}).get("num_generations", "?")
    for name in cfg.get("curriculum") or []:
        p = (cfg.get("phases") or {}).get(name, {})
        rewards = ", ".join(r["name"] for r in p.get("rewards", [])) or "— (cross-entropy)"
        steps = (summary.get(name) or {}).get("steps", p.get("steps", "?"))
        dyn = (p.get("sampling") or {}).get("dynamic", False)
        rows.append(f"| {name} | {p.get('table', '?')} | {rewards} | {steps} | {p.get('prompts_per_step', '?')} "
                    f"| {g if p.get('kind', 'grpo') != 'sft' else '—'} | {p.get('lr', '?')} | {'yes' if dyn else 'no'} |")
    return rows


def model_card(run_dir: Path, eval_path: Path | None, has_merged: bool, has_adapter: bool) -> str:
    """The README.md text for an exported run."""
    cfg_text = (run_dir / "config.toml").read_text(encoding="utf-8") if (run_dir / "config.toml").is_file() else ""
    cfg = tomllib.loads(cfg_text) if cfg_text else {}
    summary = _read_json(run_dir / "summary.json").get("phases", {})
    base = _base_model(cfg)
    data_desc, data_id = _dataset_line(cfg)
    curriculum = " → ".join(p.upper() for p in cfg.get("curriculum") or []) or "unknown"
    front = ["---", "library_name: transformers" if has_merged else "library_name: peft"]
    if _hub_like(base):
        front.append(f"base_model: {base}")
    if data_id:
        front += ["datasets:", f"- {data_id}"]
    front += ["tags:", "- srlkit", "- supervised-reinforcement-learning", "- grpo",
              *[f"- {p}" for p in cfg.get("curriculum") or []], "---", ""]
    title = run_dir.parent.name if run_dir.name == "train" else run_dir.name  # pipeline layout: ROOT/train
    md = front + [
        f"# {title}: {curriculum} with srlkit", "",
        f"Trained with srlkit from **{base}** with the curriculum **{curriculum}** "
        "(Supervised Reinforcement Learning: step-wise similarity rewards on expert steps, "
        "then RLVR on final answers).", "",
        "## Base model", "", f"- `{base}`", "",
        "## Datasets", "", f"- {data_desc}", "",
        "## Curriculum", "", *_phase_rows(cfg, summary), "",
    ]
    if eval_path is not None:
        from srlkit.eval.table import markdown_table

        md += ["## Evaluation", "", "Greedy accuracy and avg@k with 95% bootstrap CIs (`srlkit eval`).", "",
               markdown_table(json.loads(eval_path.read_text(encoding="utf-8"))), ""]
    md += ["## Files", ""]
    if has_merged:
        md.append("- the merged model at the root: `AutoModelForCausalLM.from_pretrained(REPO)`")
    if has_adapter:
        md.append("- the LoRA adapter in `adapter/`: `PeftModel.from_pretrained(base, REPO, subfolder='adapter')`")
    md += ["- `srlkit_config.toml`: the resolved training config", ""]
    if cfg_text:
        md += ["## Training config", "", "```toml", cfg_text.strip(), "```", ""]
    return "\n".join(md)


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
    tmp = out.with_name(out.name + ".tmp")
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
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
