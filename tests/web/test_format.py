"""How values are shown: 元 from integer 分, Asia/Shanghai times and days, ages, words."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.web import i18n, names
from api.web.format import age_parts, local_day, local_time, unix_time, yuan
from ops.config import load_config
from ops.demo.catalogue import PLACES, TRADES


@pytest.mark.parametrize(
    ("fen", "shown"),
    [(0, "0.00 元"), (5, "0.05 元"), (12345, "123.45 元"), (-100, "-1.00 元"),
     (123456789, "1,234,567.89 元")],
)  # fmt: skip
def test_yuan(fen: int, shown: str) -> None:
    assert yuan(fen) == shown


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_yuan_reads_back_to_the_same_fen(fen: int) -> None:
    text = yuan(fen).removesuffix(" 元").replace(",", "")
    sign = -1 if text.startswith("-") else 1
    whole, cents = text.lstrip("-").split(".")
    assert sign * (int(whole) * 100 + int(cents)) == fen


def test_times_are_shown_in_shanghai() -> None:
    moment = datetime(2026, 11, 25, 16, 40, tzinfo=UTC)  # 00:40 the next day in Shanghai
    assert local_time(moment) == "2026-11-26 00:40"
    assert local_time("2026-11-25T16:40:00.000000Z") == "2026-11-26 00:40"
    assert local_day("2026-11-25T16:40:00Z") == "2026-11-26"
    assert local_day(date(2026, 1, 2)) == "2026-01-02"
    assert local_day("2026-01-02") == "2026-01-02"
    assert unix_time(int(moment.timestamp())) == "2026-11-26 00:40"


@pytest.mark.parametrize(
    ("seconds", "parts"),
    [(0, ("s", 0)), (59, ("s", 59)), (60, ("m", 1)), (3599, ("m", 59)), (3600, ("h", 1)),
     (86_399, ("h", 23)), (86_400, ("d", 1)), (-5, ("s", 0))],
)  # fmt: skip
def test_ages(seconds: int, parts: tuple[str, int]) -> None:
    assert age_parts(seconds) == parts


def test_words_fall_back_to_chinese_and_keys_are_never_defined_twice() -> None:
    assert i18n.translator("en")("nav.lookup") == "Lookup"
    assert i18n.translator("zh-CN")("nav.lookup") == "一站式查询"
    assert i18n.translator("en")("no.such.key") == "no.such.key"
    assert i18n.normalize("en-US") == "en" and i18n.normalize("zh") == "zh-CN"
    assert i18n.normalize("fr") is None
    with pytest.raises(ValueError, match="twice"):
        i18n.register({"nav.lookup": {"zh-CN": "x"}})
    every_english = [key for key, entry in i18n.MESSAGES.items() if "en" not in entry]
    assert every_english == []  # the toggle leaves no Chinese behind


def test_names_of_categories_and_divisions() -> None:
    assert names.category_name("custom_made", "zh-CN") == "定制商品"
    assert names.category_name("custom_made", "en") == "custom-made goods"
    assert names.category_name("unknown_thing", "zh-CN") == "unknown_thing"
    assert names.division_name("320509") == "苏州市吴江区"
    assert names.division_name("320999") == "江苏省 320999"
    assert names.division_name("990000") == "990000"


def test_every_category_and_division_the_alliance_uses_has_a_chinese_name() -> None:
    policy = load_config().policy
    used = set(policy["excluded_categories"])
    used |= {c for local in policy["local_excluded_categories"].values() for c in local}
    used |= {c for trade in TRADES.values() for c in trade.categories}
    assert sorted(used - set(names.CATEGORIES)) == []
    divisions = {place.division for places in PLACES.values() for place in places}
    assert sorted(divisions - set(names.DIVISIONS)) == []
