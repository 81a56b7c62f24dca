"""The regulator desk and the reconciliation page in a real browser (issue 10): region 32
signs in with its key file, approves two entries in one signed `endorsement` (its
`targets` carry both: the log grows by exactly one entry), downloads a statement and
parses it; axe finds no serious violation; everything is done from the keyboard too;
screenshots at 360 and 1280 px.

The demo's nodes decide every entry they see, so the fixture seeds what awaits region
32: advances a fund paid against merchants of 32 (their dues name 32 and the fund's
region), posted over HTTP signed with the demo's key files, as a fund's system would.
These tests write, and no witness cosigns what they add, so they serve a demo of their
own (``desk_site``): the shared ``site`` keeps a checkpoint every witness cosigned."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from ledger.app import Ledger
from ledger.desk import DeskReads
from ledger.projections import current
from schemas.canonical import canonical
from signing.entry import submitted
from signing.keys import PrivateKey
from tests.conftest import BACKENDS
from tests.dbtools import PgServer
from tests.web.conftest import (
    HEIGHT_PX,
    SCREENSHOTS,
    WIDTHS_PX,
    Site,
    assert_accessible,
    served_demo,
)

SHANGHAI = timezone(timedelta(hours=8))
REGION = "32"
# Signing, the append and the panel's fresh render, on 2 cores shared with other suites.
DECIDED_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module", params=BACKENDS)
def desk_site(
    request: pytest.FixtureRequest,
    pg_server: PgServer | str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    """A demo served for the desk's tests alone: what they write is not cosigned, and the
    shared ``site``'s pages must show a checkpoint every witness cosigned."""
    base = tmp_path_factory.mktemp(f"desk-{request.param}")
    with served_demo(request.param, pg_server, base) as served:
        yield served


def shoot(page: Page, site: Site, name: str) -> None:
    """Full-page screenshots at each of WIDTHS_PX, as the shared ``shoot`` takes them."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS_PX:
        page.set_viewport_size({"width": width, "height": HEIGHT_PX})
        page.screenshot(
            path=str(SCREENSHOTS / f"{name}-{site.backend}-{width}.png"), full_page=True
        )
    page.set_viewport_size({"width": WIDTHS_PX[-1], "height": HEIGHT_PX})


def _members(site: Site) -> list[tuple[str, str, str]]:
    """(uscc, kind, region) of the demo's members."""
    ledger = Ledger.open(site.db_url)
    try:
        members = current("members").subquery()
        with ledger.engine.connect() as connection:
            rows = connection.execute(
                members.select().with_only_columns(members.c.id, members.c.kind, members.c.region)
            )
            return [(str(a), str(b), str(c)) for a, b, c in rows]
    finally:
        ledger.close()


def _awaiting(site: Site, region: str) -> list[int]:
    ledger = Ledger.open(site.db_url)
    try:
        return ledger.reads().awaiting(region)
    finally:
        ledger.close()


def _size(site: Site) -> int:
    ledger = Ledger.open(site.db_url)
    try:
        return ledger.size()
    finally:
        ledger.close()


def _last_entry(site: Site) -> dict[str, Any]:
    ledger = Ledger.open(site.db_url)
    try:
        size = ledger.size()
        [leaf] = ledger.leaves(size - 1, size)
    finally:
        ledger.close()
    record: dict[str, Any] = json.loads(leaf)
    return record


def seed_awaiting(site: Site, count: int) -> list[int]:
    """``count`` advances by the demo's fund against merchants of REGION, logged over
    HTTP: each awaits REGION's decision."""
    members = _members(site)
    fund = next(uscc for uscc, kind, _ in members if kind == "fund")
    liable = [uscc for uscc, kind, region in members if kind == "merchant" and region == REGION]
    key = PrivateKey.load(site.keys / f"{fund}.pem")
    seqs = []
    for number in range(count):
        case = f"DESK-{uuid.uuid4().hex[:12]}"
        body = {
            "liable": liable[number % len(liable)],
            "case": case,
            "basis": "fund_agreement",
            "amount_fen": 12_300 + number,
            "evidence_hash": hashlib.sha256(case.encode()).hexdigest(),
        }
        entry = {
            "v": 1,
            "kind": "advance.paid",
            "id": str(uuid.uuid4()),
            "time": datetime.now(SHANGHAI).isoformat(timespec="seconds"),
            "signer": fund,
            "body": body,
        }
        response = httpx.post(f"{site.url}/v1/entries", json=submitted(entry, key), timeout=30)
        assert response.status_code == 201, response.text
        seqs.append(int(response.json()["seq"]))
    return seqs


