# frkit: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install demo test test-all bench clean

help:
	@echo "make demo     install, then run the pipeline on a built-in synthetic example"
	@echo "make test     install, then run the test suite"
	@echo "make bench    side-by-side benchmark against pyflowreg (installs it in bench/.peer-venv)"
	@echo "make clean    remove the virtual environment and demo outputs"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	@PATH="$(abspath $(BIN)):$$PATH" sh demo/run.sh demo/out

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/compensate_vs_pyflowreg.py

clean:
	rm -rf $(VENV) demo/out
