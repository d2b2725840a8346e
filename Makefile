# `make demo` and `make test` are all a fresh machine needs: both create .venv and install
# everything first (torch 2.13.0 CPU, pinned, for the generative lane only).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-all lint typecheck unit slow system-deps docs clean bench stress

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,generative]'
	touch $@

setup: $(STAMP)

# Debian's ffmpeg, poppler-utils, jq and openssl: the tests compare our per-frame hashes
# with `ffmpeg -f framehash`, check report signatures with poppler's `pdfsig`, render pages
# with `pdftoppm`, and run the report's printed OpenSSL recipe; the workbench's browser tests
# drive Debian's chromium through Playwright (no browser download). Installed when we may (root,
# apt); otherwise those tests skip locally (CI requires them).
SYSTEM_TOOLS := ffmpeg:ffmpeg pdfsig:poppler-utils pdftoppm:poppler-utils pdftotext:poppler-utils \
  pdfdetach:poppler-utils jq:jq openssl:openssl chromium:chromium strace:strace
system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: not installed:$$missing; the tests that need them will be skipped"; fi; fi

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

# The default test run leaves out the tests marked slow (end-to-end: every CLI --json shape,
# the batch's restart and CLI runs, the stress harnesses' quick forms, ...): about ten minutes on
# 2 cores. `make slow` runs only those; `make test-all` (and CI, .ci/run) runs both.
unit: setup system-deps
	$(BIN)/pytest -m "not slow"

slow: setup system-deps
	$(BIN)/pytest -m slow

test: lint typecheck unit

test-all: test slow

# Benchmarks (issue 8): the same set-up as `make test`, plus the benchmark-only extra (bm3d),
# then every section; prints the table and writes build/bench/results.json and bench/RESULTS.md.
# `$(BIN)/python -m bench --quick` is a fast pass; `--only SECTION` runs one section.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,generative,bench]'
	touch $@

bench: setup $(BENCH_STAMP)
	$(BIN)/python -m bench

# Stress harnesses (issue 15): every section of stress.SECTIONS in full (hostile inputs, fuzzer,
# kills, tampering, concurrent writers); prints the counts, writes build/stress/results.json and
# docs/stress.md, and fails on any exit 70, hang, traceback, changed original, unusable case or
# undetected change. `make test` runs the quick forms (tests/test_stress*.py, tests/test_fuzz.py);
# `$(BIN)/python -m stress --only hostile` runs one section.
stress: setup system-deps
	$(BIN)/python -m stress

# The operation catalogue is generated from the registry; a test fails when it is stale.
docs: setup
	$(BIN)/python -m forensic.classical.catalogue > docs/operations.md.tmp
	mv docs/operations.md.tmp docs/operations.md

clean:
	rm -rf $(VENV) build fixtures/generated .mypy_cache .ruff_cache .pytest_cache
