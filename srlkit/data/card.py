"""The last stage: the dataset card (README.md), regenerated from manifest.json.

Never edited by hand. The YAML `configs:` block makes `datasets.load_dataset(DIR, "srl")`
and `(DIR, "rlvr")` work; the body states the source and license, the exact command,
the stats, the reject reasons and the accepted + rejected = input identity. `srlkit embed`
adds `manifest["embeddings"]` and calls `write_card` again.
"""

from __future__ import annotations

import json
from pathlib import Path

from srlkit.fileio import atomic_path, write_text

TARGETS_DOC = {
    "all": "every step is a target: a trajectory of N steps gives N instances, and step 1 is "
           "predicted from the problem alone",
    "skip-first": "steps 2..N are targets (N-1 instances), the paper's reading: its worked example "
                  "uses step 1 as context and step 2 as the first target",
    "skip-last": "steps 1..N-1 are targets (N-1 instances); the final step is never a target",
}


def _yaml_configs(manifest: dict) -> str:
    lines = ["configs:"]
    for table, splits in manifest.get("splits", {}).items():
        lines.append(f"- config_name: {table}")
        if table == "srl":
            lines.append("  default: true")
        lines.append("  data_files:")
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {table}/{split}-*.parquet"]
    if not manifest.get("splits"):  # nothing accepted: `load_dataset(DIR, "rejects")` still shows why
        lines += ["- config_name: rejects", "  data_files:", "  - split: train", "    path: rejects.parquet"]
    for slug, info in sorted((manifest.get("embeddings") or {}).items()):
        if isinstance(info, dict) and info.get("path"):  # `srlkit embed` output, joinable on target_hash
            lines += [f"- config_name: embeddings-{slug}", "  data_files:", "  - split: train",
                      f"    path: {info['path']}/*.parquet"]
    return "\n".join(lines)


def _table(rows: dict, head: tuple[str, str], key=None) -> str:
    if key is not None:
        rows = dict(sorted(rows.items(), key=lambda kv: key(kv[0])))
    if not rows:
        return "(none)\n"
    out = [f"| {head[0]} | {head[1]} |", "| --- | ---: |"]
    out += [f"| `{k}` | {v} |" for k, v in rows.items()]
    return "\n".join(out) + "\n"


def _bucket_key(label: str) -> int:
    """'<=64' sorts before '<=128'; '>8192' last."""
    n = int(label.lstrip("<=>"))
    return n + (1 if label.startswith(">") else 0)


def _preamble(counts: dict) -> str:
    """What happened to text before "1." in numbered solutions (headers alone are dropped)."""
    return (f"- Text before the first numbered step: its own untitled step in {counts.get('step', 0)} "
            f"trajectories, merged into step 1 (shorter than the minimum step length) in "
            f"{counts.get('merged', 0)}.")


def _command(manifest: dict) -> str:
    if manifest.get("command"):
        return manifest["command"]
    spec = manifest["source"].get("spec")
    return "srlkit decompose" + (f" {spec}" if spec else "") + "  # (library call; options in manifest.json)"


