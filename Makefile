# `make demo`: set up and run the whole job on the bundled sample. `make test`: the test suite.
# `make test-arm`: the runtime on an emulated Raspberry Pi (arm64 Debian under qemu; needs root).
PYTHON ?= python3
VENV ?= .venv
TVM_VENV ?= .venv-tvm
BIN := $(VENV)/bin
RUN ?= runs/demo

.PHONY: setup demo test test-arm clean

# Two environments: TVM's compiler cannot share one with litert-torch (typing-extensions pins
# conflict), so it gets .venv-tvm and export calls it as a subprocess.
$(BIN)/edgehound: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[train,export,bench,analysis,dev]"
	test -x $(TVM_VENV)/bin/python || $(PYTHON) -m venv $(TVM_VENV)
	$(TVM_VENV)/bin/python -m pip install --quiet -e ".[tvm-compile]"
	touch $@

setup: $(BIN)/edgehound

demo: setup
	rm -rf $(RUN)
	# the shipped edge model (trained without these photos) on the committed sample
	$(BIN)/edgehound evaluate runtime/models/edge/manifest.json --data tests/sample --no-progress
	$(BIN)/edgehound classify runtime/models/edge tests/sample/n02111889 --artifact tflite-int8
	# the whole job on the bundled sample: train a tiny model, score it, export everything, benchmark
	$(BIN)/edgehound data info tests/sample
	$(BIN)/edgehound train --data tests/sample --config tiny --out $(RUN)/train
	$(BIN)/edgehound evaluate $(RUN)/train/best.pt --data tests/sample --split test --json $(RUN)/evaluate.json
	$(BIN)/edgehound export $(RUN)/train/best.pt --out $(RUN)/export
	$(BIN)/edgehound bench $(RUN)/export --out $(RUN)/bench --runs 50

test: setup
	$(BIN)/python -m pytest tests

test-arm: setup
	bash tests/arm/emulated_pi.sh

clean:
	rm -rf runs .pytest_cache
