"""`srlkit embed` against a plain `SentenceTransformer.encode` over the same steps, in the same run.

    python benchmarks/embed.py [--gsm 1000] [--batch-size 64]
    python benchmarks/embed.py --int8-probe 600    # int8 dynamic quantisation: speed and fidelity

Data: the bundled CHAMP problems and `--gsm` reasoning-gym gsm_symbolic problems, each
decomposed with `srlkit decompose` (every step a target). The baseline encodes the SRL
`target` column as it stands (one row per instance) with the same model, batch size and
normalisation. Each variant runs in its own subprocess, so peak RSS is its own. Times
exclude Python imports and include the model load; `srlkit embed` also includes reading
the tables, dedup, sorting and writing the shards.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def decompose_all(root: Path, gsm: int, champ: bool = True) -> dict[str, Path]:
    from srlkit.config import DecomposeConfig
    from srlkit.data.decompose import decompose

    out = {}
    if champ:
        out["champ"] = root / "champ"
        decompose(DecomposeConfig(), out["champ"], show_progress=False)
    if gsm:
        import reasoning_gym

        src = root / "gsm.jsonl"
        with src.open("w", encoding="utf-8") as fh:
            for i, item in enumerate(reasoning_gym.create_dataset("gsm_symbolic", size=gsm, seed=0)):
                fh.write(json.dumps({"question": item["question"], "answer": item["metadata"]["answer_cot"]}) + "\n")
        out["gsm_symbolic"] = root / "gsm"
        decompose(DecomposeConfig(source=str(src), preset="gsm8k"), out["gsm_symbolic"], show_progress=False)
    return out


def run_plain(data_dir: Path, batch_size: int) -> dict:
    import polars as pl
    from sentence_transformers import SentenceTransformer

    from srlkit.assets import minilm_path

    t0 = time.perf_counter()
    texts = pl.concat([pl.read_parquet(f, columns=["target"]) for f in sorted((data_dir / "srl").glob("*.parquet"))])
    texts = texts["target"].to_list()
    model = SentenceTransformer(minilm_path())
    vecs = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return {"seconds": time.perf_counter() - t0, "encoded": len(texts), "dim": int(vecs.shape[1])}


def run_srlkit(data_dir: Path, batch_size: int) -> dict:
    from srlkit.config import EmbedConfig
    from srlkit.embed.run import embed_with_stats

    t0 = time.perf_counter()
    _, st = embed_with_stats(data_dir, EmbedConfig(batch_size=batch_size))
    return {"seconds": time.perf_counter() - t0, "encoded": st.distinct, "rows": st.steps, "dim": st.dim}


def child(variant: str, data_dir: str, batch_size: int) -> None:
    import sentence_transformers  # noqa: F401  imports are not timed
    import torch  # noqa: F401

    res = (run_plain if variant == "plain" else run_srlkit)(Path(data_dir), batch_size)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(res), flush=True)


def measure(variant: str, data_dir: Path, batch_size: int) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, str(data_dir), "--batch-size", str(batch_size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])


def int8_probe(n: int, batch_size: int) -> None:
    """fp32 against int8 dynamic quantisation (`torch.ao` on every Linear) of the packaged MiniLM,
    on the first `n` distinct CHAMP steps, in this process: second-run times and cosine to fp32."""
    import numpy as np
    import polars as pl
    import torch
    from sentence_transformers import SentenceTransformer

    from srlkit.assets import minilm_path

    with tempfile.TemporaryDirectory() as tmp:
        d = decompose_all(Path(tmp), 0)["champ"]
        texts = pl.concat([pl.read_parquet(f, columns=["target"]) for f in sorted((d / "srl").glob("*.parquet"))])
    texts = texts["target"].unique(maintain_order=True).to_list()[:n]
    fp32 = SentenceTransformer(minilm_path(), device="cpu")
    int8 = torch.ao.quantization.quantize_dynamic(SentenceTransformer(minilm_path(), device="cpu"),
                                                  {torch.nn.Linear}, dtype=torch.qint8)
    res = {}
    for name, model in (("fp32", fp32), ("int8", int8)):
        for _ in range(2):  # the second run is timed
            t = time.perf_counter()
            vecs = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
            res[name] = (time.perf_counter() - t, np.asarray(vecs, np.float32))
    cos = (res["fp32"][1] * res["int8"][1]).sum(1)
    print(json.dumps({"steps": len(texts), "threads": torch.get_num_threads(), "fp32_s": round(res["fp32"][0], 2),
                      "int8_s": round(res["int8"][0], 2), "speedup": round(res["fp32"][0] / res["int8"][0], 2),
                      "cosine_to_fp32_min": round(float(cos.min()), 4), "cosine_to_fp32_mean": round(float(cos.mean()), 4)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gsm", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeat-plain", type=int, default=1, help="0: run the baseline once, not twice")
    ap.add_argument("--no-champ", action="store_true", help="only the reasoning-gym data")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "DIR"))
    ap.add_argument("--int8-probe", type=int, default=0, metavar="N", help="fp32 vs int8 on N CHAMP steps, then exit")
    args = ap.parse_args()
    if args.int8_probe:
        int8_probe(args.int8_probe, args.batch_size)
        return
    if args.child:
        child(args.child[0], args.child[1], args.batch_size)
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        dirs = decompose_all(Path(tmp), args.gsm, champ=not args.no_champ)
        print(f"# decomposed in {time.perf_counter() - t0:.1f}s", flush=True)
        for name, d in dirs.items():
            # plain first, then srlkit, then plain again: load on a shared machine drifts
            p1 = measure("plain", d, args.batch_size)
            s = measure("srlkit", d, args.batch_size)
            p2 = measure("plain", d, args.batch_size) if args.repeat_plain else p1
            plain_s = min(p1["seconds"], p2["seconds"])
            row = {"data": name, "srl_rows": p1["encoded"], "distinct_steps": s["encoded"],
                   "plain_s": round(plain_s, 2), "srlkit_s": round(s["seconds"], 2),
                   "speedup": round(plain_s / s["seconds"], 2),
                   "plain_peak_rss_mb": p1["peak_rss_mb"], "srlkit_peak_rss_mb": s["peak_rss_mb"]}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