def render(manifest: dict) -> str:
    c, s, cfg = manifest["counts"], manifest["stats"], manifest["config"]
    src = manifest["source"]
    lic = src.get("license", "unknown")
    split_rows = []
    for table, splits in manifest.get("splits", {}).items():
        for split, names in splits.items():
            n = sum(manifest["files"][f]["rows"] for f in names)
            split_rows.append(f"| {table} | {split} | {n} | {len(names)} |")
    spt = s["steps_per_trajectory"]
    parts = [
        "---",
        _yaml_configs(manifest),
        f"license: {'mit' if lic.lower().startswith('mit') else 'other'}",
        "tags:\n- srl\n- rlvr\n- reasoning\n- srlkit",
        "---",
        "",
        f"# SRL / RLVR step data from {src['name']}",
        "",
        "Made by `srlkit decompose`: expert trajectories split into steps, "
        "one **SRL** instance per target step (predict the expert's next step given the problem "
        "and the steps so far) and one **RLVR** row per problem with a verified final answer.",
        "",
        "```python\nimport datasets\nsrl = datasets.load_dataset(\"PATH_OR_REPO\", \"srl\")\n"
        "rlvr = datasets.load_dataset(\"PATH_OR_REPO\", \"rlvr\")\n```",
        "",
        "## Source",
        "",
        f"- {src['description']}",
        f"- License: {lic}",
        f"- Fingerprint: `{src['fingerprint'][:16]}`",
        f"- Columns: {', '.join(f'{k}=`{v}`' for k, v in manifest['columns'].items() if v)}"
        + (f" (preset `{manifest['preset']}`)" if manifest.get("preset") else ""),
        "",
        "## Command",
        "",
        f"```\n{_command(manifest)}\n```",
        "",
        f"srlkit {manifest['srlkit_version']}; the full resolved options are in `manifest.json`.",
        "",
        "## Counts",
        "",
        f"**accepted + rejected = input: {c['accepted']} + {c['rejected']} = {c['input']}** source rows. "
        f"{c['rlvr_rejected']} accepted rows have no verifiable answer and are left out of RLVR only.",
        *(["", "**No row was accepted**, so there are no `srl` or `rlvr` configs; "
               "`datasets.load_dataset(DIR, \"rejects\")` loads the reasons."] if c["accepted"] == 0 else []),
        "",
        "| table | split | rows | shards |",
        "| --- | --- | ---: | ---: |",
        *split_rows,
        "",
        f"Train/validation split by trajectory (seeded hash of the id, seed {cfg['seed']}, "
        f"val_size {cfg['val_size']}): no step of a validation problem is in train.",
        "",
        "## Instances",
        "",
        f"- Steps: strategy `{cfg['steps']}`; targets `{cfg['targets']}`: {TARGETS_DOC[cfg['targets']]}.",
        "  Use `--targets skip-first` to reproduce the paper's N-1 instances per trajectory.",
        f"- Title hint: {'on (the next step title is in the prompt; target = body only)' if cfg['title_hint'] else 'off'}.",
        f"- Step length {cfg['min_step_chars']}..{cfg['max_step_chars']} chars (tiny steps merged, giant ones split); "
        f"{cfg['min_trajectory_steps']}..{cfg['max_trajectory_steps']} steps per trajectory.",
        *([_preamble(s.get("preamble") or {})] if s["strategies"].get("numbered") else []),
        "",
        "## Stats",
        "",
        f"Steps per trajectory: min {spt['min']}, mean {spt['mean']}, max {spt['max']}. "
        f"Characters per step: mean {s['chars_per_step']['mean']}, max {s['chars_per_step']['max']}.",
        "",
        _table(spt["histogram"], ("steps", "trajectories"), key=int),
        _table(s["chars_per_step"]["histogram"], ("chars per step", "steps"), key=_bucket_key),
        "Segmentation strategies (per trajectory):",
        "",
        _table(s["strategies"], ("strategy", "trajectories")),
        "## Rejects",
        "",
        "Every rejected row is in `rejects.parquet` with its source row and reason.",
        "",
        _table(s["reject_reasons"], ("reason", "rows")),
        "RLVR-only rejects:",
        "",
        _table(s["rlvr_reject_reasons"], ("reason", "rows")),
    ]
    emb = manifest.get("embeddings")
    if emb:
        parts += ["## Embeddings", "",
                  "Step embeddings written by `srlkit embed`; each has its own config above "
                  "(`embeddings-<model>`), joined to SRL rows on `target_hash`.", ""]
        for slug, info in sorted(emb.items()):
            parts.append(f"### `{slug}`")
            parts.append("")
            if isinstance(info, dict):
                parts += [f"- {k}: `{v}`" for k, v in sorted(info.items())]
            else:
                parts.append(f"- {info}")
            parts.append("")
    parts += ["## Files", "", "| file | rows | sha256 |", "| --- | ---: | --- |"]
    parts += [f"| `{k}` | {v['rows']} | `{v['sha256'][:16]}` |" for k, v in sorted(manifest["files"].items())]
    return "\n".join(parts) + "\n"


def write_card(out: Path | str) -> Path:
    """Regenerate `out/README.md` from `out/manifest.json`; returns its path."""
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    path = out / "README.md"
    text = render(manifest)
    if _write_histogram(out):
        text = text.replace(
            "## Stats\n", "## Stats\n\n![Steps per trajectory](steps_hist.png)\n", 1
        )
    write_text(path, text)
    return path


HISTOGRAM = "steps_hist.png"


def _write_histogram(out: Path) -> bool:
    """Steps-per-trajectory histogram PNG beside the card (skipped without matplotlib)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # matplotlib is optional for data prep
        return False
    with atomic_path(out / HISTOGRAM, suffix=".tmp.png") as tmp:
        return plot_steps_histogram(out, tmp) is not None


def plot_steps_histogram(data_dir: Path, path: Path) -> Path | None:
    """Histogram of steps per trajectory of a decomposed dataset (for its dataset card)."""
    import polars as pl

    files = sorted((Path(data_dir) / "srl").glob("*.parquet"))
    if not files:
        return None
    df = pl.concat([pl.read_parquet(f, columns=["trajectory_id", "num_steps"]) for f in files])
    counts = df.unique("trajectory_id")["num_steps"].to_list()
    if not counts:
        return None
    from srlkit.plotting import pyplot, save_png

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.3))
    lo, hi = min(counts), max(counts)
    ax.hist(counts, bins=[b - 0.5 for b in range(lo, hi + 2)], color="tab:blue", edgecolor="white")
    ax.xaxis.get_major_locator().set_params(integer=True)  # steps are whole numbers
    ax.set_xlabel("steps per trajectory")
    ax.set_ylabel("trajectories")
    ax.set_title(f"{len(counts)} trajectories, median {sorted(counts)[len(counts) // 2]} steps")
    return save_png(fig, Path(path))
