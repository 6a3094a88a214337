# Jobcore — `make run` starts everything, `make test` installs and tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# uv uses the machine's Python 3.11 and never downloads an interpreter.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON ?= 3.11
export TZ := UTC

.PHONY: help install run worker api lint format mypy test test-faults test-scale test-containers bench clean

help:
	@echo "make run          start Redis (embedded unless REDIS_URL), SMTP sink, API, worker"
	@echo "make test         install, lint, type-check and run the fast tests"
	@echo "make test-faults  the slow fault-injection tier"
	@echo "make test-scale   workers on several hosts (network namespaces, as root) and a Redis failover"
	@echo "make test-containers  build the images and run the compose stack (root, Docker engine)"
	@echo "make bench        benchmarks beside bare Dramatiq"
	@echo "make format       format the code"

# uv in a private virtualenv: the system Python's packages are never touched.
$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages
	@touch $@

install: .venv/.synced

run: install
	$(UV) run --frozen jobcore-stack

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

format: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

mypy: install
	$(UV) run --frozen mypy libs/jobcore/jobcore

test: lint mypy
	$(UV) run --frozen pytest

test-faults: install
	$(UV) run --frozen pytest -m faults -o addopts="-ra" --timeout=900

# Prints its counts (-s): lost jobs, duplicate effects, per-host counts, the 503 window.
test-scale: install
	$(UV) run --frozen pytest -m scale -o addopts="-ra" -s --timeout=900

# The container tier starts a Docker engine of its own (as root). docker.io, docker-compose
# and debootstrap (Debian) are installed when missing, if apt-get can.
CONTAINER_TOOLS := dockerd:docker.io docker-compose:docker-compose debootstrap:debootstrap

test-containers: install
	@missing=""; for tool in $(CONTAINER_TOOLS); do \
		command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool#*:}"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	elif [ -n "$$missing" ]; then echo "missing:$$missing (the tier fails in CI, skips elsewhere)"; fi
	$(UV) run --frozen pytest -m containers -o addopts="-ra" --timeout=900 --durations=5 \
		tests/test_container_stack.py

# wrk (Debian) drives the HTTP rows: installed when missing, if apt-get can (as root).
bench: install
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
		|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk; } \
		|| echo "could not install wrk: the HTTP rows are skipped"
	$(UV) run --frozen python -m bench

clean:
	rm -rf .venv $(TOOLS) var output .pytest_cache .mypy_cache .ruff_cache