def sign_in(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/desk")
    page.get_by_label("地区", exact=True).select_option(REGION)
    page.get_by_label("地区密钥文件（PEM）").set_input_files(str(site.keys / "region-32.pem"))
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="待审核队列")).to_be_visible()


def test_region_32_signs_in_and_approves_two_entries_in_one_endorsement(
    desk_site: Site, page: Page
) -> None:
    site = desk_site
    page.goto(f"{site.url}/desk")
    assert_accessible(page)
    shoot(page, site, "desk-sign-in")
    first, second, third = seed_awaiting(site, 3)
    sign_in(page, site)
    for seq in (first, second, third):
        expect(page.locator(f"#target-{seq}")).to_be_visible()
    assert_accessible(page)
    shoot(page, site, "desk-queue")
    before = _size(site)
    page.locator(f"#target-{first}").check()
    page.locator(f"#target-{second}").check()
    page.get_by_role("button", name="批准所选").click()
    expect(page.locator("[data-decide-status]")).to_contain_text(
        "决定已签名并记入日志", timeout=DECIDED_TIMEOUT_MS
    )
    assert _size(site) == before + 1
    record = _last_entry(site)
    entry = record["entry"]
    assert (entry["kind"], entry["signer"]) == ("endorsement", "region:32")
    assert entry["body"] == {"targets": [first, second], "decision": "approve", "reason": ""}
    awaiting = _awaiting(site, REGION)
    assert first not in awaiting and second not in awaiting and third in awaiting
    expect(page.locator(f"#target-{first}")).to_have_count(0)
    expect(page.locator(f"#target-{third}")).to_be_visible()


def test_reject_with_a_reason_code_from_the_keyboard(desk_site: Site, page: Page) -> None:
    site = desk_site
    [seq] = seed_awaiting(site, 1)
    page.goto(f"{site.url}/desk")
    # Keyboard only: Tab to each control, type or press Space/Enter.
    page.keyboard.press("Tab")  # the skip link
    region = page.get_by_label("地区", exact=True)
    _tab_to(page, "sign-in-region")
    page.keyboard.press("ArrowDown")  # 32 follows 31 in the list
    assert region.input_value() == REGION
    _tab_to(page, "sign-in-key")
    page.get_by_label("地区密钥文件（PEM）").set_input_files(str(site.keys / "region-32.pem"))
    _tab_to(page, None, role_name="登录")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="待审核队列")).to_be_visible()
    _tab_to(page, f"target-{seq}")
    page.keyboard.press("Space")
    expect(page.locator(f"#target-{seq}")).to_be_checked()
    _tab_to(page, "decide-reason")
    page.locator("#decide-reason").select_option("evidence_insufficient")
    _tab_to(page, None, role_name="驳回所选")
    before = _size(site)
    page.keyboard.press("Enter")
    expect(page.locator("[data-decide-status]")).to_contain_text(
        "决定已签名并记入日志", timeout=DECIDED_TIMEOUT_MS
    )
    assert _size(site) == before + 1
    body = _last_entry(site)["entry"]["body"]
    assert body == {"targets": [seq], "decision": "reject", "reason": "evidence_insufficient"}


def _tab_to(page: Page, element_id: str | None, *, role_name: str | None = None) -> None:
    """Press Tab until the focus is on the element of ``element_id`` (or the button
    named ``role_name``); fail after a bounded number of presses."""
    for _ in range(80):
        focused = page.evaluate(
            "() => [document.activeElement.id, document.activeElement.textContent.trim()]"
        )
        if element_id is not None and focused[0] == element_id:
            return
        if role_name is not None and focused[1] == role_name:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {element_id or role_name}")


