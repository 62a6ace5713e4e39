# myapp: `make run` serves the API, `make test` runs the suite. Both install first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
BIN := $(VENV)/bin
# Python 3.12 when present (a pyenv shim counts: .python-version names the versions),
# else any Python >= 3.11.
PYTHON ?= $(shell for p in python3.12 python3.13 python3.11 python3; do \
	if $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	command -v $$p; break; fi; done)
STAMP := $(VENV)/.installed
# Some machines (this project's CI among them) set PYTHONDONTWRITEBYTECODE=1: every
# run then recompiles every module and re-rewrites every test's asserts, seconds
# of each suite run. Python's default, caching bytecode, is restored here.
unexport PYTHONDONTWRITEBYTECODE
POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/myapp_test
PYTEST_ARGS ?=
UNITTEST := $(BIN)/python -W error::DeprecationWarning -m unittest discover -s tests -t . -q

.PHONY: help install run worker test test-postgres pgbouncer test-unittest test-browser fuzz soak bench mutation tox lint format cov clean openapi chromium screenshots

help:
	@echo "make run            serve the API on http://127.0.0.1:5000 (SQLite in instance/)"
	@echo "make worker         deliver queued email (flask mail-worker; production)"
	@echo "make test           full suite on SQLite, with the coverage gate"
	@echo "make test-postgres  full suite on PostgreSQL ($(POSTGRES_URL))"
	@echo "make test-browser   /docs and the /account console in headless Chromium (installs it)"
	@echo "make fuzz           long fuzzing campaign (schemathesis + hypothesis)"
	@echo "make soak           mixed-workload soak against gunicorn + PostgreSQL"
	@echo "make bench          benchmarks (installs wrk) -> docs/performance.md"
	@echo "make mutation       mutation testing (mutmut) -> docs/test-strength.md"
	@echo "make tox            tox -e py312-sqlite,py312-postgres"
	@echo "make openapi        rewrite docs/openapi.json from the code"
	@echo "make lint           ruff check, ruff format --check, mypy (make format fixes style)"
	@echo "make cov | clean | install"

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 not found (install python3.12)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres,dev,bench]'
	touch $(STAMP)

run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask run

# Delivers the outbox's email (production; development delivers eagerly, no worker).
worker: install
	$(BIN)/flask mail-worker

test: install
	$(BIN)/pytest --cov --cov-report=term-missing $(PYTEST_ARGS)
	$(UNITTEST)

test-postgres: install pgbouncer
	TEST_DATABASE_URL=$(POSTGRES_URL) MYAPP_TEST_EXPECT_BACKEND=postgresql \
		$(BIN)/pytest --cov --cov-report=term-missing $(PYTEST_ARGS)
	TEST_DATABASE_URL=$(POSTGRES_URL) MYAPP_TEST_EXPECT_BACKEND=postgresql $(UNITTEST)

# Debian's Chromium, installed when missing (root, or sudo); Playwright drives it.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# Debian's PgBouncer, installed when missing: the PostgreSQL suite and the soak run
# the app through it in transaction mode.
pgbouncer:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq pgbouncer; }

# axe-core from the npm registry, at the version the committed lock file names.
AXE = tests/browser/axe/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/axe/package-lock.json
	cd tests/browser/axe && npm ci --no-audit --no-fund
	touch $(AXE)

test-browser: install chromium $(AXE)
	CHROMIUM=$(CHROMIUM) $(BIN)/pytest -m browser tests/browser $(PYTEST_ARGS)

# Each account console page at 375 px and 1280 px -> docs/screenshots/ (README links them).
screenshots: install chromium $(AXE)
	CONSOLE_SCREENSHOTS=docs/screenshots CHROMIUM=$(CHROMIUM) $(BIN)/pytest -m browser \
		tests/browser/test_console_pages.py -p no:randomly -q

# A long property-based and schemathesis campaign (the suite runs a short one).
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/fuzz $(PYTEST_ARGS)

# Mixed workload against gunicorn + PostgreSQL; fails on any 5xx or inconsistency.
SOAK_ARGS ?= --duration 60 --clients 8
soak: install pgbouncer
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# Serving (gunicorn + wrk), isolation and suite timings -> docs/performance.md.
BENCH_ARGS ?=
bench: install pgbouncer
	@command -v wrk >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

test-unittest: install
	$(UNITTEST)

# Mutation testing (mutmut): the suite's strength per file -> docs/test-strength.md.
# Long on 2 cores, so not in CI; re-run when an issue changes myapp/. MUTATION_ARGS
# takes mutant patterns, e.g. MUTATION_ARGS='"myapp.auth.service*"'.
MUTATION_ARGS ?=
mutation: install pgbouncer
	$(BIN)/python bench/mutation.py $(MUTATION_ARGS)

tox: install
	$(BIN)/tox -e py312-sqlite,py312-postgres

LINT_PATHS := myapp tests migrations bench
# ruff (lint rules and formatting) over everything; mypy over the package (setup.cfg).
lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

# Rewrite what ruff can fix: formatting, import order, simple rule fixes.
format: install
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

cov: install
	$(BIN)/pytest --cov --cov-report=html --cov-report=term $(PYTEST_ARGS)
	@echo "open htmlcov/index.html"

openapi: install
	$(BIN)/flask openapi write docs/openapi.json

clean:
	rm -rf $(VENV) .tox .pytest_cache htmlcov .coverage .coverage.* build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
