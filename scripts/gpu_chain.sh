#!/usr/bin/env bash
# Issue 20 on one GPU: is SRL->RLVR at least SRL at the same budget (60 optimizer steps), for
# several training seeds, and with which RLVR settings? Every run is a separate
# benchmarks/curriculum.py process (they share the GPU; the model is small), all started at once:
#
#   bash scripts/gpu_chain.sh OUT [SEEDS] [EVAL] [MINUTES]
#
# Per training seed: `srl` (60 SRL steps) and `srl_rlvr` (30 + 30) under each variant below; every
# arm scored greedily on the same EVAL held-out problems ($DATA/heldout.jsonl, made on a CPU by
# scripts/gpu_learning_prep.py). MINUTES caps the whole sweep (unfinished arms are reported as such).
set -u
OUT=${1:?give an output folder}
SEEDS=${2:-"0 1 2"}
EVAL=${3:-300}
MINUTES=${4:-8}
DATA=${DATA:-.gpu/c}
PY=${PY:-python3}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
declare -A VARIANT=(
  [default]=""
  [pps16]="--set train.phases.rlvr.prompts_per_step=16"
  [pps16kl]="--set train.phases.rlvr.prompts_per_step=16 --set train.phases.rlvr.kl_beta=0.05 --set train.phases.rlvr.warmup_steps=5"
)
run() {  # name arms args...
  local name=$1 arms=$2; shift 2
  mkdir -p "$OUT/$name"; [ -d "$OUT/$name/data" ] || cp -r "$DATA/data" "$OUT/$name/data"
  timeout $((MINUTES * 60)) $PY benchmarks/curriculum.py --out "$OUT/$name" --arms "$arms" --steps "${STEPS:-60}" \
      --eval-size "$EVAL" --heldout "$DATA/heldout.jsonl" --k 0 --save-every 0 --eval-every "${EVAL_EVERY:-10}" --eval-max-new-tokens 64 ${MODEL:+--model "$MODEL"} "$@" \
      > "$OUT/$name.log" 2>&1
  echo "$name exit $?" >> "$OUT/status.txt"
}
for s in $SEEDS; do
  run "s$s-srl" srl --train-seed "$s" &
  for v in "${!VARIANT[@]}"; do
    # shellcheck disable=SC2086
    run "s$s-$v" srl_rlvr --train-seed "$s" ${VARIANT[$v]} &
  done
done
run base base &
# Issue 20, item 8: the paper's regime, gym:gsm_symbolic (worked word-problem solutions a 135M model
# cannot imitate exactly); long solutions need longer caps.
GSM="--task gsm_symbolic --set train.rollout.max_new_tokens=256 --set train.rollout.max_prompt_tokens=768
     --set train.phases.srl.max_new_tokens=96 --set train.val_solve_max_new_tokens=256"
gsm() {  # arm
  local name="gsm-$1"
  mkdir -p "$OUT/$name"; [ -d "$OUT/$name/data" ] || cp -r "$DATA/gsm" "$OUT/$name/data"
  # shellcheck disable=SC2086
  timeout $((MINUTES * 60)) $PY benchmarks/curriculum.py --out "$OUT/$name" --arms "$1" --steps "${STEPS:-60}" \
      --eval-size "$EVAL" --heldout "$DATA/heldout_gsm.jsonl" --k 0 --save-every 0 --eval-every "${EVAL_EVERY:-10}" --eval-max-new-tokens 256 ${MODEL:+--model "$MODEL"} $GSM \
      > "$OUT/$name.log" 2>&1
  echo "$name exit $?" >> "$OUT/status.txt"
}
if [ "${WITH_GSM:-1}" = 1 ]; then
  for arm in base sft srl srl_rlvr; do gsm $arm & done
fi
wait
$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
from srlkit.eval.metrics import paired_bootstrap_ci
def greedy(d, arm):
    f = d / "eval" / f"{arm}.full.samples.jsonl"
    if not f.is_file():
        return None
    return {json.loads(x)["id"]: float(json.loads(x)["greedy_correct"]) for x in f.read_text().splitlines() if x.strip()}
lines = []
for d in sorted(out.glob("s*-*")):
    if not d.is_dir() or d.name.endswith("-srl"):
        continue
    seed = d.name.split("-")[0]
    a, b = greedy(out / f"{seed}-srl", "srl"), greedy(d, "srl_rlvr")
    if not a or not b:
        lines.append(f"{d.name}: UNFINISHED (srl {'ok' if a else 'missing'}, chain {'ok' if b else 'missing'})")
        continue
    ids = sorted(set(a) & set(b))
    xa, xb = [a[i] for i in ids], [b[i] for i in ids]
    lo, hi = paired_bootstrap_ci(xa, xb)
    lines.append(f"{d.name}: srl-60 {100*sum(xa)/len(ids):.1f}%  chain {100*sum(xb)/len(ids):.1f}%  "
                 f"delta {100*(sum(xb)-sum(xa))/len(ids):+.1f} [{100*lo:+.1f}, {100*hi:+.1f}] n={len(ids)}")
(out / "summary.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
for d in "$OUT"/gsm-*/; do [ -f "$d/table.md" ] && { echo "== $d"; cat "$d/table.md"; }; done | tee "$OUT/gsm_tables.txt"
cat "$OUT/status.txt"
