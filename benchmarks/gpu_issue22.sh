#!/usr/bin/env bash
# Issue 22 on one GPU, in one command (~6-8 min on an H200), offline.  [gpu]
#
#   bash benchmarks/gpu_issue22.sh          # from the repository root; results under $OUT (default out/gpu22)
#
# Needs: torch (CUDA), transformers, peft, accelerate, typer, pyarrow, pandas on the machine, and
# .whl/ carried beside the tree: the wheels below (pip download --no-deps, cp312 manylinux) and
# .whl/tok/ (the bundled SmolLM2 tokenizer: tokenizer.json, tokenizer_config.json,
# chat_template.jinja). The random-weight Qwen2.5-0.5B shape is built on the machine.
#   pydantic==2.14.4 pydantic-core==2.50.5 annotated-types typing-inspection tomli-w
#   trl==1.16.0 datasets==5.2.0 dill multiprocess xxhash   (+ datasets==4.8.5 requests urllib3
#   charset-normalizer in .whl/fallback/, used only if datasets 5.2 does not import)
#
# Steps, most important first, each under its own time limit and writing to $OUT as it goes:
#   1. srlkit vs TRL at the issue's shape (gpu_throughput.py: 8 prompts x G=8, 256-token prompts,
#      128 new tokens, LoRA r16, bf16, HF generation, checkpointing on both sides) -> throughput.jsonl
#   2. the memory estimate against torch.cuda.max_memory_allocated, two shapes, checkpointing on
#      and off (memory_check.py) -> memory.jsonl
#   3. the update's forward+backward per layout: plain vs packed with SDPA's 4D mask vs packed with
#      FlexAttention, and the fitted W of pack_policy for CUDA (packing.py) -> packing.jsonl
#   4. srlkit at the issue's shape with FlexAttention packing forced on -> throughput.jsonl
#   5. the gpu-marked tests, if pytest is installed -> pytest.log
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu22}
mkdir -p "$OUT"
START=$SECONDS
DEADLINE=${DEADLINE:-470}  # seconds for the whole script
SITE=/tmp/srlkit-site22
export TMPDIR=/tmp/srlkit-gpu22 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$TMPDIR"
log() { echo "[$((SECONDS - START))s] $*" | tee -a "$OUT/steps.log"; }
left() { local l=$((DEADLINE - (SECONDS - START))); [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }

# SMOKE=1: the same steps at toy sizes on whatever device is here, with the installed packages
# (a check of the script itself, e.g. on CPU: SMOKE=1 DEADLINE=1200 bash benchmarks/gpu_issue22.sh)
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 0 ]; then
    python -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl > "$OUT/pip.log" 2>&1
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ "$SMOKE" = 0 ] && ! python -c "import datasets, trl" >> "$OUT/pip.log" 2>&1; then
    log "datasets 5.2 does not import here: installing the fallback wheels"
    python -m pip install -q --no-index --no-deps --upgrade --target "$SITE" .whl/fallback/*.whl >> "$OUT/pip.log" 2>&1
fi
python - > "$OUT/versions.txt" 2>&1 <<'EOF'
import importlib, torch
print("device", torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "torch", torch.__version__)
for m in ("transformers", "peft", "accelerate", "trl", "datasets", "pydantic", "huggingface_hub", "pyarrow"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as e:
        print(m, "MISSING", e)
EOF
cat "$OUT/versions.txt"
MODEL=random:qwen2.5-0.5b
TOK=.whl/tok
SHAPE=(--prompts 8 --G 8 --prompt-len 256 --max-new 128 --steps 3)
MEM_CASES=64:280:128:16:1,64:280:128:16:0,16:1024:256:16:1,16:1024:256:16:0
PACK=(--rows 64 --repeats 3 --shapes 8:280:128,8:1024:64,8:64:512)
if [ "$SMOKE" != 0 ]; then
    MODEL=random:tiny
    SHAPE=(--prompts 2 --G 2 --prompt-len 16 --max-new 8 --steps 1)
    MEM_CASES=4:32:16:8:1,4:32:16:8:0
    PACK=(--rows 4 --repeats 1 --shapes 2:32:8)
fi
# packing.py and memory_check.py build the random model in the same folder (TMPDIR/srlkit-bench)
COMMON=(--engine hf --model $MODEL --tokenizer $TOK --work "$TMPDIR/srlkit-bench" "${SHAPE[@]}")

log "1. srlkit vs TRL, checkpointing on both sides"
timeout "$(left 220)" python benchmarks/gpu_throughput.py "${COMMON[@]}" --sides srlkit,trl --gradient-checkpointing true \
    --out "$OUT/throughput.jsonl" > "$OUT/throughput.log" 2>&1
log "   exit $?"

log "2. memory estimate vs max_memory_allocated"
timeout "$(left 100)" python benchmarks/memory_check.py --model $MODEL --tokenizer $TOK \
    --cases $MEM_CASES \
    --out "$OUT/memory.jsonl" > "$OUT/memory.log" 2>&1
log "   exit $?"

log "3. packing layouts: plain vs SDPA 4D mask vs FlexAttention"
KINDS=sdpa,flex_attention
python -c "import torch, sys; sys.exit(not torch.cuda.is_available())" || KINDS=sdpa  # flex has no CPU backward
timeout "$(left 150)" python benchmarks/packing.py --model $MODEL --tokenizer $TOK "${PACK[@]}" --kinds $KINDS \
    --out "$OUT/packing.jsonl" > "$OUT/packing.log" 2>&1
log "   exit $?"

log "4. srlkit with FlexAttention packing on"
timeout "$(left 80)" python benchmarks/gpu_throughput.py "${COMMON[@]}" --sides srlkit --gradient-checkpointing true \
    --pack-prompts true --out "$OUT/throughput.jsonl" > "$OUT/throughput_flex.log" 2>&1
log "   exit $?"

if python -c "import pytest" 2>/dev/null && [ "$(left 60)" -ge 30 ]; then
    log "5. gpu-marked tests"
    # the tests' fixtures take the bundled SmolLM2's tokenizer; a tiny stand-in model carries it here
    export SRLKIT_CACHE="$TMPDIR/cache"
    python - <<'EOF'
import os, shutil
from pathlib import Path
from transformers import LlamaConfig, LlamaForCausalLM
d = Path(os.environ["SRLKIT_CACHE"]) / "smollm2-135m-instruct"
if not (d / "model.safetensors").is_file():
    LlamaForCausalLM(LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                 num_attention_heads=4, num_key_value_heads=2)).save_pretrained(d)
    for f in os.listdir(".whl/tok"):
        shutil.copy(Path(".whl/tok") / f, d / f)
EOF
    timeout "$(left 60)" python -m pytest -q -m gpu tests/train/test_packing.py tests/train/test_memory.py \
        -p no:cacheprovider > "$OUT/pytest.log" 2>&1
    log "   exit $?"
fi
log "done"
