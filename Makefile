# Every target that runs code depends on `setup`, so a fresh clone needs only `make demo` or `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# Pinned: this version installs a CPU build from local disk; a looser pin pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/gnndist partition --dataset cora --parts 2 --method metis --out out/demo-cora --force
	$(BIN)/gnndist inspect out/demo-cora --check

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check gnndist partitioners tests scripts

bench: setup
	$(BIN)/python scripts/bench_partition.py --out scripts/results/bench_partition.json

clean:
	rm -rf $(VENV) out
