# OrderPulse — the two set-up commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlruns/mlflow.db
export PYTHONDONTWRITEBYTECODE := 1
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install run test test-all lint format bench bench-autogluon sample lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)  ## create .venv with the pinned dependencies

run: $(STAMP)  ## train on data/sample if no champion exists, then serve on 127.0.0.1:8000
	$(BIN)/orderpulse quickstart --data data/sample --host $(HOST) --port $(PORT)

test: $(STAMP)  ## the whole test suite (what CI runs)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-all: $(STAMP)  ## tests including the slow ones that read ../shared/data
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --run-slow

lint: $(STAMP)  ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## accuracy and speed benchmarks on ../shared/data (minutes)
	@for b in benchmarks/*_bench.py benchmarks/forecast_*.py benchmarks/anomaly_*.py; do \
	  [ -f "$$b" ] || continue; echo "== $$b"; $(BIN)/python "$$b" || exit $$?; done

AG_VENV := .venv-autogluon
$(AG_VENV)/.installed: benchmarks/peers/requirements-autogluon.txt
	@test -x $(AG_VENV)/bin/python || $(PYTHON) -m venv $(AG_VENV)
	$(AG_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/peers/requirements-autogluon.txt
	@touch $@

bench-autogluon: $(STAMP) $(AG_VENV)/.installed  ## the forecast benchmarks with the AutoGluon peer (own venv with torch, ~2.5 GB; 20 min per dataset)
	$(BIN)/python benchmarks/forecast_rossmann.py --skip-ets --autogluon
	$(BIN)/python benchmarks/forecast_online_retail.py --autogluon

sample: $(STAMP)  ## rebuild data/sample from ../shared/data
	$(BIN)/python scripts/make_sample.py --shared ../shared/data --out data/sample

lock:  ## re-resolve requirements.lock from pyproject.toml (needs the package index)
	rm -rf /tmp/orderpulse-lock && $(PYTHON) -m venv /tmp/orderpulse-lock
	/tmp/orderpulse-lock/bin/pip install --quiet -e '.[postgres,dask,notebooks,dev,bench]'
	{ echo "# Exact versions installed by \`make\` (generated from a venv with all extras: pip freeze)."; \
	  echo "# Regenerate: make lock"; /tmp/orderpulse-lock/bin/pip freeze --all | grep -v -e "^pip==" -e '^-e' -e '^orderpulse'; } > requirements.lock

clean:
	rm -rf $(VENV) $(AG_VENV) .pytest_cache .ruff_cache
