"""一站式查询 in a real browser: search a demo merchant and read its card, the verified
badge (green on the served proofs, red on a tampered one), the return check, the
keyboard alone, accessibility, and screenshots at 360 and 1280 px."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, Route, expect

from tests.web.conftest import Shoot, Site, assert_accessible

MERCHANT = "金桥"  # the demo's merchant with a credit measure (seed 1)
BADGE = "[data-verify-member]"
VERIFY_TIMEOUT_MS = 15_000
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _uscc(site: Site, page: Page) -> str:
    page.goto(f"{site.url}/?q={quote(MERCHANT)}")
    uscc = page.locator(".card").get_attribute("data-uscc")
    assert uscc
    return uscc


def test_search_a_merchant_by_keyboard_and_read_its_card(
    site: Site, page: Page, shoot: Shoot
) -> None:
    page.goto(f"{site.url}/")
    expect(page.locator("#q")).to_be_focused()  # the search box takes the first keys
    page.keyboard.type(MERCHANT)
    page.keyboard.press("Enter")
    card = page.locator(".card")
    expect(card.locator("h2")).to_contain_text(MERCHANT)
    assert re.search(r"[?&]q=", page.url), "the search is in the address, to share"
    expect(card).to_contain_text("正常")  # status
    expect(card).to_contain_text("购买后 7 天内")  # the commitment
    expect(card.locator(".measures li")).to_have_count(1)
    measure = card.locator(".measures li").first
    expect(measure).to_contain_text("联盟警示")
    expect(measure).to_contain_text("决定文号")
    expect(card.locator(".stores li").first).to_contain_text("上海市")  # division name
    expect(card.locator(".counts")).to_contain_text("兑现的退货")
    badge = card.locator(BADGE)
    expect(badge).to_have_attribute("data-state", "ok", timeout=VERIFY_TIMEOUT_MS)
    expect(badge).to_contain_text("已验证")
    expect(badge).to_contain_text("4/4")
    fingerprint = page.locator("[data-trust-fingerprint]")
    expect(fingerprint).to_have_attribute("data-computed", re.compile("^[0-9a-f]{64}$"))
    served = page.request.get(f"{site.url}/trust.json")
    assert fingerprint.get_attribute("data-computed") == served.headers["x-trust-fingerprint"]
    assert json.loads(served.text()) == site.trust()  # the demo's own trust.json
    assert_accessible(page)
    shoot(page, "home-card")


def test_a_shared_link_opens_with_the_search_done_in_english(
    site: Site, page: Page, shoot: Shoot
) -> None:
    page.goto(f"{site.url}/?q={quote(MERCHANT)}&lang=en")
    card = page.locator(".card")
    expect(card).to_contain_text("Alliance warning")
    expect(card.locator(BADGE)).to_have_attribute("data-state", "ok", timeout=VERIFY_TIMEOUT_MS)
    assert_accessible(page)
    shoot(page, "home-card-en")


def test_a_tampered_proof_turns_the_badge_red(site: Site, page: Page, shoot: Shoot) -> None:
    """The server (or anyone between) changes one hash of one proof: the browser's own
    check fails, whatever the page says."""

    def tamper(route: Route) -> None:
        response = route.fetch()
        document = json.loads(response.text())
        proof = document["proofs"][0]["proof"]
        flipped = bytearray(base64.b64decode(proof["leaf_hash"]))
        flipped[0] ^= 0x01
        proof["leaf_hash"] = base64.b64encode(bytes(flipped)).decode()
        route.fulfill(response=response, body=json.dumps(document))

    page.route(re.compile(r".*/v1/public/members/[0-9A-Z]{18}$"), tamper)
    page.goto(f"{site.url}/?q={quote(MERCHANT)}")
    badge = page.locator(BADGE)
    expect(badge).to_have_attribute("data-state", "failed", timeout=VERIFY_TIMEOUT_MS)
    expect(badge).to_contain_text("验证失败")
    expect(badge.locator("[data-detail]")).to_contain_text("does not lead to the root")
    shoot(page, "home-card-tampered")


def test_a_forged_checkpoint_signature_turns_the_badge_red(site: Site, page: Page) -> None:
    def forge(route: Route) -> None:
        response = route.fetch()
        text = response.text()
        head, _, _ = text.partition("\n\n")
        lines = head.split("\n")
        lines[1] = str(int(lines[1]) + 1)  # claim one more entry, keep the signatures
        route.fulfill(response=response, body="\n".join(lines) + text[len(head) :])

    page.route(re.compile(r".*/checkpoint$"), forge)
    page.goto(f"{site.url}/?q={quote(MERCHANT)}")
    badge = page.locator(BADGE)
    expect(badge).to_have_attribute("data-state", "failed", timeout=VERIFY_TIMEOUT_MS)


def test_can_i_return_it_here_and_until_when(site: Site, page: Page, shoot: Shoot) -> None:
    _uscc(site, page)
    page.locator("#purchased").fill("2026-11-20")
    page.get_by_role("button", name="查询退货期限").click()
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("退货期限已过")  # 7 days from 20 Nov are long past
    expect(verdict).to_contain_text("2026-11-27")  # the last day (a Friday)
    assert "purchased=2026-11-20" in page.url
    assert_accessible(page)
    shoot(page, "home-return-check")


def test_a_query_matching_several_members_lists_them(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/?q={quote('有限公司')}")
    links = page.locator(".results a")
    assert links.count() > 1
    links.first.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".card")).to_be_visible()


def test_nothing_found_and_too_long_are_said_plainly(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/?q=zzzzzz")
    expect(page.locator("#results")).to_contain_text("没有找到")
    page.goto(f"{site.url}/?q={'x' * 65}")
    expect(page.locator("#results [role=alert]")).to_contain_text("过长")


def test_a_purchase_of_today_is_returnable_with_its_exclusions(site: Site, page: Page) -> None:
    _uscc(site, page)
    today = datetime.now(SHANGHAI).date().isoformat()
    expect(page.locator("#purchased")).to_have_value(today)  # the form starts at today
    page.locator("#purchased").press("Enter")  # submits from the keyboard
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("可以退货")
    expect(verdict).to_contain_text("定制商品")  # excluded by law, in Chinese
    expect(verdict).to_contain_text("黄金饰品")  # excluded in Shanghai (31)
