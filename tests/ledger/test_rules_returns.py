"""The rules a regulator asked for (issue 7 §1–§3): the civil-code return window, offline
tills, the selling store's province, generosity within one member, receipt lines,
receipt refs, advances on a legal basis, and disputes counted from effectiveness.

Every rule has a refusal (error class, message, field, state unchanged: ``refused``) and
an acceptance at its edge. The world's clock is Monday 2026-11-23 10:00 in Shanghai."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.calendar import LOCAL, add_working_days, is_day_off, period_end
from ops.config import load_config
from ops.world import ReturnItem, entry_time, receipt_wire
from ops.world import return_body as wire_return_body
from schemas.bodies import CalendarModel
from schemas.errors import MalformedError, PolicyError
from schemas.identifiers import receipt_ref
from tests.ledger.builders import (
    LedgerWorld,
    advance_body,
    due_regions,
    endorse,
    obligation,
    refused,
    return_body,
)

MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=LOCAL)  # tests.support.START, local


def world_with(**policy: object) -> LedgerWorld:
    config = load_config()
    changed = copy.deepcopy(config.policy)
    changed.update(policy)
    return LedgerWorld(config=dataclasses.replace(config, policy=changed))


@pytest.fixture
def world() -> LedgerWorld:
    return LedgerWorld()


@pytest.fixture
def members(world: LedgerWorld) -> tuple[str, str]:
    """(seller in region 31 with a store in the zone's Jiangsu division, buyer in 32)."""
    seller = world.enroll("31", stores=[("S1", "310101"), ("W1", "320509")])
    buyer = world.enroll("32", stores=[("S1", "320101")])
    return seller, buyer


def signed_return(world: LedgerWorld, seller: str, signer: str, **fields: object) -> dict:  # type: ignore[type-arg]
    return world.sign("return.recorded", signer, return_body(world, seller, **fields))  # type: ignore[arg-type]


# --- the window (民法典 arts. 201, 203) -----------------------------------------------------


def test_the_day_of_purchase_is_not_counted(world: LedgerWorld, members: tuple[str, str]) -> None:
    """The issue's case: bought 09:00 on 11-16, returned 10:00 on 11-23: in time."""
    seller, buyer = members
    assert world.submit(signed_return(world, seller, buyer, purchased="2026-11-16")) > 0


def test_the_window_ends_at_midnight_of_its_last_day(
    world: LedgerWorld, members: tuple[str, str]
) -> None:
    seller, buyer = members
    world.tick(hours=14, minutes=30)  # Tuesday 00:30 local
    last_second = "2026-11-23T23:59:59+08:00"
    body = return_body(world, seller, purchased="2026-11-16", accepted=last_second)
    assert world.submit(world.sign("return.recorded", buyer, body)) > 0
    late = return_body(world, seller, number="R-2", purchased="2026-11-16",
                       accepted="2026-11-24T00:00:00+08:00")  # fmt: skip
    error = refused(
        world, world.sign("return.recorded", buyer, late), PolicyError, "24:00 on 2026-11-23"
    )
    assert error.field == "body.receipt.purchased"


def test_a_last_day_off_moves_to_the_next_working_day() -> None:
    """Bought Friday 11-13: the 7th day, Friday 11-20, is a holiday here, and the weekend
    follows, so the window runs to Monday 11-23 (art. 203)."""
    world = world_with(
        calendar={"rest_weekdays": [6, 7], "holidays": ["2026-11-20"], "workdays": []}
    )
    seller = world.enroll("31")
    buyer = world.enroll("32", stores=[("S1", "320101")])
    assert world.submit(signed_return(world, seller, buyer, purchased="2026-11-13")) > 0


def test_without_a_calendar_no_day_is_off() -> None:
    """Bought Saturday 11-14: the 7th day is Saturday 11-21; with no calendar it ends then."""
    world = world_with(calendar=None)
    seller = world.enroll("31")
    buyer = world.enroll("32", stores=[("S1", "320101")])
    sub = signed_return(world, seller, buyer, purchased="2026-11-14")
    refused(world, sub, PolicyError, "24:00 on 2026-11-21")
    weekend = world_with()  # the shipped calendar rests on Saturdays and Sundays
    seller = weekend.enroll("31")
    buyer = weekend.enroll("32", stores=[("S1", "320101")])
    assert weekend.submit(signed_return(weekend, seller, buyer, purchased="2026-11-14")) > 0


def test_a_purchase_date_that_is_no_day_is_malformed(
    world: LedgerWorld, members: tuple[str, str]
) -> None:
    seller, buyer = members
    error = refused(
        world, signed_return(world, seller, buyer, purchased="2026-02-30"), MalformedError
    )
    assert error.field == "body.receipt.purchased"


# --- accepted: offline tills ----------------------------------------------------------------


def test_an_offline_till_logs_a_day_seven_return_at_night(
    world: LedgerWorld, members: tuple[str, str]
) -> None:
    """Refunded at 20:00 on the last day, uploaded two days later: judged at ``accepted``."""
    seller, buyer = members
    accepted = "2026-11-23T20:00:00+08:00"
    world.tick(days=2)
    body = return_body(world, seller, purchased="2026-11-16", accepted=accepted)
    assert world.submit(world.sign("return.recorded", buyer, body)) > 0


def test_accepted_after_the_entry_is_refused(world: LedgerWorld, members: tuple[str, str]) -> None:
    seller, buyer = members
    future = entry_time(world.now + timedelta(minutes=1))
    error = refused(
        world, signed_return(world, seller, buyer, accepted=future), PolicyError, "after the entry"
    )
    assert error.field == "body.accepted"


def test_accepted_within_the_recording_lag(world: LedgerWorld, members: tuple[str, str]) -> None:
    seller, buyer = members
    edge = entry_time(world.now - timedelta(days=3))
    assert world.submit(signed_return(world, seller, buyer, accepted=edge, purchased_days_ago=4))
    past = entry_time(world.now - timedelta(days=3, seconds=1))
    sub = signed_return(world, seller, buyer, number="R-2", accepted=past, purchased_days_ago=4)
    error = refused(world, sub, PolicyError, "within 3 days")
    assert error.field == "body.accepted"


# --- the selling store's province -----------------------------------------------------------


def test_the_selling_stores_province_sets_the_local_list(
    world: LedgerWorld, members: tuple[str, str]
) -> None:
    """Bulk food is on Jiangsu's list, not Shanghai's: sold at the Shanghai member's 吴江
    store it is refused, sold at its Shanghai store it is not."""
    seller, buyer = members
    sub = signed_return(world, seller, buyer, store="W1", categories=("bulk_food",))
    error = refused(world, sub, PolicyError, "bulk_food", "region 32's local negative list")
    assert error.field == "body.items.0.category"
    assert world.submit(signed_return(world, seller, buyer, categories=("bulk_food",))) > 0


def test_the_stores_provinces_endorse(world: LedgerWorld, members: tuple[str, str]) -> None:
    """Sold at the zone store in Jiangsu, refunded in Jiangsu: only region 32 decides,
    although the seller's home is Shanghai."""
    seller, buyer = members
    seq = world.submit(signed_return(world, seller, buyer, store="W1"))
    assert due_regions(world.state, seq) == ["32"]
    home = world.submit(signed_return(world, seller, buyer, number="R-2"))
    assert due_regions(world.state, home) == ["31", "32"]


# --- generosity within one member -----------------------------------------------------------


def test_a_member_may_take_back_its_own_excluded_goods(
    world: LedgerWorld, members: tuple[str, str]
) -> None:
    """Exclusions bind billing: A = B creates no obligation, so none is refused."""
    seller, _ = members
    for number, category in [("R-1", "fresh_perishable"), ("R-2", "luxury_goods")]:
        seq = world.submit(signed_return(world, seller, seller, number=number,
                                         categories=(category,)))  # fmt: skip
        assert world.state.obligations.get(seq) is None
        assert world.state.receipt_returns.get(seq) is not None  # logged and counted
    buyer = members[1]
    sub = signed_return(world, seller, buyer, number="R-3", categories=("fresh_perishable",))
    refused(world, sub, PolicyError, "excluded from no-reason returns by law")


# --- receipt lines --------------------------------------------------------------------------


def lines_return(
    world: LedgerWorld, seller: str, items: list[ReturnItem], number: str = "R-L"
) -> dict:  # type: ignore[type-arg]
    receipt = receipt_wire(seller, "S1", number, "2026-11-20", 100_000)
    return wire_return_body(receipt, "S1", items, world.now)


def test_a_single_sku_is_never_refunded_twice(world: LedgerWorld, members: tuple[str, str]) -> None:
    """The found case: one unit of line 1, returned twice on one receipt."""
    seller, buyer = members
    one = [ReturnItem("SKU1", "apparel", 1, 1_000, line=1, line_qty=1)]
    world.submit(world.sign("return.recorded", buyer, lines_return(world, seller, one)))
    sub = world.sign("return.recorded", buyer, lines_return(world, seller, one))
    error = refused(world, sub, PolicyError, "line 1", "already had 1 of 1 units returned")
    assert error.field == "body.items.0.qty"


def test_a_line_is_refunded_up_to_its_quantity(
    world: LedgerWorld, members: tuple[str, str]
) -> None:
    seller, buyer = members
    for units in (2, 1):
        items = [ReturnItem("SKU1", "apparel", units, 100 * units, line=1, line_qty=3)]
        world.submit(world.sign("return.recorded", buyer, lines_return(world, seller, items)))
    line = world.state.receipt_lines.get(seller, "S1", receipt_ref(seller, "S1", "R-L"), 1)
    assert line is not None and (line.line_qty, line.returned_qty) == (3, 3)


@pytest.mark.parametrize(
    ("items", "words", "field"),
    [
        (
            [ReturnItem("A", "apparel", 1, 1, 1, 2), ReturnItem("B", "apparel", 1, 1, 1, 2)],
            ["line 1 is listed twice"],
            "body.items.1.line",
        ),
        ([ReturnItem("A", "apparel", 3, 1, 1, 2)], ["3 units", "which sold 2"], "body.items.0.qty"),
    ],
)
def test_lines_within_one_return(
    world: LedgerWorld,
    members: tuple[str, str],
    items: list[ReturnItem],
    words: list[str],
    field: str,
) -> None:
    seller, buyer = members
    sub = world.sign("return.recorded", buyer, lines_return(world, seller, items))
    assert refused(world, sub, PolicyError, *words).field == field


def test_the_first_live_return_fixes_a_lines_quantity(
    world: LedgerWorld, members: tuple[str, str]
) -> None:
    seller, buyer = members
    first = [ReturnItem("SKU1", "apparel", 1, 100, line=1, line_qty=2)]
    seq = world.submit(world.sign("return.recorded", buyer, lines_return(world, seller, first)))
    other = [ReturnItem("SKU1", "apparel", 1, 100, line=1, line_qty=5)]
    sub = world.sign("return.recorded", buyer, lines_return(world, seller, other))
    error = refused(world, sub, PolicyError, "first recorded with 2 units, not 5")
    assert error.field == "body.items.0.line_qty"
    endorse(world, "32", [seq], "reject")  # the first was a squatter's: the line is free
    assert world.submit(sub) > seq


# --- receipt refs (PIPL art. 4) -------------------------------------------------------------


def test_the_log_holds_the_ref_never_the_number(
    world: LedgerWorld, members: tuple[str, str]
) -> None:
    seller, buyer = members
    sub = signed_return(world, seller, buyer, number="ＲＥＣ－００７")
    text = json.dumps(sub, ensure_ascii=False).casefold()
    assert "ｒｅｃ－００７" not in text and "rec-007" not in text
    world.submit(sub)
    assert sub["entry"]["body"]["receipt"]["ref"] == receipt_ref(seller, "S1", "rec-007")
    raw = copy.deepcopy(sub["entry"]["body"])
    raw["receipt"]["ref"] = "REC-007"
    error = refused(world, world.sign("return.recorded", buyer, raw), MalformedError)
    assert error.field == "body.receipt.ref"


@given(st.text(min_size=1, max_size=12))
def test_two_spellings_of_a_number_have_one_ref(number: str) -> None:
    assert receipt_ref("M", "S", number) == receipt_ref("M", "S", number.upper().lower())
    assert len(receipt_ref("M", "S", number)) == 43


# --- advances -------------------------------------------------------------------------------


@pytest.fixture
def payers(world: LedgerWorld) -> tuple[str, str, str]:
    """(merchant, fund in 31, platform in 33)."""
    return (
        world.enroll("31"),
        world.enroll("31", kind="fund", stores=[]),
        world.enroll("33", kind="platform", stores=[]),
    )


@pytest.mark.parametrize(
    ("payer", "basis", "words"),
    [
        ("fund", "consumer_law_44", ["a fund cannot advance on basis consumer_law_44"]),
        ("platform", "civil_code_524", ["a platform cannot advance on basis civil_code_524"]),
        ("fund", "kindness", ["basis kindness is not one of"]),
    ],
)
def test_the_basis_must_fit_the_payer(
    world: LedgerWorld, payers: tuple[str, str, str], payer: str, basis: str, words: list[str]
) -> None:
    merchant, fund, platform = payers
    signer = fund if payer == "fund" else platform
    sub = world.sign("advance.paid", signer, advance_body(merchant, basis=basis))
    assert refused(world, sub, PolicyError, *words).field == "body.basis"


def test_one_loss_is_recovered_once(world: LedgerWorld, payers: tuple[str, str, str]) -> None:
    """A fund and a platform cannot both recover case C-1 from the same merchant."""
    merchant, fund, platform = payers
    seq = world.submit(world.sign("advance.paid", fund, advance_body(merchant, "C-1")))
    body = advance_body(merchant, "C-1", basis="consumer_law_44")
    error = refused(
        world,
        world.sign("advance.paid", platform, body),
        PolicyError,
        f"already claimed at seq {seq} by {fund}",
    )
    assert error.field == "body.case"
    other = world.enroll("31")
    assert world.submit(world.sign("advance.paid", fund, advance_body(other, "C-1"))) > seq


def test_an_advance_carries_its_evidence_hash(
    world: LedgerWorld, payers: tuple[str, str, str]
) -> None:
    merchant, fund, _ = payers
    body = advance_body(merchant)
    body["evidence_hash"] = "case file kept by the fund"
    error = refused(world, world.sign("advance.paid", fund, body), MalformedError)
    assert error.field == "body.evidence_hash"
    body = advance_body(merchant) | {"complaint_hash": "ab" * 32}
    assert world.submit(world.sign("advance.paid", fund, body)) > 0


# --- disputes: partly upheld ----------------------------------------------------------------


def approved_return(world: LedgerWorld, seller: str, buyer: str, refund_fen: int) -> int:
    seq = world.submit(signed_return(world, seller, buyer, refund_fen=refund_fen))
    endorse(world, "31", [seq])
    endorse(world, "32", [seq])
    return seq


def resolution(world: LedgerWorld, dispute: int, outcome: str, **fields: object) -> dict:  # type: ignore[type-arg]
    body = {"dispute": dispute, "outcome": outcome, **fields}
    return world.sign_by("dispute.resolved", ["region:31", "region:32"], body)


def test_a_partly_upheld_dispute_adds_a_reversal(
    world: LedgerWorld, members: tuple[str, str]
) -> None:
    seller, buyer = members
    seq = approved_return(world, seller, buyer, 6_000)
    dispute = world.submit(
        world.sign("claim.disputed", seller, {"target": seq, "reason": "not_our_sale"})
    )
    resolved = world.submit(resolution(world, dispute, "partly", amount_fen=2_500))
    claim, reversal = obligation(world, seq), obligation(world, resolved)
    assert (claim.status, claim.amount_fen) == ("effective", 6_000)  # never rewritten
    assert (reversal.kind, reversal.debtor, reversal.creditor) == ("reversal", buyer, seller)
    assert (reversal.amount_fen, reversal.status) == (2_500, "effective")
    assert world.state.disputes.get(dispute).status == "partly"
    sub = world.sign("claim.disputed", buyer, {"target": resolved, "reason": "not_our_sale"})
    refused(world, sub, PolicyError, "reversal")


@pytest.mark.parametrize(
    ("outcome", "fields", "words", "field"),
    [
        ("partly", {}, ["states the part"], "body.amount_fen"),
        ("partly", {"amount_fen": 6_000}, ["below the claim's 6000 fen"], "body.amount_fen"),
        ("upheld", {"amount_fen": 1}, ["only with outcome partly"], "body.amount_fen"),
    ],
)
def test_an_amount_only_for_a_partial_outcome(
    world: LedgerWorld,
    members: tuple[str, str],
    outcome: str,
    fields: dict[str, object],
    words: list[str],
    field: str,
) -> None:
    seller, buyer = members
    seq = approved_return(world, seller, buyer, 6_000)
    dispute = world.submit(
        world.sign("claim.disputed", seller, {"target": seq, "reason": "not_our_sale"})
    )
    error = refused(world, resolution(world, dispute, outcome, **fields), PolicyError, *words)
    assert error.field == field


def test_a_claim_not_yet_approved_is_not_upheld_in_part(
    world: LedgerWorld, members: tuple[str, str]
) -> None:
    seller, buyer = members
    seq = world.submit(signed_return(world, seller, buyer, refund_fen=6_000))
    dispute = world.submit(
        world.sign("claim.disputed", seller, {"target": seq, "reason": "not_our_sale"})
    )
    sub = resolution(world, dispute, "partly", amount_fen=1_000)
    assert refused(world, sub, PolicyError, "is pending").field == "body.outcome"


# --- the calendar itself --------------------------------------------------------------------


def test_calendar_days_off_and_working_days() -> None:
    calendar = CalendarModel(
        rest_weekdays=[6, 7], holidays=["2026-10-01", "2026-10-02"], workdays=["2026-10-10"]
    )
    assert is_day_off(calendar, date(2026, 10, 1))  # a holiday (Thursday)
    assert is_day_off(calendar, date(2026, 10, 4))  # a Sunday
    assert not is_day_off(calendar, date(2026, 10, 10))  # a make-up Saturday (调休)
    assert not is_day_off(None, date(2026, 10, 4))
    assert add_working_days(calendar, date(2026, 9, 30), 1) == date(2026, 10, 5)
    end = period_end(date(2026, 9, 24), 7, calendar)  # 7th day is the holiday 10-01
    assert end == datetime(2026, 10, 6, tzinfo=LOCAL)  # after Monday 10-05
    assert MONDAY.date() == date(2026, 11, 23)
