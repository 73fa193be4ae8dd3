# frkit: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

CONFIG ?= session.toml
DEMO   := demo/out/session

.PHONY: help install demo test bench clean session stage1 stage2 stage3

help:
	@echo "make demo     install, then run the session pipeline on a built-in synthetic example"
	@echo "make session CONFIG=session.toml   run stages 1-3 of a session (-j N: recordings in parallel)"
	@echo "make stage1|stage2|stage3 CONFIG=session.toml   one stage (and what it needs)"
	@echo "make test     install, then run the test suite"
	@echo "make bench    side-by-side benchmark against pyflowreg (installs it in bench/.peer-venv)"
	@echo "make clean    remove the virtual environment and demo outputs"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	@echo "== synthetic session (3 recordings, motion inside and between them): $(DEMO)"
	@$(BIN)/python -m frkit.demo session $(DEMO)
	@$(MAKE) --no-print-directory session CONFIG=$(DEMO)/session.toml
	@$(BIN)/python -m frkit.demo summary $(DEMO)/session.toml

# The session's rules are generated from CONFIG (and checked) on every run;
# make then redoes only what is missing or out of date.
session stage1 stage2 stage3: $(STAMP)
	@mk=$$($(BIN)/python -m frkit.session plan $(CONFIG)) && \
	  PATH="$(abspath $(BIN)):$$PATH" $(MAKE) --no-print-directory -f "$$mk" $(if $(filter session,$@),all,$@)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/compensate_vs_pyflowreg.py

clean:
	rm -rf $(VENV) demo/out
