# `make help` lists the targets. Every target that runs Python builds .venv first (a no-op when up to date).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
export RESULTS_DIR ?= $(CURDIR)/results
export DATA_DIR ?= $(CURDIR)/data
# The tools are where installing runkit puts them, .venv/bin (RUNKIT_BIN: the tests point it at this checkout).
RUNKIT_BIN ?= $(CURDIR)/$(VENV)/bin
export PATH := $(RUNKIT_BIN):$(PATH)

.PHONY: help env lint test test-fast mutants bench clean-env sync tune_lr search_grid search_random search_tpe search_halving search_hyperband
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

env: $(VENV)/.done ## build .venv: requirements.txt's exact pins, then runkit (pip install -e .; tools in .venv/bin)

# pip copies the tools into .venv/bin: an edited tool is installed again.
$(VENV)/.done: requirements.txt pyproject.toml $(wildcard tools/*)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q -e .
	touch $@

lint: env ## ruff (pyproject.toml's [tool.ruff]), then mypy on rundir/ and sweeps/ ([tool.mypy])
	$(VENV)/bin/ruff check -q .
	$(VENV)/bin/mypy

# The suite on TEST_WORKERS pytest-xdist workers, a test file's tests on one and the SLURM tests all on one
# (tests/helpers/workers.py). TEST_WORKERS=0: one process, as plain pytest.
TEST_WORKERS ?= 2
PYTEST := $(VENV)/bin/python -m pytest -q -rs -n $(TEST_WORKERS)

test: lint ## ruff and mypy, then the whole test suite: fast, slow and SLURM tests (what CI runs)
	$(PYTEST) -m ""

test-fast: lint ## ruff and mypy, then the fast default suite (about 2 minutes on 2 cores)
	$(PYTEST)

mutants: env ## apply each one-line breaking change of scripts/mutants.list to a copy of the checkout: its tests must fail
	$(VENV)/bin/python scripts/mutants

BENCHES := loop checkpoint runbatch sweep collect startup snapshot search report_scale

bench: env ## run every benchmark in bench/, full (~45 min on 2 cores); .venv/bin/python bench/X.py --quick: one, short
	for b in $(BENCHES); do $(VENV)/bin/python bench/$$b.py || exit 1; done

sync: env ## keep SYNC_DEST (host:path, set in e.sh) in step with this checkout; SYNC_FLAGS=--once for one sync
	@if [ -z "$(SYNC_DEST)" ]; then echo "make sync: SYNC_DEST is not set; export SYNC_DEST=host:path (see e.sh)" >&2; exit 2; fi
	$(RUNKIT_BIN)/sync $(SYNC_FLAGS) $(CURDIR) "$(SYNC_DEST)"

clean-env: ## remove .venv
	rm -rf $(VENV)

# tune_lr: DATASET=cifar10 switches the sweep to experiments/tune_lr/cifar10.yaml (runs in tune_lr_cifar10).
DATASET ?= digits
JOBS ?= 2
TUNE_LR_NAME := tune_lr$(if $(filter-out digits,$(DATASET)),_$(DATASET))
TUNE_LR_GRID := experiments/tune_lr/$(if $(filter-out digits,$(DATASET)),$(DATASET),grid).yaml

tune_lr: env ## train the learning-rate sweep on digits (DATASET=cifar10 for CIFAR-10), plot it, write report.html
	@test -f $(TUNE_LR_GRID) || { echo "make: no $(TUNE_LR_GRID): DATASET is digits or cifar10" >&2; exit 2; }
	set -o pipefail; gridgen $(TUNE_LR_GRID) | runbatch -j $(JOBS)
	set -o pipefail; collect $(RESULTS_DIR)/$(TUNE_LR_NAME) | plot lr -o $(RESULTS_DIR)/$(TUNE_LR_NAME)/$(TUNE_LR_NAME).png
	set -o pipefail; collect $(RESULTS_DIR)/$(TUNE_LR_NAME) | report -o $(RESULTS_DIR)/$(TUNE_LR_NAME)/report.html

# The searches of experiments/search/ on digits (docs/search.md; bench/search.py compares them). Offline;
# each resumes where it stopped when run again, and a finished one reruns nothing.
SEARCH := experiments/search

search_grid: env ## the full grid: 45 digits MLPs (learning rate x weight decay x width), 27 epochs each
	set -o pipefail; gridgen $(SEARCH)/grid.yaml | runbatch -j $(JOBS)

search_random: env ## random search: 15 points of the same space, 27 epochs each
	set -o pipefail; gridgen $(SEARCH)/random.yaml | runbatch -j $(JOBS)

search_tpe: env ## TPE: 15 points proposed 3 a round by Optuna from the rounds before (propose)
	JOBS=$(JOBS) scripts/rounds $(RESULTS_DIR)/search_tpe propose $(SEARCH)/tpe.yaml -n 3 --startup 6

search_halving: env ## successive halving over the full grid's 45 points: 1, 3, 9, then 27 epochs (halving)
	JOBS=$(JOBS) scripts/rounds --history $(RESULTS_DIR)/search_halving halving $(SEARCH)/halving.yaml --eta 3 --min-epochs 1

search_hyperband: env ## Hyperband: halving in 4 brackets (27 points from 1 epoch, 12 from 3, 6 from 9, 4 at 27)
	for b in 0:1 1:3 2:9 3:27; do \
	  JOBS=$(JOBS) scripts/rounds --history $(RESULTS_DIR)/hyperband$${b%:*} halving $(SEARCH)/hyperband/bracket$${b%:*}.yaml --min-epochs $${b#*:} || exit $$?; \
	done
