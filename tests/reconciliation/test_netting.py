"""Netting: hand-computed nights, properties of positions and instructions, refusals."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_97_10

from reconciliation import netting
from reconciliation.netting import (
    Instruction,
    Obligation,
    Position,
    check_reference,
    instructions,
    payment_reference,
    positions,
)
from schemas.bodies import CalendarModel
from schemas.canonical import canonical, canonical_reference
from schemas.errors import InvariantError, LimitError, MalformedError, VerificationError
from schemas.limits import AMOUNT_FEN_MAX, REFERENCE_INDEX_DIGITS
from tests.reconciliation.support import DAY, SETTLEMENT_DAYS, nights, ob, shipped_calendar

SETTINGS = settings(max_examples=300, deadline=None)
WEEKENDS = CalendarModel(rest_weekdays=[6, 7], holidays=["2027-01-01"], workdays=[])


# --- hand-computed nights -------------------------------------------------------------------


def test_three_members_one_cycle() -> None:
    """A owes B 500, B owes C 300, C owes A 100: A -400, B +200, C +200. A pays the tied
    creditors B (smaller id) first, then C: two transfers among three members."""
    night = [ob(1, "A", "B", 500), ob(2, "B", "C", 300), ob(5, "C", "A", 100, "advance")]
    assert positions(night) == [
        Position("A", -400, 100, 500),
        Position("B", 200, 500, 300),
        Position("C", 200, 300, 100),
    ]
    due = date(2026, 12, 4)  # Tue 1 Dec + 3 working days (no weekend in between)
    assert instructions(positions(night), DAY, WEEKENDS, 3) == [
        Instruction(0, "A", "B", 200, due, "AL20261201-000000-76"),
        Instruction(1, "A", "C", 200, due, "AL20261201-000001-73"),
    ]


def test_four_members_tied_debtors() -> None:
    """A -300, B -300 (tied: A first), C +500, D +100.
    A pays C 300 (C has 200 left); B pays C 200, then B pays D its last 100."""
    night = [
        ob(10, "A", "C", 300),
        ob(11, "B", "C", 200),
        ob(12, "B", "D", 100),
    ]
    result = instructions(positions(night), DAY, None, 1)
    assert [(i.payer, i.payee, i.amount_fen) for i in result] == [
        ("A", "C", 300),
        ("B", "C", 200),
        ("B", "D", 100),
    ]
    assert [i.index for i in result] == [0, 1, 2]
    assert all(i.due == date(2026, 12, 2) for i in result)  # no calendar: every day works


def test_member_whose_debts_cancel_keeps_a_zero_position() -> None:
    night = [ob(1, "A", "B", 700), ob(2, "B", "C", 700)]
    assert positions(night)[1] == Position("B", 0, 700, 700)
    assert instructions(positions(night), DAY, None, 1) == [
        Instruction(0, "A", "C", 700, date(2026, 12, 2), payment_reference(DAY, 0))
    ]


def test_empty_night() -> None:
    assert positions([]) == []
    assert instructions([], DAY, WEEKENDS, 3) == []


def test_due_date_across_weekend_and_holiday() -> None:
    """Wed 30 Dec 2026 + 3 working days: Thu 31 (1), Fri 1 Jan is a holiday, the weekend
    is off, Mon 4 (2), Tue 5 (3)."""
    night = [ob(1, "A", "B", 1)]
    (only,) = instructions(positions(night), date(2026, 12, 30), WEEKENDS, 3)
    assert only.due == date(2027, 1, 5)
    # A make-up working Saturday (调休) counts.
    makeup = CalendarModel(rest_weekdays=[6, 7], holidays=["2027-01-01"], workdays=["2027-01-02"])
    (moved,) = instructions(positions(night), date(2026, 12, 30), makeup, 3)
    assert moved.due == date(2027, 1, 4)


def test_due_date_in_the_shipped_policy_calendar() -> None:
    """ops/yrd.json: 国庆 1-3 Oct 2026 (Thu-Sat), then Sunday: Wed 30 Sep + 3 working
    days is Mon 5 (1), Tue 6 (2), Wed 7 Oct (3). Fri 4 Dec + 1 skips the weekend."""
    calendar = shipped_calendar()
    night = positions([ob(1, "A", "B", 1)])
    assert instructions(night, date(2026, 9, 30), calendar, SETTLEMENT_DAYS)[0].due == date(
        2026, 10, 7
    )
    assert instructions(night, date(2026, 12, 4), calendar, 1)[0].due == date(2026, 12, 7)


def test_reference_of_the_issue() -> None:
    reference = payment_reference(date(2026, 12, 1), 3)
    assert reference == "AL20261201-000003-67"
    assert mod_97_10.is_valid("2026120100000367")
    assert int("2026120100000367") % 97 == 1  # ISO 7064 MOD 97-10, by hand
    check_reference(reference, date(2026, 12, 1), 3)


@SETTINGS
@given(st.dates(date(2000, 1, 1), date(2099, 12, 31)), st.integers(0, 10**6 - 1))
def test_reference_check_digits_validate_in_stdnum(day: date, index: int) -> None:
    reference = payment_reference(day, index)
    prefix, day_text, index_text, check = reference[:2], *reference[2:].split("-")
    assert (prefix, day_text, index_text) == ("AL", day.strftime("%Y%m%d"), f"{index:06d}")
    assert mod_97_10.is_valid(day_text + index_text + check)
    check_reference(reference, day, index)


def test_tampered_reference_is_refused() -> None:
    with pytest.raises(VerificationError, match="bad check digits"):
        check_reference("AL20261201-000003-76", DAY, 3)
    with pytest.raises(VerificationError, match="bad check digits"):
        check_reference("AL2026120?-000003-67", DAY, 3)
    with pytest.raises(VerificationError, match="not that of instruction 4"):
        check_reference("AL20261201-000003-67", DAY, 4)


# --- properties ----------------------------------------------------------------------------


def settle(result: list[Instruction]) -> Counter[str]:
    """Each member's net after the transfers: what it received minus what it paid."""
    moved: Counter[str] = Counter()
    for instruction in result:
        moved[instruction.payee] += instruction.amount_fen
        moved[instruction.payer] -= instruction.amount_fen
    return moved


