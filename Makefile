# The two commands that matter: `make demo` and `make test`. Both create .venv on first use.
# Edit loop: `make test-fast` (no slow or e2e tests), `make lint`, `make typecheck`.
# Every install takes its versions from constraints.txt (`make lock` regenerates it).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LOCK   := constraints.txt
PORT   ?= 8001
# `make demo DEMO_CLOCK=2025-10-08T14:00:00Z DEMO_SPEED=60` replays a session at 60x.
DEMO_CLOCK ?=
DEMO_SPEED ?= 1

.PHONY: venv demo run test test-fast bench lint typecheck lock migrate clean

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "MDS needs Python 3.11+"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c $(LOCK) --upgrade pip
	$(BIN)/python -m pip install -q -c $(LOCK) -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/mds serve --demo --port $(PORT) $(if $(DEMO_CLOCK),--clock $(DEMO_CLOCK) --speed $(DEMO_SPEED),)

run: venv
	MARKET_PROVIDER_POLICY=$${MARKET_PROVIDER_POLICY:-free} $(BIN)/mds serve --port $(PORT)

# Everything: unit, contract, integration and e2e (slow ones included).
test: venv
	$(BIN)/python -m pytest -q

# The edit loop: every test not marked slow or e2e, across all of tests/.
test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow and not e2e"

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
	$(BIN)/mds bench universe --json
	$(BIN)/mds bench coverage --json
	$(BIN)/mds bench coverage --backend postgres --json
	$(BIN)/mds bench admin --json
	$(BIN)/mds bench scheduler --json
	$(BIN)/mds bench scheduler --backend postgres --queue redis --json
	$(BIN)/mds bench ingest --backend postgres --json
	$(BIN)/mds bench read --backend postgres --json
	$(BIN)/mds bench read --backend postgres --auth --json
	$(BIN)/mds bench tracing --json
	$(BIN)/mds bench ws --json
	$(BIN)/mds bench options --json
	$(BIN)/mds bench options-api --json
	$(BIN)/mds bench adjust --json
	$(BIN)/mds bench export --json
	$(BIN)/mds bench reconcile --json

# Both checks run, so one report shows lint errors and unformatted files alike.
lint: venv
	@status=0; \
	$(BIN)/ruff check src tests || status=1; \
	$(BIN)/ruff format --check src tests || status=1; \
	exit $$status

# mypy --strict over src/, as configured in pyproject.toml ([tool.mypy]).
typecheck: venv
	$(BIN)/mypy

# Re-resolve every dependency within pyproject.toml's ranges, in a throwaway venv, and pin
# the result in constraints.txt (then `make venv` brings .venv in line).
lock:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "lock with Python 3.11, as CI and the image run"'
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q -e ".[dev]"
	{ sed -n '/^#/p' $(LOCK); .lock-venv/bin/python -m pip freeze --all --exclude-editable \
	  | grep -v -e '^#' -e '^setuptools==' -e '^wheel=='; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .lock-venv

migrate: venv
	$(BIN)/mds migrate

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .lock-venv
