"""The console is served: the home page renders with its assets, in both languages."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.web.conftest import Shoot, Site, assert_accessible


def test_the_home_page_renders_in_chinese_and_english(site: Site, page: Page, shoot: Shoot) -> None:
    page.goto(f"{site.url}/")
    expect(page.locator("h1")).to_have_text("一站式查询")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert_accessible(page)
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("One-stop lookup")
    assert page.locator("html").get_attribute("lang") == "en"
    shoot(page, "home-empty")