@SETTINGS
@given(nights())
def test_positions_balance(night: list[Obligation]) -> None:
    result = positions(night)
    gross = sum(o.amount_fen for o in night)
    assert sum(p.net_fen for p in result) == 0
    assert sum(p.receivable_fen for p in result) == sum(p.payable_fen for p in result) == gross
    assert [p.member for p in result] == sorted(
        {o.debtor for o in night} | {o.creditor for o in night}
    )
    assert all(p.net_fen == p.receivable_fen - p.payable_fen for p in result)


@SETTINGS
@given(nights())
def test_instructions_settle_every_position_exactly(night: list[Obligation]) -> None:
    netted = positions(night)
    result = instructions(netted, DAY, WEEKENDS, SETTLEMENT_DAYS)
    moved = settle(result)
    assert all(moved[p.member] == p.net_fen for p in netted)
    assert all(i.amount_fen > 0 and i.payer != i.payee for i in result)
    net_of = {p.member: p.net_fen for p in netted}
    assert all(net_of[i.payer] < 0 < net_of[i.payee] for i in result)  # nobody pays and receives
    active = sum(1 for p in netted if p.net_fen)
    assert len(result) <= max(active - 1, 0)
    assert [i.index for i in result] == list(range(len(result)))
    assert all(i.reference == payment_reference(DAY, i.index) for i in result)


@SETTINGS
@given(nights(), st.randoms(use_true_random=False))
def test_independent_of_input_order(night: list[Obligation], rng: object) -> None:
    shuffled = list(night)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    netted = positions(night)
    assert positions(shuffled) == netted
    assert instructions(positions(shuffled), DAY, None, 2) == instructions(netted, DAY, None, 2)


@SETTINGS
@given(nights())
def test_largest_debtor_pays_largest_creditor_first(night: list[Obligation]) -> None:
    netted = positions(night)
    result = instructions(netted, DAY, None, 1)
    if result:
        debtors = [(p.net_fen, p.member) for p in netted if p.net_fen < 0]
        creditors = [(-p.net_fen, p.member) for p in netted if p.net_fen > 0]
        assert (result[0].payer, result[0].payee) == (min(debtors)[1], min(creditors)[1])


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -5])
def test_refuses_zero_or_negative_amount(amount: int) -> None:
    with pytest.raises(MalformedError, match="obligation 7: amount_fen must be a positive") as e:
        ob(7, "A", "B", amount)
    assert (e.value.seq, e.value.field) == (7, "amount_fen")


def test_refuses_bool_and_float_amounts() -> None:
    with pytest.raises(MalformedError, match="amount_fen must be a positive integer, not True"):
        ob(1, "A", "B", True)
    with pytest.raises(MalformedError, match=r"not 1\.5"):
        ob(1, "A", "B", 1.5)  # type: ignore[arg-type]


def test_refuses_amount_beyond_safe_range() -> None:
    with pytest.raises(LimitError, match="exceeds AMOUNT_FEN_MAX") as e:
        ob(3, "A", "B", AMOUNT_FEN_MAX + 1)
    assert e.value.field == "amount_fen"


