# make demo: train the tutorial's stacked LSTM on the bundled GOOG data (writes runs/demo/)
# make test: the import-layering contracts (pyproject.toml) and the default test suite (`make test-slow`: the long ones)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test test-slow lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/jaxlstm train --arch stacked --out runs/demo --overwrite

test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check jaxlstm tests benchmarks data
	$(BIN)/ruff format --check jaxlstm tests benchmarks data

clean:
	rm -rf $(VENV) runs .pytest_cache
