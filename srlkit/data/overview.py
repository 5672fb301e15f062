"""What `srlkit inspect DIR` shows: a decomposed folder's summary (from its manifest) and a few rendered instances."""

from __future__ import annotations

from pathlib import Path

from srlkit.errors import DataError


def load_manifest(folder: Path | str) -> dict:
    """The manifest of a finished decompose output (files not re-hashed: inspect only reads a few rows)."""
    from srlkit import stage

    if not (Path(folder) / "manifest.json").is_file():
        raise DataError(f"'{folder}' has no manifest.json; make it with `srlkit decompose --out {folder}`")
    return stage.require(folder, "decompose", flag="inspect", verify=False)


def summary_lines(m: dict) -> list[str]:
    c, s = m["counts"], m["stats"]
    spt = s["steps_per_trajectory"]
    lines = [
        f"source: {m['source']['description']}",
        f"rows: {c['input']} in = {c['accepted']} accepted + {c['rejected']} rejected"
        f" ({c['rlvr_rejected']} more left out of RLVR only)",
    ]
    for table, splits in m.get("splits", {}).items():
        for split, names in splits.items():
            rows = sum(m["files"][f]["rows"] for f in names)
            lines.append(f"{table}/{split}: {rows} rows in {len(names)} shard(s)")
    lines.append(f"steps per trajectory: min {spt['min']} mean {spt['mean']} max {spt['max']}; "
                 f"chars per step: mean {s['chars_per_step']['mean']} max {s['chars_per_step']['max']}")
    lines.append("strategies: " + (", ".join(f"{k} {v}" for k, v in s["strategies"].items()) or "(none)"))
    lines.append("reject reasons: " + (", ".join(f"{k} {v}" for k, v in s["reject_reasons"].items()) or "(none)"))
    if s.get("rlvr_reject_reasons"):
        lines.append("rlvr-only rejects: " + ", ".join(f"{k} {v}" for k, v in s["rlvr_reject_reasons"].items()))
    return lines


def sample_instances(folder: Path | str, m: dict, n: int, table: str = "srl", split: str = "train") -> list[dict]:
    """The first n rows of a table/split (reads only the first shard(s) it needs)."""
    import polars as pl

    from srlkit import stage

    names = m.get("splits", {}).get(table, {}).get(split, [])
    out: list[dict] = []
    for name in names:
        if len(out) >= n:
            break
        bad = stage.problems(Path(folder), {name: (m.get("files") or {}).get(name, {})})
        if bad:
            raise DataError(f"{folder}: {bad[0]} since `srlkit decompose` wrote it; run it again")
        out += pl.read_parquet(Path(folder) / name, n_rows=n - len(out)).to_dicts()
    return out


def render_instance(row: dict) -> str:
    parts = [f"=== {row['id']}  (step {row.get('step_index', 0) + 1} of {row.get('num_steps', '?')}, "
             f"{row.get('strategy', '')})"] if "step_index" in row else [f"=== {row['id']}"]
    for msg in row["prompt"]:
        parts.append(f"[{msg['role']}]\n{msg['content']}")
    if "target" in row:
        parts.append(f"[target]\n{row['target']}")
    elif row.get("answer") is not None:
        parts.append(f"[answer]\n{row['answer']}")
    return "\n".join(parts)
