# `make demo`: set up .venv and run the whole job on the bundled sample. `make test`: the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo

.PHONY: setup demo test clean

$(BIN)/edgehound: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[train,export,dev]"
	touch $@

setup: $(BIN)/edgehound

demo: setup
	rm -rf $(RUN)
	$(BIN)/edgehound data info tests/sample
	$(BIN)/edgehound train --data tests/sample --config tiny --out $(RUN)
	$(BIN)/edgehound evaluate $(RUN)/best.pt --data tests/sample --split test --json $(RUN)/evaluate.json

test: setup
	$(BIN)/python -m pytest tests

clean:
	rm -rf runs .pytest_cache
