# make demo: train the tutorial's stacked LSTM on the bundled GOOG data (writes runs/demo/)
# make test: the import-layering contracts (pyproject.toml) and the fast tier of the tests; make test-all: both tiers
# make forecast: a 20-day backtest of the bundled GOOG data, then the next 20 NYSE sessions with calibrated bands
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test test-slow test-all forecast lint cli-docs clean

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

forecast: $(VENV)/.installed
	$(BIN)/jaxlstm backtest --arch vanilla --target-transform log-return --horizon 20 --folds 12 --test-days 40 \
		--seeds 3 --calibration-window 100 --mc-dropout 50 --out runs/forecast-backtest --overwrite --quiet
	$(BIN)/jaxlstm forecast --run runs/forecast-backtest --quiet

test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadscope

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

test-all: test test-slow

lint: $(STAMP)
	$(BIN)/ruff check jaxlstm tests benchmarks data
	$(BIN)/ruff format --check jaxlstm tests benchmarks data

cli-docs: $(VENV)/.installed
	$(BIN)/python -m jaxlstm.commands.reference > docs/cli.md

clean:
	rm -rf $(VENV) runs .pytest_cache
