"""Rules of credit.penalty and credit.restored, and the credit projection."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.kinds.credit import credit_as_of, grade_of
from ledger.rows import CreditRow, PenaltyRow
from schemas.bodies import GradeThresholdsModel
from schemas.entry import format_utc
from schemas.errors import PolicyError
from tests.ledger.builders import (
    LedgerWorld,
    endorse,
    penalty_body,
    refused,
    return_body,
)

RULES = {
    "overdue_settlement": (10, "watch"),
    "refused_return": (20, "abnormal"),
    "false_claim": (40, "abnormal"),
    "serious_violation": (60, "serious"),
}


@pytest.fixture
def world() -> LedgerWorld:
    return LedgerWorld()


@pytest.fixture
def merchant(world: LedgerWorld) -> str:
    return world.enroll("31")


def penalise(world: LedgerWorld, member: str, rule: str, days: float = 30) -> int:
    points, listing = RULES[rule]
    body = penalty_body(world, member, rule, points=points, listing=listing, days=days)
    return world.submit(world.sign("credit.penalty", world.region_of(member), body))


def restore(world: LedgerWorld, penalty: int, region: str = "region:31") -> int:
    body = {"penalty": penalty, "reason": "corrected and trained staff"}
    return world.submit(world.sign("credit.restored", region, body))


def credit(world: LedgerWorld, member: str) -> CreditRow:
    row = world.state.credit.get(member)
    assert isinstance(row, CreditRow)
    return row


# --- credit.penalty ------------------------------------------------------------------------


def test_penalty_lists_the_member_and_updates_its_credit(world: LedgerWorld, merchant: str) -> None:
    seq = penalise(world, merchant, "overdue_settlement")
    logged = format_utc(world.now)
    row = world.state.penalties.get(seq)
    assert isinstance(row, PenaltyRow)
    assert (row.member, row.rule, row.points, row.listing, row.issued, row.restored_seq) == (
        merchant,
        "overdue_settlement",
        10,
        "watch",
        logged,
        None,
    )
    assert world.state.member_penalties[merchant] == [seq]
    assert credit(world, merchant) == CreditRow(merchant, logged, 10, "watch", "B", 0, 0)


def test_suspended_member_can_be_penalised(world: LedgerWorld, merchant: str) -> None:
    world.submit(
        world.sign(
            "member.suspended", "region:31", {"member": merchant, "reason": "credit_measure"}
        )
    )
    penalise(world, merchant, "refused_return")
    assert credit(world, merchant).grade == "C"


def test_penalty_member_must_be_enrolled(world: LedgerWorld) -> None:
    stranger = world.new_uscc("31")
    sub = world.sign("credit.penalty", "region:31", penalty_body(world, stranger))
    assert refused(world, sub, PolicyError, "not an enrolled member").field == "body.member"


@pytest.mark.parametrize("signer", ["region:32", "operator", "member"])
def test_penalty_is_issued_by_the_members_region(
    world: LedgerWorld, merchant: str, signer: str
) -> None:
    other = world.enroll("31") if signer == "member" else None
    sub = world.sign("credit.penalty", other or signer, penalty_body(world, merchant))
    assert refused(world, sub, PolicyError, "only region:31").field == "signer"


def test_penalty_rule_must_exist(world: LedgerWorld, merchant: str) -> None:
    body = penalty_body(world, merchant, "littering")
    sub = world.sign("credit.penalty", "region:31", body)
    refused(world, sub, PolicyError, "rule littering is not in the current policy")


def test_penalty_points_must_match_the_rule(world: LedgerWorld, merchant: str) -> None:
    body = penalty_body(world, merchant, points=5)
    sub = world.sign("credit.penalty", "region:31", body)
    error = refused(world, sub, PolicyError, "overdue_settlement carries 10 points, not 5")
    assert error.field == "body.points"


def test_penalty_listing_must_match_the_rule(world: LedgerWorld, merchant: str) -> None:
    body = penalty_body(world, merchant, listing="serious")
    sub = world.sign("credit.penalty", "region:31", body)
    error = refused(world, sub, PolicyError, "overdue_settlement lists as watch")
    assert error.field == "body.listing"


@pytest.mark.parametrize("days", [0, -1])
def test_penalty_until_must_be_after_the_entry(
    world: LedgerWorld, merchant: str, days: float
) -> None:
    sub = world.sign("credit.penalty", "region:31", penalty_body(world, merchant, days=days))
    refused(world, sub, PolicyError, "not after the entry time")


def test_penalty_until_within_the_rules_duration(world: LedgerWorld, merchant: str) -> None:
    body = penalty_body(world, merchant, days=365 + 1 / 24)
    sub = world.sign("credit.penalty", "region:31", body)
    error = refused(world, sub, PolicyError, "lasts at most 365 days")
    assert error.field == "body.until"
    body = penalty_body(world, merchant, days=365)
    assert world.submit(world.sign("credit.penalty", "region:31", body)) > 0


@pytest.mark.parametrize(("evidence", "words"), [([0, 99], "evidence seq 99"), ([1, 1], "twice")])
def test_penalty_evidence_must_be_earlier_distinct_entries(
    world: LedgerWorld, merchant: str, evidence: list[int], words: str
) -> None:
    body = penalty_body(world, merchant, evidence=evidence)
    sub = world.sign("credit.penalty", "region:31", body)
    assert refused(world, sub, PolicyError, words).field == "body.evidence"


def test_penalty_evidence_cannot_be_itself(world: LedgerWorld, merchant: str) -> None:
    body = penalty_body(world, merchant, evidence=[world.state.size])
    sub = world.sign("credit.penalty", "region:31", body)
    refused(world, sub, PolicyError, "not an earlier entry")


# --- credit.restored -----------------------------------------------------------------------


def test_restoration_lifts_the_penalty(world: LedgerWorld, merchant: str) -> None:
    seq = penalise(world, merchant, "overdue_settlement")
    world.tick(days=1)
    restored = restore(world, seq)
    assert world.state.penalties.get(seq).restored_seq == restored
    assert credit(world, merchant) == CreditRow(
        merchant, format_utc(world.now), 0, "none", "A", 0, 0
    )


def test_restoration_waits_for_the_rule(world: LedgerWorld, merchant: str) -> None:
    seq = penalise(world, merchant, "false_claim", days=700)
    world.tick(days=364)
    sub = world.sign("credit.restored", "region:31", {"penalty": seq, "reason": "fixed"})
    error = refused(world, sub, PolicyError, "only 365 days after it was logged")
    assert error.field == "body.penalty"
    world.tick(days=1)
    restore(world, seq)
    assert credit(world, merchant).grade == "A"


def test_restoration_target_must_be_a_penalty(world: LedgerWorld, merchant: str) -> None:
    sub = world.sign("credit.restored", "region:31", {"penalty": 1, "reason": "x"})
    refused(world, sub, PolicyError, "seq 1 is not a credit penalty")


def test_restoration_by_the_members_region(world: LedgerWorld, merchant: str) -> None:
    seq = penalise(world, merchant, "overdue_settlement")
    sub = world.sign("credit.restored", "region:32", {"penalty": seq, "reason": "x"})
    assert refused(world, sub, PolicyError, "only region:31").field == "signer"


def test_restoration_happens_once(world: LedgerWorld, merchant: str) -> None:
    seq = penalise(world, merchant, "overdue_settlement")
    first = restore(world, seq)
    sub = world.sign("credit.restored", "region:31", {"penalty": seq, "reason": "x"})
    refused(world, sub, PolicyError, f"already restored at seq {first}")


def test_expired_penalty_cannot_be_restored(world: LedgerWorld, merchant: str) -> None:
    seq = penalise(world, merchant, "overdue_settlement", days=2)
    world.tick(days=2)
    sub = world.sign("credit.restored", "region:31", {"penalty": seq, "reason": "x"})
    refused(world, sub, PolicyError, "expired")


# --- grades ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "listing", "grade"),
    [
        (0, "none", "A"),
        (9, "none", "A"),
        (10, "none", "B"),
        (29, "none", "B"),
        (30, "none", "C"),
        (59, "none", "C"),
        (60, "none", "D"),
        (0, "watch", "B"),
        (0, "abnormal", "C"),
        (0, "serious", "D"),
        (60, "watch", "D"),
        (35, "watch", "C"),
    ],
)
def test_grade_thresholds(points: int, listing: str, grade: str) -> None:
    assert grade_of(GradeThresholdsModel(B=10, C=30, D=60), points, listing) == grade


def test_points_accumulate_across_penalties(world: LedgerWorld, merchant: str) -> None:
    grades = []
    for rule in ("overdue_settlement", "overdue_settlement", "overdue_settlement"):
        penalise(world, merchant, rule)
        grades.append((credit(world, merchant).points, credit(world, merchant).grade))
    assert grades == [(10, "B"), (20, "B"), (30, "C")]
    penalise(world, merchant, "false_claim")
    assert (credit(world, merchant).points, credit(world, merchant).listing) == (70, "abnormal")
    assert credit(world, merchant).grade == "D"  # by points, with only an abnormal listing


def test_listing_is_the_most_severe_active_one(world: LedgerWorld, merchant: str) -> None:
    penalise(world, merchant, "refused_return")
    serious = penalise(world, merchant, "serious_violation", days=1095)
    penalise(world, merchant, "overdue_settlement")
    assert (credit(world, merchant).listing, credit(world, merchant).grade) == ("serious", "D")
    world.tick(days=365)
    restore(world, serious)
    row = credit(world, merchant)
    # the other two expired after 30 days: nothing is left
    assert (row.points, row.listing, row.grade) == (0, "none", "A")


def test_credit_as_of_follows_the_clock(world: LedgerWorld, merchant: str) -> None:
    start = world.now
    penalise(world, merchant, "serious_violation", days=1095)
    penalise(world, merchant, "overdue_settlement", days=30)
    state = world.state
    assert credit_as_of(state, merchant, start - timedelta(seconds=1)).grade == "A"
    now = credit_as_of(state, merchant, start)
    assert (now.points, now.listing, now.as_of) == (70, "serious", format_utc(start))
    month = credit_as_of(state, merchant, start + timedelta(days=31))
    assert (month.points, month.listing, month.grade) == (60, "serious", "D")
    # points leave the window after a year, the serious listing stays for three
    year = credit_as_of(state, merchant, start + timedelta(days=365))
    assert (year.points, year.listing, year.grade) == (0, "serious", "D")
    later = credit_as_of(state, merchant, start + timedelta(days=1095))
    assert (later.points, later.listing, later.grade) == (0, "none", "A")


# --- returns honoured --------------------------------------------------------------------------


@pytest.fixture
def pair(world: LedgerWorld) -> tuple[str, str]:
    return world.enroll("31"), world.enroll("32")


def _return(world: LedgerWorld, seller: str, buyer: str, number: str = "R-1") -> int:
    body = return_body(world, seller, number=number, refund_fen=100, amount_fen=100)
    return world.submit(world.sign("return.recorded", buyer, body))


def test_approved_return_counts_for_the_seller(world: LedgerWorld, pair: tuple[str, str]) -> None:
    seller, buyer = pair
    first = _return(world, seller, buyer, "R-1")
    second = _return(world, seller, buyer, "R-2")
    endorse(world, "31", [first, second])
    assert credit(world, seller).returns_honoured == 0
    world.tick(hours=1)
    endorse(world, "32", [first, second])
    row = credit(world, seller)
    assert (row.returns_honoured, row.as_of) == (2, format_utc(world.now))
    assert credit(world, buyer).returns_honoured == 0


def test_rejected_and_own_store_returns_do_not_count(
    world: LedgerWorld, pair: tuple[str, str]
) -> None:
    seller, buyer = pair
    rejected = _return(world, seller, buyer)
    endorse(world, "32", [rejected], "reject")
    endorse(world, "31", [rejected])
    own = _return(world, seller, seller, "R-own")
    endorse(world, "31", [own])
    assert world.state.endorsables.get(own).status == "approved"
    assert credit(world, seller).returns_honoured == 0


def test_upheld_dispute_takes_the_return_back(world: LedgerWorld, pair: tuple[str, str]) -> None:
    seller, buyer = pair
    after = _return(world, seller, buyer, "R-1")
    before = _return(world, seller, buyer, "R-2")
    for seq in (after, before):
        body = {"target": seq, "reason": "not_our_sale"}
        world.submit(world.sign("claim.disputed", seller, body))
    disputes = {after: world.state.size - 2, before: world.state.size - 1}
    world.submit(
        world.sign_by(
            "dispute.resolved",
            ["region:31", "region:32"],  # the debtor's region and the creditor's
            {"dispute": disputes[before], "outcome": "upheld"},
        )
    )
    endorse(world, "31", [after, before])
    endorse(world, "32", [after, before])
    assert credit(world, seller).returns_honoured == 1  # `before` was voided first
    world.submit(
        world.sign_by(
            "dispute.resolved",
            ["region:31", "region:32"],  # the debtor's region and the creditor's
            {"dispute": disputes[after], "outcome": "upheld"},
        )
    )
    assert credit(world, seller).returns_honoured == 0


def test_credit_rebuilds_identically(world: LedgerWorld, pair: tuple[str, str]) -> None:
    seller, buyer = pair
    penalty = penalise(world, seller, "overdue_settlement")
    seq = _return(world, seller, buyer)
    endorse(world, "31", [seq])
    endorse(world, "32", [seq])
    world.tick(days=2)
    restore(world, penalty)
    rebuilt = world.replay()
    assert rebuilt.all_tables() == world.state.all_tables()
    assert rebuilt.member_penalties == world.state.member_penalties
