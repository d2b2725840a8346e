# `make demo` and `make test` are all a fresh machine needs: both create .venv and install
# everything first (torch 2.13.0 CPU, pinned, for the generative lane only).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit system-deps docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,generative]'
	touch $@

setup: $(STAMP)

# Debian's ffmpeg: the tests compare our per-frame hashes with `ffmpeg -f framehash`.
# Installed when we may (root, apt); otherwise that one test skips locally (CI requires it).
system-deps:
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's ffmpeg"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else echo "note: ffmpeg is not installed; the framehash comparison test will be skipped"; fi; }

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

unit: setup system-deps
	$(BIN)/pytest

test: lint typecheck unit

# The operation catalogue is generated from the registry; a test fails when it is stale.
docs: setup
	$(BIN)/python -m forensic.classical.catalogue > docs/operations.md.tmp
	mv docs/operations.md.tmp docs/operations.md

clean:
	rm -rf $(VENV) build fixtures/generated .mypy_cache .ruff_cache .pytest_cache
