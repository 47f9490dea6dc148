# The two commands that matter: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8001
# `make demo DEMO_CLOCK=2025-10-08T14:00:00Z DEMO_SPEED=60` replays a session at 60x.
DEMO_CLOCK ?=
DEMO_SPEED ?= 1

.PHONY: venv demo run test test-fast bench lint migrate clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "MDS needs Python 3.11+"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/mds serve --demo --port $(PORT) $(if $(DEMO_CLOCK),--clock $(DEMO_CLOCK) --speed $(DEMO_SPEED),)

run: venv
	MARKET_PROVIDER_POLICY=$${MARKET_PROVIDER_POLICY:-free} $(BIN)/mds serve --port $(PORT)

test: venv
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q tests/unit tests/contract

bench: venv
	$(BIN)/mds bench startup --json
	$(BIN)/mds bench live --json
	$(BIN)/mds bench store --json
	$(BIN)/mds bench enqueue --backend sqlite --json
	$(BIN)/mds bench enqueue --backend postgres --json
	$(BIN)/mds bench parse --json
	$(BIN)/mds bench gaps --symbols 8000 --json
	$(BIN)/mds bench drain --json
	$(BIN)/mds bench indicators --symbols 8000 --bars 270 --json
	$(BIN)/mds bench snapshots --json
	$(BIN)/mds bench ingest --backend postgres --json
	$(BIN)/mds bench read --backend postgres --json

lint: venv
	$(BIN)/ruff check src tests

migrate: venv
	$(BIN)/mds migrate

clean:
	rm -rf $(VENV) var .pytest_cache
