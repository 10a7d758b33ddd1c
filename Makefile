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

$(VENV)/.installed: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/segmint demo

# both linters report before the exit status says whether either found something
lint: $(VENV)/.installed-test
	@status=0; \
	$(BIN)/ruff check src tests || status=1; \
	$(BIN)/mypy src || status=1; \
	exit $$status

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache
