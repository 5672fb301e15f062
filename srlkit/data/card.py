"""The last stage: the dataset card (README.md), regenerated from manifest.json.

Never edited by hand. Rendered in one place: `huggingface_hub.DatasetCard.from_template` with
`templates/dataset_card.md`. The YAML `configs:` block makes `datasets.load_dataset(DIR, "srl")`
and `(DIR, "rlvr")` work; the body states the source and license, the exact command, the stats,
the reject reasons and the accepted + rejected = input identity. Later stages contribute their
own section through `STAGE_SECTIONS`: `srlkit embed` adds `manifest["embeddings"]` and calls
`write_card` again.
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


TEMPLATE = Path(__file__).parent / "templates" / "dataset_card.md"


def _configs(manifest: dict) -> list[dict]:
    """The card's `configs:` list: `load_dataset(DIR, "srl")`, `"rlvr"`, `"embeddings-<slug>"`."""
    configs = []
    for table, splits in manifest.get("splits", {}).items():
        entry: dict = {"config_name": table}
        if table == "srl":
            entry["default"] = True
        entry["data_files"] = [{"split": split, "path": f"{table}/{split}-*.parquet"} for split in splits]
        configs.append(entry)
    if not manifest.get("splits"):  # nothing accepted: `load_dataset(DIR, "rejects")` still shows why
        configs.append({"config_name": "rejects", "data_files": [{"split": "train", "path": "rejects.parquet"}]})
    for slug, info in sorted((manifest.get("embeddings") or {}).items()):
        if isinstance(info, dict) and info.get("path"):  # `srlkit embed` output, joinable on target_hash
            configs.append({"config_name": f"embeddings-{slug}",
                            "data_files": [{"split": "train", "path": f"{info['path']}/*.parquet"}]})
    return configs


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


def _command(manifest: dict) -> str:
    if manifest.get("command"):
        return manifest["command"]
    spec = manifest["source"].get("spec")
    return "srlkit decompose" + (f" {spec}" if spec else "") + "  # (library call; options in manifest.json)"


def _embeddings_section(emb: dict) -> str:
    """`srlkit embed`'s section: one entry per embedding model it wrote."""
    lines = ["Step embeddings written by `srlkit embed`; each has its own config above "
             "(`embeddings-<model>`), joined to SRL rows on `target_hash`.", ""]
    for slug, info in sorted(emb.items()):
        lines += [f"### `{slug}`", ""]
        lines += [f"- {k}: `{v}`" for k, v in sorted(info.items())] if isinstance(info, dict) else [f"- {info}"]
        lines.append("")
    return "\n".join(lines)


# Stages after decompose add a key to manifest.json; each key with an entry here gets its own
# section, in this order, between the decompose sections and the file list.
STAGE_SECTIONS = {"embeddings": ("Embeddings", _embeddings_section)}


def card(manifest: dict, histogram: str | None = None):
    """The dataset card (a `huggingface_hub.DatasetCard`) for a decompose folder's manifest.

    `histogram` is the file name of a steps-per-trajectory plot beside the card, if one was drawn.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    c, s, cfg, src = manifest["counts"], manifest["stats"], manifest["config"], manifest["source"]
    lic = src.get("license", "unknown")
    data = DatasetCardData(license="mit" if lic.lower().startswith("mit") else "other",
                           pretty_name=f"SRL / RLVR step data from {src['name']}",
                           tags=["srl", "rlvr", "reasoning", "srlkit"], configs=_configs(manifest))
    columns = ", ".join(f"{k}=`{v}`" for k, v in manifest["columns"].items() if v)
    if manifest.get("preset"):
        columns += f" (preset `{manifest['preset']}`)"
    split_rows = [{"table": table, "split": split, "shards": len(names),
                   "rows": sum(manifest["files"][f]["rows"] for f in names)}
                  for table, splits in manifest.get("splits", {}).items() for split, names in splits.items()]
    spt = s["steps_per_trajectory"]
    sections = [{"title": title, "body": render_section(manifest[key])}
                for key, (title, render_section) in STAGE_SECTIONS.items() if manifest.get(key)]
    return DatasetCard.from_template(
        data, template_path=str(TEMPLATE),
        source=src, license_text=lic, columns=columns, command=_command(manifest),
        version=manifest["srlkit_version"], counts=c, split_rows=split_rows, config=cfg,
        targets_doc=TARGETS_DOC[cfg["targets"]],
        preamble=(s.get("preamble") or {"step": 0, "merged": 0}) if s["strategies"].get("numbered") else None,
        histogram=histogram, stats=s, stage_sections=sections,
        tables={"steps": _table(spt["histogram"], ("steps", "trajectories"), key=int),
                "chars": _table(s["chars_per_step"]["histogram"], ("chars per step", "steps"), key=_bucket_key),
                "strategies": _table(s["strategies"], ("strategy", "trajectories")),
                "rejects": _table(s["reject_reasons"], ("reason", "rows")),
                "rlvr_rejects": _table(s["rlvr_reject_reasons"], ("reason", "rows"))},
        files=sorted(manifest["files"].items()),
    )


def render(manifest: dict, histogram: str | None = None) -> str:
    """The card's text (YAML front matter + Markdown body), ending with a newline."""
    return str(card(manifest, histogram)).rstrip("\n") + "\n"


def write_card(out: Path | str) -> Path:
    """Regenerate `out/README.md` (and its histogram) from `out/manifest.json`; returns its path."""
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    path = out / "README.md"
    write_text(path, render(manifest, HISTOGRAM if _write_histogram(out) else None))
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


def steps_counts(data_dir: Path) -> list[int]:
    """Steps per trajectory of every trajectory in the SRL table.

    From the manifest's statistics when there is one (reading the SRL shards back costs more than
    the rest of the card at 100k trajectories): a trajectory is in the table unless `--targets`
    skips one of its steps and it has only one. Otherwise from the shards themselves.
    """
    mf = Path(data_dir) / "manifest.json"
    if mf.is_file():
        m = json.loads(mf.read_text(encoding="utf-8"))
        hist = m.get("stats", {}).get("steps_per_trajectory", {}).get("histogram")
        if hist is not None:
            skip = m.get("config", {}).get("targets", "all") != "all"
            return [int(k) for k, v in hist.items() for _ in range(v) if not (skip and int(k) < 2)]
    import polars as pl

    files = sorted((Path(data_dir) / "srl").glob("*.parquet"))
    if not files:
        return []
    df = pl.concat([pl.read_parquet(f, columns=["trajectory_id", "num_steps"]) for f in files])
    return df.unique("trajectory_id")["num_steps"].to_list()


def plot_steps_histogram(data_dir: Path, path: Path) -> Path | None:
    """Histogram of steps per trajectory of a decomposed dataset (for its dataset card)."""
    counts = steps_counts(data_dir)
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
