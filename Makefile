# ReportQA — `make run` serves the bundled report, `make test` runs the whole suite.
# Everything installs into a project-local virtual environment (.venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup setup-dev browser audit ingest eval bench clean

run: setup ## set up, (re)build the index if missing or stale, serve on 127.0.0.1:8000
	$(BIN)/reportqa ingest --if-stale
	$(BIN)/reportqa serve --host $(HOST) --port $(PORT)

test: setup-dev browser ## set up and run the whole test suite (and report known vulnerabilities)
	-@$(MAKE) --no-print-directory audit
	$(BIN)/python -m pytest -q

# Reports only: where PyPI's per-release JSON is unreachable, pip-audit says what it could not check.
audit:
	@echo "pip-audit (pinned dependencies):"
	-@timeout 300 $(BIN)/pip-audit --local --progress-spinner off 2>&1 | tail -n 40

setup: $(STAMP)

# torch first, from its CPU build: a plain `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

# Headless Chromium and its driver for the browser tests (Debian packages; needs root or sudo).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "could not install chromium; browser tests will skip"; \
	else echo "not root: install chromium and chromium-driver to run the browser tests"; fi

ingest: setup
	$(BIN)/reportqa ingest

eval: setup
	$(BIN)/reportqa eval

bench: setup
	$(BIN)/reportqa bench

clean:
	rm -rf var .pytest_cache
