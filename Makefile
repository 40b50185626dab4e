# taskgate's chores, one target each; CI (.ci/run) calls the same ones.
#
#   make run     install what is needed, then serve the example app on http://127.0.0.1:8006
#   make cluster 2 API + 3 worker processes on one PostgreSQL database (scripts/cluster.py)
#   make test    the whole test suite (unit, contract, HTTP, acceptance)
#   make check   ruff check, ruff format --check, mypy --strict
#   make bench   the benchmark (bench/run.py); prints figures
#   make lock    refresh uv.lock after editing pyproject.toml
#   make clean   remove caches and build output (distclean: the environments too)
#
# Needs Python 3.11+ (python3.11, else python3) and make. Installing creates two
# environments: .tools/ (just uv, pinned) and .venv/ (taskgate and its locked deps).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced
export UV_PYTHON_DOWNLOADS := never

# python3.11 if there is one, else python3 when it is 3.11 or newer; as the real
# executable (a pyenv shim's path would make uv rebuild .venv on every sync).
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell { command -v python3.11 >/dev/null 2>&1 && python3.11 -c 'import sys; print(sys.executable)'; } \
	|| python3 -c 'import sys; sys.exit(sys.version_info < (3, 11)) or print(sys.executable)' 2>/dev/null \
	|| true)
endif

HOST ?= 127.0.0.1
PORT ?= 8006
DB ?= sqlite:///var/taskgate.db
APP ?= taskgate.example:app
SERVE_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=
CLUSTER_ARGS ?=
# make cluster: DB= given (command line or environment) wins over a database of its own
CLUSTER_DB := $(if $(filter command line environment,$(origin DB)),$(DB),postgresql://root@127.0.0.1:5432/taskgate_cluster)

.PHONY: help install run cluster test check bench lock clean distclean

help:
	@sed -n 's/^#   //p' Makefile

$(UV):
	@test -n "$(PYTHON)" || { echo "make: Python 3.11 or newer is needed (python3.11 or python3)" >&2; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Re-synced only when the lock file or pyproject.toml is newer than the last sync.
$(STAMP): $(UV) uv.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: Python 3.11 or newer is needed (python3.11 or python3)" >&2; exit 1; }
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(STAMP)

run: install
	@mkdir -p var
	$(VENV)/bin/taskgate serve $(APP) --db $(DB) --host $(HOST) --port $(PORT) $(SERVE_ARGS)

cluster: install
	$(VENV)/bin/python -m scripts.cluster --db $(CLUSTER_DB) --app $(APP) $(CLUSTER_ARGS)

test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

check: install
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/mypy

bench: install
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

lock: $(UV)
	$(UV) lock --python $(PYTHON)

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist test-artifacts
	find src tests bench scripts -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(TOOLS)
