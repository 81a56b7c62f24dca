# Every target bootstraps its own virtual environment, so a fresh clone needs only python3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean assets chromium
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

bench: $(STAMP)
	$(BIN)/alliance bench append --json
	$(BIN)/alliance bench append --db postgresql+psycopg://postgres@127.0.0.1:5432/test --json
	$(BIN)/alliance bench proofs --json

clean:
	rm -rf $(VENV) node_modules api/web/static/dist test-artifacts demo.db demo.db-wal demo.db-shm demo-keys demo-export .mypy_cache .pytest_cache .ruff_cache
