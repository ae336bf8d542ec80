# The two commands a fresh machine needs: `make demo` (the main job) and `make test` (lint + test suite).
# Both create .venv and install the pinned stack on first use (3-12 minutes: llama-cpp-python compiles
# once, then pip's wheel cache makes reinstalls fast).
# llama.cpp is built for a portable x86-64 baseline (AVX2/FMA/F16C) instead of -march=native: a native
# build on a CPU that reports AMX crashed with a general-protection fault at the first chat request where
# the kernel does not grant AMX state (measured on this project's machines); the portable build is also
# faster to compile (2.6 min vs 7-9 min on 2 cores).
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-extended lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev,server,ray]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/semsr run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

test-extended: $(STAMP)
	$(BIN)/pytest -m extended

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .semsr runs .pytest_cache .ruff_cache
