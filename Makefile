# execflow: `make test` (lint, types, unit and integration tests on a real local control plane)
# and `make demo` (the operator running example workloads). Both work from a fresh clone: the venv,
# the package and the control-plane binaries (built once from their Go modules, then cached) are
# all created here.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: all venv binaries lint unit integration test demo crds benchmarks clean cluster-down

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

binaries: $(STAMP)
	$(BIN)/python -m execflow.devcluster.build

lint: $(STAMP)
	$(BIN)/ruff check operator tests benchmarks
	$(BIN)/ruff format --check operator tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: binaries
	$(BIN)/pytest tests/unit -q

integration: binaries
	$(BIN)/pytest tests/integration -q

test: lint binaries
	$(BIN)/pytest tests/unit tests/integration -q

crds: $(STAMP)
	$(BIN)/python -m execflow.api.crdgen --out crds charts/execflow/crds

demo: binaries
	$(BIN)/python -m execflow.demo

benchmarks: binaries
	$(BIN)/python benchmarks/scheduler.py

cluster-down: $(STAMP)
	$(BIN)/execflow cluster down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
