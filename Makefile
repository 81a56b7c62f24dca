# Every target bootstraps its own virtual environment, so a fresh clone needs only python3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench scale clean assets chromium
# The web console's front-end assets (package-lock.json): npm ci, then esbuild bundles
# web/src into api/web/static/dist. Rebuilt when the lock file or a source changes.
ASSETS := api/web/static/dist/.built
CHROMIUM ?= /usr/bin/chromium

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "need node >= 20 and npm on PATH"; exit 2; }
	npm ci --no-audit --no-fund
	@touch $@

$(ASSETS): node_modules/.package-lock.json web/build.mjs $(wildcard web/src/*.js)
	node web/build.mjs
	@touch $@

assets: $(ASSETS)

# The browser tests drive Debian's Chromium by path (browsers cannot be downloaded here),
# with a system CJK font so pages and screenshots show Chinese (the pages load no font).
chromium:
	@test -x $(CHROMIUM) || { apt-get update -qq && apt-get install -y -qq chromium; }
	@fc-list :lang=zh 2>/dev/null | grep -q . || apt-get install -y -qq fonts-noto-cjk

demo: $(STAMP) $(ASSETS)
	rm -rf demo.db demo.db-wal demo.db-shm demo-keys demo-export
	$(BIN)/alliance demo --db sqlite:///demo.db --keys demo-keys --out demo-export
	@echo
	@echo "Web console: run $(BIN)/alliance serve (after a demo it serves demo.db with the keys in demo-keys), then open http://127.0.0.1:8000/"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP) $(ASSETS) chromium
	$(BIN)/python -m pytest -n 2 -q

test: lint unit

# The README's one-run table: every bench in sequence (run it on a quiet machine).
BENCH_DB ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
BENCH_DIR ?= bench-data

bench: $(STAMP)
	$(BIN)/alliance bench append --json
	$(BIN)/alliance bench append --kind return --json
	$(BIN)/alliance bench append --db $(BENCH_DB) --json
	$(BIN)/alliance bench append --kind return --db $(BENCH_DB) --json
	$(BIN)/alliance bench reconcile --db $(BENCH_DB) --json
	$(BIN)/alliance bench http --batch --clients 4 --entries 4000 --json
	$(BIN)/alliance bench http --clients 64 --entries 2000 --json
	mkdir -p $(BENCH_DIR)
	$(BIN)/alliance bench proofs --entries 1000000 --db sqlite:///$(BENCH_DIR)/proofs.db --json
	rm -f $(BENCH_DIR)/proofs.db*
	$(BIN)/alliance bench proofs --entries 1000000 --db $(BENCH_DB) --json
	$(BIN)/alliance bench audit --entries 100000 --export $(BENCH_DIR)/export-100000 --json
	$(BIN)/alliance bench memory --entries 200000 --json

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
	rm -rf $(VENV) node_modules api/web/static/dist test-artifacts demo.db demo.db-wal demo.db-shm demo-keys demo-export .mypy_cache .pytest_cache .ruff_cache
