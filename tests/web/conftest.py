"""Browser tests of the web console: a real `alliance serve` on a demo database, driven by
Playwright through Debian's Chromium (launched by path: browsers cannot be downloaded
here; `make chromium` installs it).

Fixtures (shared by every page's tests):

* ``site``: a small demo (ops.demo.simulate: 10 days, 8 merchants, its key files) on the
  backend of the test (SQLite, and PostgreSQL in a fresh schema), served by uvicorn in
  its own process; one per backend per session (xdist worker). Tests that write (the
  desk) add to it, so tests must not assume a fixed log size.
* ``browser``: one Chromium per session; ``page``: a fresh context and page per test.
* ``shoot(page, name)``: screenshots at 360 px and 1280 px in test-artifacts/screenshots.
* ``assert_accessible(page)``: axe-core (node_modules) finds no serious or critical
  violation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from ops.demo import simulate
from tests.api.support import ROOT, serving
from tests.conftest import BACKENDS, require_pg
from tests.dbtools import PgServer, new_schema_name

CHROMIUM = Path(os.environ.get("ALLIANCE_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ASSETS = ROOT / "api" / "web" / "static" / "dist" / "app.js"
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
WIDTHS_PX = (360, 1280)
HEIGHT_PX = 800
DEMO_DAYS = 10
DEMO_MERCHANTS = 8
SERIOUS = {"serious", "critical"}


@dataclass(frozen=True)
class Site:
    """A served demo: its base URL, database, key files (operator, regions, witnesses,
    members by USCC) and trust.json, and the export the demo wrote."""

    url: str
    db_url: str
    backend: str
    keys: Path
    export: Path

    def trust(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.keys / "trust.json").read_text())
        return document


def _require_browser() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make chromium`", pytrace=False)
    if not ASSETS.exists() or not AXE.exists():
        pytest.fail("the web assets are not built: run `make assets`", pytrace=False)


@contextmanager
def served_demo(backend: str, pg_server: PgServer | str, base: Path) -> Iterator[Site]:
    """A demo log on ``backend`` (a fresh PostgreSQL schema, or a SQLite file in
    ``base``), audited, then served by a real `alliance serve` until the block ends."""
    _require_browser()
    schema = None
    if backend == "postgresql":
        server = require_pg(pg_server)
        schema = new_schema_name()
        db_url = server.create(schema)
    else:
        db_url = f"sqlite:///{base / 'demo.db'}"
    try:
        keys, export = base / "keys", base / "export"
        outcome = simulate(db_url, days=DEMO_DAYS, merchants=DEMO_MERCHANTS, keys=keys, out=export)
        assert outcome.report.ok, [str(finding) for finding in outcome.report.findings]
        with serving(db_url, keys) as url:
            yield Site(url, db_url, backend, keys, export)
    finally:
        if schema is not None and isinstance(pg_server, PgServer):
            pg_server.drop(schema)


@pytest.fixture(scope="session", params=BACKENDS)
def site(
    request: pytest.FixtureRequest,
    pg_server: PgServer | str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    base = tmp_path_factory.mktemp(f"site-{request.param}")
    with served_demo(request.param, pg_server, base) as served:
        yield served


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    _require_browser()
    # --no-sandbox: the tests may run as root (CI containers), where the sandbox refuses.
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
    )
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": WIDTHS_PX[-1], "height": HEIGHT_PX},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # The Content-Security-Policy (api.web.headers) must refuse nothing the pages do.
    refused: list[str] = []
    tab.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield tab
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
    assert not refused, f"the security policy refused: {refused}"


Shoot = Callable[[Page, str], list[Path]]


@pytest.fixture
def shoot(site: Site) -> Shoot:
    """Save full-page screenshots of ``page`` as it is now, at each width in WIDTHS_PX,
    as test-artifacts/screenshots/<name>-<backend>-<width>.png; the viewport is put back."""

    def take(page: Page, name: str) -> list[Path]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        before = page.viewport_size
        paths = []
        for width in WIDTHS_PX:
            page.set_viewport_size({"width": width, "height": HEIGHT_PX})
            path = SCREENSHOTS / f"{name}-{site.backend}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        if before is not None:
            page.set_viewport_size(before)
        return paths

    return take


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated by the driver, not added as an inline <script>, which the pages'
        # Content-Security-Policy refuses (as it should).
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result: dict[str, Any] = page.evaluate(
        "async () => await window.axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v.get("impact") in SERIOUS]


def assert_accessible(page: Page) -> None:
    serious = axe_violations(page)
    summary = [(v["id"], v["impact"], [node["target"] for node in v["nodes"]][:5]) for v in serious]
    assert not serious, f"axe: serious or critical violations: {summary}"