def test_refuses_debtor_equal_to_creditor() -> None:
    with pytest.raises(MalformedError, match="obligation 4: debtor and creditor are both A") as e:
        ob(4, "A", "A", 100)
    assert (e.value.seq, e.value.field) == (4, "creditor")


@pytest.mark.parametrize(
    ("seq", "debtor", "kind", "message"),
    [
        (-1, "A", "return", "seq -1 must be a non-negative integer"),
        (1, "", "return", "obligation 1: debtor must be a member id"),
        (1, "A", "", "obligation 1: kind must be a lowercase slug"),
        (1, "A", "Return", "obligation 1: kind must be a lowercase slug"),
        (1, "A", "re-turn", "obligation 1: kind must be a lowercase slug"),
        (1, "x" * 65, "return", "obligation 1: debtor must be a member id"),
        (1, "region:31", "return", "obligation 1: debtor must be a member id of 1..64 ASCII"),
        (1, 'A"B', "return", "obligation 1: debtor must be a member id"),
        (1, "甲", "return", "obligation 1: debtor must be a member id"),
    ],
)
def test_refuses_malformed_fields(seq: int, debtor: str, kind: str, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        Obligation(seq, kind, debtor, "B", 1)


@SETTINGS
@given(nights())
def test_obligation_leaf_is_jcs(night: list[Obligation]) -> None:
    """The written-out leaf equals the rfc8785 package's bytes and the project's."""
    for obligation in night:
        assert obligation.leaf() == canonical_reference(obligation.item())
        assert obligation.leaf() == canonical(obligation.item())


def test_refuses_too_many_obligations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netting, "OBLIGATIONS_PER_NIGHT_MAX", 2)
    with pytest.raises(LimitError, match="more than OBLIGATIONS_PER_NIGHT_MAX 2 obligations"):
        positions([ob(1, "A", "B", 1), ob(2, "A", "B", 1), ob(3, "A", "B", 1)])


def test_refuses_too_many_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netting, "POSITIONS_PER_NIGHT_MAX", 2)
    with pytest.raises(LimitError, match="3 members exceed POSITIONS_PER_NIGHT_MAX 2"):
        positions([ob(1, "A", "B", 1), ob(2, "C", "B", 1)])
    with pytest.raises(LimitError, match="3 positions exceed POSITIONS_PER_NIGHT_MAX 2"):
        instructions([Position("A", 0, 0, 0)] * 3, DAY, None, 1)


def test_refuses_gross_beyond_safe_range() -> None:
    night = [ob(1, "A", "B", AMOUNT_FEN_MAX), ob(2, "C", "D", 1)]
    with pytest.raises(LimitError, match="gross 9007199254740992 fen exceeds AMOUNT_FEN_MAX"):
        positions(night)


def test_refuses_positions_not_from_positions() -> None:
    with pytest.raises(MalformedError, match="positions do not sum to zero"):
        instructions([Position("A", -5, 0, 5), Position("B", 4, 4, 0)], DAY, None, 1)
    with pytest.raises(MalformedError, match="members must be unique and ascending"):
        instructions([Position("B", 5, 5, 0), Position("A", -5, 0, 5)], DAY, None, 1)
    with pytest.raises(MalformedError, match="integer amounts, never negative"):
        instructions([Position("A", -5, 0, 5), Position("B", 5.0, 5, 0)], DAY, None, 1)  # type: ignore[arg-type]
    with pytest.raises(MalformedError, match="integer amounts, never negative"):
        instructions([Position("A", 0, -5, -5)], DAY, None, 1)
    with pytest.raises(MalformedError, match="'a-b': a member id"):
        instructions([Position("a-b", 0, 0, 0)], DAY, None, 1)
    with pytest.raises(MalformedError, match="net_fen is not receivable_fen - payable_fen"):
        instructions([Position("A", -5, 0, 4), Position("B", 5, 5, 0)], DAY, None, 1)


@pytest.mark.parametrize("days", [0, -1, 91, True])
def test_refuses_settlement_days_out_of_range(days: int) -> None:
    with pytest.raises(MalformedError, match=r"settlement_days must be within 1\.\.90"):
        instructions([], DAY, None, days)


def test_refuses_reference_index_beyond_its_digits() -> None:
    with pytest.raises(MalformedError, match=f"does not fit {REFERENCE_INDEX_DIGITS} digits"):
        payment_reference(DAY, 10**REFERENCE_INDEX_DIGITS)


def test_broken_netting_halts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The N-1 bound is an invariant, not a hope: a netting that breaks it halts."""
    night = positions([ob(1, "A", "B", 2)])
    monkeypatch.setattr(netting, "INSTRUCTIONS_PER_NIGHT_MAX", 0)
    with pytest.raises(InvariantError, match="more instructions than the limit"):
        instructions(night, DAY, None, 1)
