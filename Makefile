# `make help` lists the targets. Every target that runs Python builds .venv first (a no-op when up to date).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
export RESULTS_DIR ?= $(CURDIR)/results
export DATA_DIR ?= $(CURDIR)/data
export PATH := $(CURDIR)/tools:$(CURDIR)/$(VENV)/bin:$(PATH)
TOOLS := train gridgen runbatch collect plot sync

.PHONY: help env test test-fast bench clean-env sync
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

env: $(VENV)/.done ## build .venv with the exact pins of requirements.txt (no-op when up to date)

$(VENV)/.done: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q --no-deps -e . --config-settings editable_mode=compat
	for t in $(TOOLS); do printf '#!/bin/sh\nexec "%s/$(VENV)/bin/python" "%s/tools/%s" "$$@"\n' "$(CURDIR)" "$(CURDIR)" $$t > $(VENV)/bin/$$t; chmod +x $(VENV)/bin/$$t; done
	touch $@

test: env ## run the whole test suite: fast, slow and SLURM tests (what CI runs)
	$(VENV)/bin/python -m pytest -m "" -q

test-fast: env ## run the fast default suite (a few minutes on 2 cores)
	$(VENV)/bin/python -m pytest -q

sync: env ## keep SYNC_DEST (host:path, set in e.sh) in step with this checkout; SYNC_FLAGS=--once for one sync
	@if [ -z "$(SYNC_DEST)" ]; then echo "make sync: SYNC_DEST is not set; export SYNC_DEST=host:path (see e.sh)" >&2; exit 2; fi
	$(CURDIR)/tools/sync $(SYNC_FLAGS) $(CURDIR) "$(SYNC_DEST)"

clean-env: ## remove .venv
	rm -rf $(VENV)
