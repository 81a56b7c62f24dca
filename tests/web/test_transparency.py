"""The transparency page in a real browser: the latest checkpoint and every witness's
last cosignature verified here, the growth chart drawn, and a consistency check between
two checkpoints (green on the served proof, red on a tampered one)."""

from __future__ import annotations

import base64
import json
import re

from playwright.sync_api import Page, Route, expect

from ledger.app import Ledger
from ledger.transparency import checkpoint_note
from schemas.errors import NotFoundError
from tests.web.conftest import Shoot, Site, assert_accessible

TIMEOUT_MS = 15_000


def unsigned_size(site: Site) -> int:
    """The smallest tree size no checkpoint was signed at (the log signs one a batch)."""
    ledger = Ledger.open(site.db_url)
    try:
        for size in range(1, ledger.signed_checkpoint().size):
            try:
                checkpoint_note(ledger, size)
            except NotFoundError:
                return size
    finally:
        ledger.engine.dispose()
    raise AssertionError("every size has a checkpoint")


def test_the_checkpoint_and_the_witnesses_verify_here(site: Site, page: Page, shoot: Shoot) -> None:
    page.goto(f"{site.url}/transparency")
    badge = page.locator("#checkpoint-badge")
    expect(badge).to_have_attribute("data-state", "ok", timeout=TIMEOUT_MS)
    expect(badge).to_contain_text("4/4")
    rows = page.locator("#witnesses tbody tr")
    expect(rows).to_have_count(len(site.trust()["witness_keys"]))
    for index in range(rows.count()):
        expect(rows.nth(index).locator("[data-witness-check]")).to_contain_text(
            "✓", timeout=TIMEOUT_MS
        )
        expect(rows.nth(index).locator("[data-age]")).to_contain_text("前")
    chart = page.locator("#growth-chart canvas")
    expect(chart).to_have_count(1)
    assert page.locator("#growth-chart").bounding_box()["height"] > 100  # type: ignore[index]
    assert_accessible(page)
    shoot(page, "transparency")


def test_a_consistency_check_between_two_checkpoints(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/transparency")
    sizes = page.locator("#checkpoint-sizes option")
    assert sizes.count() >= 3
    page.locator("#old").fill(str(sizes.nth(1).get_attribute("value")))
    page.locator("#new").focus()  # by keyboard: the form is reachable and submits
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    result = page.locator("#consistency-result")
    expect(result).to_have_attribute("data-state", "ok", timeout=TIMEOUT_MS)
    expect(result).to_contain_text("一致")


def test_a_tampered_consistency_proof_is_refused(site: Site, page: Page) -> None:
    def tamper(route: Route) -> None:
        response = route.fetch()
        document = json.loads(response.text())
        first = bytearray(base64.b64decode(document["hashes"][0]))
        first[5] ^= 0x80
        document["hashes"][0] = base64.b64encode(bytes(first)).decode()
        route.fulfill(response=response, body=json.dumps(document))

    page.route(re.compile(r".*/v1/proofs/consistency\?.*"), tamper)
    page.goto(f"{site.url}/transparency")
    page.locator("#old").fill(
        str(page.locator("#checkpoint-sizes option").nth(1).get_attribute("value"))
    )
    page.get_by_role("button", name="验证一致性").click()
    result = page.locator("#consistency-result")
    expect(result).to_have_attribute("data-state", "failed", timeout=TIMEOUT_MS)
    expect(result).to_contain_text("does not match the roots")


def test_a_size_no_checkpoint_was_signed_at_is_refused(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/transparency")
    page.locator("#old").fill(str(unsigned_size(site)))
    page.get_by_role("button", name="验证一致性").click()
    result = page.locator("#consistency-result")
    expect(result).to_have_attribute("data-state", "failed", timeout=TIMEOUT_MS)
    expect(result).to_contain_text("HTTP 404")


def test_the_page_reads_in_english(site: Site, page: Page, shoot: Shoot) -> None:
    page.goto(f"{site.url}/transparency?lang=en")
    expect(page.locator("h1")).to_have_text("Transparency")
    expect(page.locator("#checkpoint-badge")).to_have_attribute(
        "data-state", "ok", timeout=TIMEOUT_MS
    )
    assert_accessible(page)
    shoot(page, "transparency-en")


def test_a_checkpoint_served_for_another_size_is_refused(site: Site, page: Page) -> None:
    """A hostile server answers a size no checkpoint was signed at with another, genuine
    checkpoint: its signatures verify, but it is not the tree asked about, so the page
    must not say that a checkpoint of that size is signed and consistent."""
    asked = unsigned_size(site)
    latest = page.request.get(f"{site.url}/checkpoint").text()

    def substitute(route: Route) -> None:
        route.fulfill(status=200, content_type="text/plain; charset=utf-8", body=latest)

    page.route(re.compile(rf".*/transparency/checkpoints/{asked}$"), substitute)
    page.goto(f"{site.url}/transparency")
    page.locator("#old").fill(str(asked))
    page.locator("#new").fill(str(asked))
    page.get_by_role("button", name="验证一致性").click()
    result = page.locator("#consistency-result")
    expect(result).to_have_attribute("data-state", "failed", timeout=TIMEOUT_MS)
    expect(result).to_contain_text(f"not {asked}")


def test_a_witness_row_that_misstates_its_checkpoint_is_refused(site: Site, page: Page) -> None:
    """The table's size and time of a witness's last cosignature are written by the
    server: a row that does not match the cosigned note it is checked with gets ✗."""

    def misstate(route: Route) -> None:
        response = route.fetch()
        html = response.text()
        found = re.search(r'<td data-size="(\d+)">(\d+)</td>', html)
        assert found, "a witness row shows the size it cosigned"
        size = int(found.group(1))
        lie = f'<td data-size="{size + 1}">{size + 1}</td>'
        route.fulfill(response=response, body=html.replace(found.group(0), lie, 1))

    page.route(re.compile(r".*/transparency$"), misstate)
    page.goto(f"{site.url}/transparency")
    checks = page.locator("#witnesses [data-witness-check]")
    expect(checks.first).to_contain_text("✗", timeout=TIMEOUT_MS)
    expect(checks.nth(1)).to_contain_text("✓", timeout=TIMEOUT_MS)
