# Every target that runs code depends on `setup`, so a fresh clone needs only `make demo` or `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

DGL_VENV := .venv-dgl
DGL_STAMP := $(DGL_VENV)/.installed

.PHONY: setup demo test lint bench bench-env dgl-env clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# Pinned: this version installs a CPU build from local disk; a looser pin pulls a CUDA build.
	# Byte-compiled at install (pip's default): where PYTHONDONTWRITEBYTECODE is set, as here, no
	# process would cache its compiled imports, and every Ray worker would compile torch afresh.
	$(BIN)/pip install -q torch==2.13.0 -e '.[dev]'
	touch $(STAMP)

# GraphSAGE on the bundled Cora: 2 METIS parts, 2 data-parallel workers on a local Ray.
demo: setup
	$(BIN)/gnndist train --out out/demo --overwrite --plot out/demo/training.png
	$(BIN)/gnndist inspect out/demo/parts --check

# The suite in .venv, where the DGL tests skip; then the DGL tests in DGL's environment, if `make dgl-env` built it.
test: setup
	$(BIN)/python -m pytest -q
	if [ -f $(DGL_STAMP) ]; then $(DGL_VENV)/bin/python -m pytest -q tests/dgl_env; fi

lint: setup
	$(BIN)/ruff check gnndist partitioners tests scripts

bench: setup bench-env
	$(BIN)/python scripts/bench_partition.py --out scripts/results/bench_partition.json
	$(BENCH_VENV)/bin/python scripts/bench_sampler.py --out scripts/results/bench_sampler.json
	$(BENCH_VENV)/bin/python scripts/bench_train.py --out scripts/results/bench_train.json
	$(BENCH_VENV)/bin/python scripts/bench_parity.py --out scripts/results/bench_parity.json
	$(BENCH_VENV)/bin/python scripts/bench_train.py --concurrent-steps --sizes 100000:2000000 \
		--out scripts/results/bench_train_concurrent_steps.json

# The peers' environment for benchmarks only (never part of setup or CI): PyG's NeighborLoader
# needs torch-sparse (and torch-scatter): the registry now has wheels for this torch (about 2 minutes
# here); where it has none, pip compiles them from source (about 30 minutes on 2 cores).
bench-env: $(BENCH_STAMP)

$(BENCH_STAMP): pyproject.toml
	$(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip setuptools wheel
	$(BENCH_VENV)/bin/pip install -q torch==2.13.0
	$(BENCH_VENV)/bin/pip install -q -e '.[dev]'
	MAX_JOBS=2 $(BENCH_VENV)/bin/pip install -q --no-build-isolation torch-scatter torch-sparse
	touch $(BENCH_STAMP)

# DGL's environment, beside the main one (about 4 minutes, 6 GB): PyPI's last DGL for Python 3.11,
# 2.1.0, ships its C++ libraries for torch 2.0 to 2.2.1 only, and PyPI's torch 2.2.1 is a CUDA
# build (the nvidia-* packages come with it; it runs on CPU too). The other pins: DGL imports
# torchdata.datapipes, which torchdata 0.10 removed; DGL 2.1 and torch 2.2 are built against
# NumPy 1; pyarrow 26 (the dev extra's) refuses NumPy 1. One pip run, so that gnndist's own
# requirements cannot move any of them.
dgl-env: $(DGL_STAMP)

$(DGL_STAMP): pyproject.toml
	$(PY) -m venv $(DGL_VENV)
	$(DGL_VENV)/bin/pip install -q --upgrade pip
	$(DGL_VENV)/bin/pip install -q torch==2.2.1 dgl==2.1.0 torchdata==0.7.1 'numpy<2' 'pyarrow<26' -e '.[dev]'
	touch $(DGL_STAMP)

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(DGL_VENV) out
