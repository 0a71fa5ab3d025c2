# GRPO course: `make run` trains the tiny model on CPU, `make test` runs every test.
# Both create .venv/ on first use and reinstall only when the pins change.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBMAKE_TIMEOUT ?= 1200
PYTEST_WORKERS ?= 2

export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false
# console scripts of the venv (grpo-course, accelerate) resolve in tests and notebooks
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup run test lint test-fast clean

help:  ## show this help
	@echo "GRPO course - make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 13), "Python 3.10-3.13 needed, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv with the CPU pin set and the course package

run: $(STAMP)  ## GRPO-train the tiny model on CPU (the embedded default)
	$(BIN)/grpo-course train

lint: $(STAMP)  ## ruff over src/, tests/, benchmarks/ and notebooks/
	$(BIN)/ruff check src tests benchmarks notebooks

test: $(STAMP) lint  ## lint, unit tests, and every notebook under nbmake
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests \
		--nbmake --nbmake-timeout=$(NBMAKE_TIMEOUT) notebooks

test-fast: $(STAMP)  ## unit tests only (no notebooks, no network)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not network and not slow" tests

clean:  ## remove .venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
