#!/usr/bin/env bash
# The learning experiments of benchmarks/RESULTS.md ("Learning on chain_sum"), on one GPU.
#
#   bash scripts/gpu_learning.sh OUT_DIR [STEPS] [EVAL_SIZE]
#
# Runs, in parallel (small model, one GPU): the curriculum comparison (base, SFT, RLVR, SRL,
# SRL->RLVR; equal optimizer steps), setting variants of the SRL->RLVR arm (the paper's
# next-step prompt with EOS-ended steps, EOS-ended continuation steps, a higher lr, LoRA), and the
# `make demo` recipe as it is. Expects srlkit importable and the bundled SmolLM2 findable
# (srlkit.assets.smollm2_dir); data and held-out files under $DATA (default .gpu/c/data, made by
# `python scripts/gpu_learning_prep.py`) so the GPU machine needs no reasoning-gym.
set -u
OUT=${1:?give an output folder}
STEPS=${2:-60}
EVAL=${3:-500}
DATA=${DATA:-.gpu/c}
PY=${PY:-python3}
mkdir -p "$OUT"
export OMP_NUM_THREADS=2 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
$PY -c "from srlkit.assets import smollm2_dir; print(smollm2_dir())" || exit 1

for name in main v-paper v-eos v-lr3e5 v-lora; do
  mkdir -p "$OUT/$name/eval"; [ -d "$OUT/$name/data" ] || cp -r "$DATA/data" "$OUT/$name/data"
done
bench() {  # name, arms, extra args...
  local name=$1 arms=$2; shift 2
  $PY benchmarks/curriculum.py --out "$OUT/$name" --arms "$arms" --steps "$STEPS" --eval-size "$EVAL" \
      --heldout "$DATA/heldout.jsonl" --k 4 --save-every 0 "$@" > "$OUT/$name.$arms.log" 2>&1
}

for arm in base sft rlvr srl srl_rlvr; do bench main $arm & done
bench v-paper srl_rlvr --set train.phases.srl.prompt_style=table --set train.phases.srl.step_end=eos \
    --set train.phases.srl.max_new_tokens=64 &
bench v-eos srl_rlvr --set train.phases.srl.step_end=eos --set train.phases.srl.max_new_tokens=64 &
bench v-lr3e5 srl_rlvr --set train.phases.srl.lr=3e-5 --set train.phases.rlvr.lr=3e-5 &
bench v-lora srl_rlvr --set train.model.lora.enabled=true --set train.model.lora.r=16 \
    --set train.model.lora.alpha=32 --set train.phases.srl.lr=2e-4 --set train.phases.rlvr.lr=2e-4 &
( $PY -m srlkit train --config pipelines/tiny-cpu.toml --data "$DATA/data" --out "$OUT/demo" \
    && $PY -m srlkit eval base "$OUT/demo" --bench "$DATA/heldout300.jsonl" --k 0 --max-new-tokens 64 \
       --out "$OUT/demo/eval.json" ) > "$OUT/demo.log" 2>&1 &
wait
bench main base,sft,rlvr,srl,srl_rlvr   # every arm cached: prints the table
for v in v-paper v-eos v-lr3e5 v-lora; do cp "$OUT/main/eval/base.json" "$OUT/$v/eval/"; bench $v base,srl_rlvr; done
tail -n 12 "$OUT"/*.log