def test_the_regions_picture_shows_real_demo_data(desk_site: Site, page: Page) -> None:
    site = desk_site
    sign_in(page, site)
    expect(page.get_by_role("heading", name="本地区概况")).to_be_visible()
    # Each chart drew on its canvas, and the figures are also in tables.
    for name in ("returns", "flows", "ages"):
        expect(page.locator(f"[data-chart={name}] canvas")).to_have_count(1)
    engine_ledger = Ledger.open(site.db_url)
    try:
        since = datetime.now(UTC) - timedelta(days=30)
        flows = DeskReads(engine_ledger.engine).flows(REGION, since)
    finally:
        engine_ledger.close()
    assert flows, "the demo has flows touching region 32"
    page.get_by_text("流向明细").nth(1).click()
    expect(page.locator("details[open] table").last).to_contain_text(flows[0].debtor_region)
    assert_accessible(page)
    shoot(page, site, "desk-picture")
    page.goto(f"{site.url}/desk?lang=en")
    expect(page.get_by_role("heading", name="The region's picture")).to_be_visible()
    shoot(page, site, "desk-picture-en")


def test_the_reconciliation_page_and_a_statement_download(desk_site: Site, page: Page) -> None:
    site = desk_site
    page.goto(f"{site.url}/reconciliation")
    expect(page.get_by_text("请先在监管工作台登录")).to_be_visible()
    sign_in(page, site)
    page.goto(f"{site.url}/reconciliation")
    expect(page.get_by_role("heading", name="各晚清算")).to_be_visible()
    expect(page.locator("[data-chart=nights] canvas")).to_have_count(1)
    rows = page.locator("#instructions-heading ~ .scroll tbody tr")
    assert rows.count() >= 1
    statuses = set(page.locator(".st").all_inner_texts())
    assert statuses <= {"待付", "已付待确认", "已确认", "逾期"}
    assert_accessible(page)
    shoot(page, site, "reconciliation")
    member = page.locator("#statement-member").input_value()
    with page.expect_download() as waiting:
        page.get_by_role("link", name="下载").click()
    download = waiting.value
    raw = download.path().read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with a BOM"
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0][2:4] == ["成员 member", member]
    net = next(row for row in table if row and row[0] == "净额 net")
    receivable = next(row for row in table if row and row[0] == "应收合计 receivable")
    payable = next(row for row in table if row and row[0] == "应付合计 payable")

    def fen(text: str) -> int:
        whole, cents = text.lstrip("-").split(".")
        return (-1 if text.startswith("-") else 1) * (int(whole) * 100 + int(cents))

    assert fen(net[1]) == fen(receivable[1]) - fen(payable[1])
    page.goto(f"{site.url}/reconciliation?lang=en")
    shoot(page, site, "reconciliation-en")


def test_endorsement_bytes_in_the_browser_equal_pythons(desk_site: Site, page: Page) -> None:
    """The page's RFC 8785 bytes and signature input of an endorsement are Python's."""
    site = desk_site
    page.goto(f"{site.url}/desk")
    entry = {
        "v": 1,
        "kind": "endorsement",
        "id": "0d6f3a52-8b1c-4c0e-9f55-0e3f5a1b2c3d",
        "time": "2026-11-23T10:00:00+08:00",
        "signer": "region:32",
        "body": {
            "targets": [12, 7, 900719925474099],
            "decision": "reject",
            "reason": "outside_window",
        },
    }
    pem = (site.keys / "region-32.pem").read_text()
    result = page.evaluate(
        """async ([entry, pem]) => {
            const m = await import('/static/dist/regionkey.js');
            const key = await m.loadKey(pem);
            const made = m.endorsementEntry('32', entry.body.targets, 'reject', 'outside_window',
                                            entry.id, entry.time);
            const doc = await m.submittedEntry(key, made);
            return {bytes: Array.from(m.canonicalBytes(made)), keyId: key.keyId, doc};
        }""",
        [entry, pem],
    )
    assert bytes(result["bytes"]) == canonical(entry)
    key = PrivateKey.load(site.keys / "region-32.pem")
    assert result["keyId"] == key.key_id
    assert result["doc"] == submitted(entry, key)  # Ed25519 is deterministic
