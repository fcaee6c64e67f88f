# The two commands: `make repro` builds the quickstart model offline; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin

# Nothing may phone home; models come from local paths and packages.
export DVC_NO_ANALYTICS := 1
export AXOLOTL_DO_NOT_TRACK := 1
export DEEPEVAL_TELEMETRY_OPT_OUT := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PATH := $(BIN):$(PATH)

.PHONY: repro test install clean-build

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

repro: $(VENV)/.installed
	@test -d .dvc || (dvc init -q && dvc config core.analytics false)
	distill compile distill.yaml
	dvc repro
	@distill summary distill.yaml

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

clean-build:
	rm -rf build
