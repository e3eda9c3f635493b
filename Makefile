# Two commands a fresh machine needs: `make run` and `make test` (see README.md).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install agents postgres proto bench clean

$(BIN)/python:
	@echo "Creating $(VENV) (Python virtual environment)"
	@$(PY) -m venv $(VENV)

# setuptools warns about every editable install of a flat layout; the warning says nothing about Berth.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "Installing Berth and its dependencies into $(VENV) (first run only; a minute or two)"
	@$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	@PYTHONWARNINGS='ignore:Editable installation:UserWarning' $(BIN)/pip install -q --disable-pip-version-check -e '.[test,bench]'
	@touch $@
	@echo "Installed: $(BIN)/berth, $(BIN)/berth-daemon, $(BIN)/berth-controlplane"

install: $(VENV)/.installed

# The pinned agent CLIs the tests run (into ./node_modules, never globally).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

agents: node_modules/.installed

# System packages the tests need: PostgreSQL server binaries, systemd-analyze, chromium.
postgres:
	scripts/ensure-system-packages.sh

proto: install
	$(BIN)/python proto/generate.py

run: install
	$(BIN)/python -m berth_dev

test: install agents postgres
	$(BIN)/python -m pytest

bench: install agents
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .berth .pytest_cache
