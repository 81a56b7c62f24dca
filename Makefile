# Every target bootstraps its own virtual environment, so a fresh clone needs only python3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench scale clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	rm -rf demo.db demo.db-wal demo.db-shm demo-keys demo-export
	$(BIN)/alliance demo --db sqlite:///demo.db --keys demo-keys --out demo-export

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

test: lint unit

bench: $(STAMP)
	$(BIN)/alliance bench append --json
	$(BIN)/alliance bench append --db postgresql+psycopg://postgres@127.0.0.1:5432/test --json
	$(BIN)/alliance bench proofs --json

# Issue 11's figures at SCALE_ENTRIES on PostgreSQL (not part of `make test`: hours at
# 10 M). The export is kept in SCALE_DIR and reused by the next run of the same size.
SCALE_ENTRIES ?= 10000000
SCALE_DB ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
SCALE_DIR ?= scale

scale: $(STAMP)
	$(BIN)/alliance bench scale --entries $(SCALE_ENTRIES) --db $(SCALE_DB) --dir $(SCALE_DIR) --json
	$(BIN)/alliance bench append --kind return --json
	$(BIN)/alliance bench append --kind return --db $(SCALE_DB) --json

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm demo-keys demo-export .mypy_cache .pytest_cache .ruff_cache
