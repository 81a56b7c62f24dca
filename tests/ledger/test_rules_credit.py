"""Rules of credit.notice, credit.objection, credit.penalty and credit.restored, and the
credit projection (issue 7 §4): every rule refused (class, message, field, state
unchanged) and accepted at its edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from ledger.calendar import local_date
from ledger.kinds.credit import credit_as_of, stars_of
from ledger.rows import CreditRow, DecisionRow, NoticeEvidenceRow, NoticeRow, PenaltyRow
from ledger.state import OPERATOR
from ops.world import entry_time
from schemas.bodies import PolicyModel
from schemas.entry import format_utc, parse_time
from schemas.errors import MalformedError, PolicyError, UnknownPrincipalError
from tests.ledger.builders import LedgerWorld, advance_body, endorse, refused, return_body

# (points, measure) of the shipped policy's rules (ops/yrd.json).
RULES = {
    "overdue_settlement": (10, "warning"),
    "refused_return": (20, "suspension"),
    "false_claim": (40, "suspension"),
    "serious_violation": (60, "delisting"),
}
STARS = {"4": 10, "3": 30, "2": 60, "1": 100}


@dataclass
class Case:
    """A log holding one fact of each kind a notice may cite."""

    world: LedgerWorld
    seller: str  # merchant of region 31
    buyer: str  # merchant of region 32: records returns of the seller's goods
    fund: str  # the pooled fund of region 31
    refused: int  # the buyer's return that region 31 rejected
    rejection: int  # that rejecting endorsement
    upheld: int  # resolution upholding the seller's dispute of the buyer's claim
    dismissed: int  # resolution dismissing another such dispute
    advance: int  # the fund's advance for the seller, approved
    pending_advance: int  # another, not yet endorsed


def _return(world: LedgerWorld, seller: str, buyer: str, number: str) -> int:
    body = return_body(world, seller, number=number, refund_fen=100, amount_fen=100)
    return world.submit(world.sign("return.recorded", buyer, body))


def _resolve(world: LedgerWorld, dispute: int, outcome: str) -> int:
    body = {"dispute": dispute, "outcome": outcome}
    return world.submit(world.sign_by("dispute.resolved", ["region:31", "region:32"], body))


def _disputed(world: LedgerWorld, seller: str, target: int) -> int:
    body = {"target": target, "reason": "not_our_sale"}
    return world.submit(world.sign("claim.disputed", seller, body))


@pytest.fixture
def case() -> Case:
    world = LedgerWorld()
    seller, buyer = world.enroll("31"), world.enroll("32")
    fund = world.enroll("31", kind="fund", stores=[])
    refused_return = _return(world, seller, buyer, "R-1")
    rejection = endorse(world, "31", [refused_return], "reject")
    upheld = _resolve(
        world, _disputed(world, seller, _return(world, seller, buyer, "R-2")), "upheld"
    )
    dismissed_dispute = _disputed(world, seller, _return(world, seller, buyer, "R-3"))
    dismissed = _resolve(world, dismissed_dispute, "dismissed")
    advance = world.submit(world.sign("advance.paid", fund, advance_body(seller, "C-1")))
    endorse(world, "31", [advance])
    pending = world.submit(world.sign("advance.paid", fund, advance_body(seller, "C-2")))
    world.tick(hours=1)
    return Case(
        world, seller, buyer, fund, refused_return, rejection, upheld, dismissed, advance, pending
    )


def deadline(world: LedgerWorld, days: int = 3) -> str:
    return local_date(world.now + timedelta(days=days)).isoformat()


def notice_body(
    world: LedgerWorld, member: str, rule: str, evidence: list[int], **fields: Any
) -> dict[str, Any]:
    points, measure = RULES.get(rule, (10, "warning"))
    body = {
        "member": member,
        "rule": rule,
        "points": points,
        "measure": measure,
        "evidence": evidence,
        "deadline": deadline(world),
    }
    return body | fields


def sign_notice(
    world: LedgerWorld, member: str, rule: str, evidence: list[int], **fields: Any
) -> dict[str, Any]:
    body = notice_body(world, member, rule, evidence, **fields)
    return world.sign("credit.notice", world.region_of(member), body)


def give_notice(case: Case, rule: str = "refused_return", member: str | None = None) -> int:
    """A notice under ``rule`` citing the case's fact for it."""
    member = member or (case.seller if rule == "serious_violation" else case.buyer)
    evidence = {
        "refused_return": case.rejection,
        "false_claim": case.upheld,
        "serious_violation": case.advance,
    }[rule]
    return case.world.submit(sign_notice(case.world, member, rule, [evidence]))


def notice(world: LedgerWorld, seq: int) -> NoticeRow:
    row = world.state.credit_notices.get(seq)
    assert isinstance(row, NoticeRow)
    return row


def objection_end(world: LedgerWorld, seq: int) -> datetime:
    return parse_time(notice(world, seq).objection_until)


def move_to(world: LedgerWorld, moment: datetime) -> None:
    world.tick(seconds=(moment - world.now).total_seconds())


def object_to(world: LedgerWorld, seq: int, reason: str = "evidence_wrong") -> int:
    body = {"notice": seq, "reason": reason}
    return world.submit(world.sign("credit.objection", notice(world, seq).member, body))


def penalty_body(world: LedgerWorld, seq: int, **fields: Any) -> dict[str, Any]:
    row = notice(world, seq)
    body = {
        "notice": seq,
        "objection": row.objection_seq,
        "decision_no": f"联信〔2026〕{seq}号",
        "member": row.member,
        "rule": row.rule,
        "points": row.points,
        "measure": row.measure,
        "until": entry_time(world.now + timedelta(days=30)),
    }
    return body | fields


def sign_penalty(world: LedgerWorld, seq: int, **fields: Any) -> dict[str, Any]:
    region = f"region:{notice(world, seq).region}"
    return world.sign("credit.penalty", region, penalty_body(world, seq, **fields))


def decide(
    case: Case, rule: str = "refused_return", *, until_days: float = 30, **fields: Any
) -> int:
    """Notice under ``rule``, wait out the objection period, decide (lasting
    ``until_days``); the penalty's seq."""
    world = case.world
    seq = give_notice(case, rule)
    move_to(world, objection_end(world, seq))
    until = entry_time(world.now + timedelta(days=until_days))
    return world.submit(sign_penalty(world, seq, until=until, **fields))


def restore_body(penalty: int, cure: int | None = None, **fields: Any) -> dict[str, Any]:
    return {"penalty": penalty, "reason": "cured_on_log", "cure": cure} | fields


def sign_restore(world: LedgerWorld, penalty: int, cure: int | None = None, **fields: Any) -> Any:
    member = world.state.penalties.get(penalty)
    assert member is not None
    body = restore_body(penalty, cure, **fields)
    return world.sign("credit.restored", world.region_of(member.member), body)


def credit(world: LedgerWorld, member: str) -> CreditRow:
    row = world.state.credit.get(member)
    assert isinstance(row, CreditRow)
    return row


# --- credit.notice -------------------------------------------------------------------------


def test_notice_records_the_proposal_and_its_evidence(case: Case) -> None:
    world = case.world
    before = credit(world, case.buyer)
    seq = give_notice(case, "refused_return")
    row = notice(world, seq)
    assert (row.member, row.region, row.rule, row.points, row.measure) == (
        case.buyer,
        "32",
        "refused_return",
        20,
        "suspension",
    )
    assert (row.deadline, row.objection_seq, row.decision_seq) == (deadline(world), None, None)
    # 24:00 local on the deadline (a Thursday: no day off moves it)
    assert row.objection_until == "2026-11-26T16:00:00.000000Z"
    assert world.state.notice_evidence.get(seq, case.rejection) == NoticeEvidenceRow(
        seq, case.rejection
    )
    assert credit(world, case.buyer) == before  # a notice is no penalty


def test_notice_member_must_be_enrolled(case: Case) -> None:
    stranger = case.world.new_uscc("32")
    sub = case.world.sign(
        "credit.notice", "region:32", notice_body(case.world, stranger, "refused_return", [1])
    )
    assert refused(case.world, sub, PolicyError, "not an enrolled member").field == "body.member"


@pytest.mark.parametrize("signer", ["region:31", OPERATOR])
def test_notice_is_given_by_the_members_region(case: Case, signer: str) -> None:
    body = notice_body(case.world, case.buyer, "refused_return", [case.rejection])
    sub = case.world.sign("credit.notice", signer, body)
    assert refused(case.world, sub, PolicyError, "only region:32").field == "signer"


def test_notice_rule_must_be_in_the_policy(case: Case) -> None:
    sub = sign_notice(case.world, case.buyer, "littering", [case.rejection])
    error = refused(case.world, sub, PolicyError, "rule littering is not in the current policy")
    assert error.field == "body.rule"


@pytest.mark.parametrize(
    ("fields", "words", "where"),
    [
        ({"points": 19}, "carries 20 points, not 19", "body.points"),
        ({"measure": "warning"}, "carries the measure suspension, not warning", "body.measure"),
    ],
)
def test_notice_proposes_what_the_rule_carries(
    case: Case, fields: dict[str, Any], words: str, where: str
) -> None:
    sub = sign_notice(case.world, case.buyer, "refused_return", [case.rejection], **fields)
    assert refused(case.world, sub, PolicyError, words).field == where


@pytest.mark.parametrize(("days", "ok"), [(2, False), (3, True), (15, True), (16, False)])
def test_notice_deadline_within_the_policy_bounds(case: Case, days: int, ok: bool) -> None:
    world = case.world
    fields = {"deadline": deadline(world, days)}
    sub = sign_notice(world, case.buyer, "refused_return", [case.rejection], **fields)
    if ok:
        assert notice(world, world.submit(sub)).deadline == deadline(world, days)
    else:
        error = refused(world, sub, PolicyError, "must lie between 2026-11-26 and 2026-12-08")
        assert error.field == "body.deadline"


def test_notice_deadline_is_a_real_date(case: Case) -> None:
    body = notice_body(case.world, case.buyer, "refused_return", [case.rejection])
    body["deadline"] = "2026-11-31"
    with pytest.raises(MalformedError):
        case.world.submit(case.world.sign("credit.notice", "region:32", body))


def test_objection_period_moves_past_days_off(case: Case) -> None:
    world = case.world
    fields = {"deadline": "2026-11-28"}  # a Saturday: the period ends on Monday 11-30
    seq = world.submit(sign_notice(world, case.buyer, "refused_return", [case.rejection], **fields))
    assert notice(world, seq).objection_until == "2026-11-30T16:00:00.000000Z"


@pytest.mark.parametrize(
    ("evidence", "words", "where"),
    [
        ([5, 5], "listed twice", "body.evidence"),
        ([10_000], "evidence seq 10000 is not an earlier entry", "body.evidence.0"),
    ],
)
def test_notice_evidence_distinct_and_earlier(
    case: Case, evidence: list[int], words: str, where: str
) -> None:
    sub = sign_notice(case.world, case.buyer, "refused_return", evidence)
    assert refused(case.world, sub, PolicyError, words).field == where


def test_notice_evidence_cannot_be_itself(case: Case) -> None:
    sub = sign_notice(case.world, case.buyer, "refused_return", [case.world.state.size])
    refused(case.world, sub, PolicyError, "not an earlier entry")


@pytest.mark.parametrize(
    ("rule", "attribute", "words"),
    [
        ("serious_violation", "genesis", "is not an advance (advance.paid)"),
        ("refused_return", "refused", "is not a rejecting endorsement (endorsement)"),
        ("false_claim", "rejection", "is not a dispute resolution (dispute.resolved)"),
        ("serious_violation", "upheld", "is not an advance (advance.paid)"),
        ("overdue_settlement", "advance", "is not a closed reconciliation (reconciliation.closed)"),
    ],
)
def test_notice_evidence_must_be_of_a_kind_the_rule_accepts(
    case: Case, rule: str, attribute: str, words: str
) -> None:
    seq = 0 if attribute == "genesis" else getattr(case, attribute)
    member = case.seller if rule in ("serious_violation", "overdue_settlement") else case.buyer
    sub = sign_notice(case.world, member, rule, [seq])
    assert refused(case.world, sub, PolicyError, f"evidence seq {seq} {words}").field == (
        "body.evidence.0"
    )


def test_notice_evidence_must_concern_the_member(case: Case) -> None:
    other = case.world.enroll("32")
    sub = sign_notice(case.world, other, "refused_return", [case.rejection])
    refused(case.world, sub, PolicyError, f"rejects nothing {other} recorded or owes")
    sub = sign_notice(case.world, other, "false_claim", [case.upheld])
    refused(case.world, sub, PolicyError, "decided a claim between other members")
    sub = sign_notice(case.world, case.buyer, "serious_violation", [case.advance])
    refused(case.world, sub, PolicyError, f"advance {case.advance} is between other members")


@pytest.mark.parametrize(
    ("rule", "member", "attribute", "words"),
    [
        ("refused_return", "seller", "rejection", "rejects no claim that"),
        ("false_claim", "seller", "upheld", "was the debtor, not the claimant"),
        ("false_claim", "buyer", "dismissed", "dismissed the dispute: no false claim"),
        ("serious_violation", "fund", "advance", "paid advance"),
        ("serious_violation", "seller", "pending_advance", "not a standing claim"),
    ],
)
def test_notice_evidence_must_prove_the_fault(
    case: Case, rule: str, member: str, attribute: str, words: str
) -> None:
    seq = getattr(case, attribute)
    sub = sign_notice(case.world, getattr(case, member), rule, [seq])
    error = refused(case.world, sub, PolicyError, f"evidence seq {seq}: ", words)
    assert error.field == "body.evidence.0"


@pytest.mark.parametrize("rule", ["refused_return", "false_claim", "serious_violation"])
def test_notice_accepts_the_fact_that_proves_its_rule(case: Case, rule: str) -> None:
    seq = give_notice(case, rule)
    assert notice(case.world, seq).rule == rule


def test_one_fact_supports_one_notice_of_a_rule(case: Case) -> None:
    first = give_notice(case, "refused_return")
    sub = sign_notice(case.world, case.buyer, "refused_return", [case.rejection])
    error = refused(case.world, sub, PolicyError, f"already supports notice {first}")
    assert error.field == "body.evidence.0"


# --- credit.objection ----------------------------------------------------------------------


def test_objection_until_the_deadline_ends(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    end = objection_end(world, seq)
    move_to(world, end - timedelta(microseconds=1))
    objection = object_to(world, seq)
    assert notice(world, seq).objection_seq == objection


def test_objection_after_the_deadline_is_refused(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    move_to(world, objection_end(world, seq))
    sub = world.sign("credit.objection", case.buyer, {"notice": seq, "reason": "evidence_wrong"})
    error = refused(world, sub, PolicyError, f"objection period of notice {seq} ended")
    assert error.field == "body.notice"


def test_objection_only_by_the_member(case: Case) -> None:
    seq = give_notice(case)
    for signer in (case.seller, "region:32"):
        sub = case.world.sign(
            "credit.objection", signer, {"notice": seq, "reason": "evidence_wrong"}
        )
        assert refused(case.world, sub, PolicyError, f"only {case.buyer}").field == "signer"


def test_objection_once(case: Case) -> None:
    seq = give_notice(case)
    first = object_to(case.world, seq)
    sub = case.world.sign(
        "credit.objection", case.buyer, {"notice": seq, "reason": "disproportionate"}
    )
    refused(case.world, sub, PolicyError, f"already objected to notice {seq} at seq {first}")


def test_objection_reason_is_a_policy_code(case: Case) -> None:
    seq = give_notice(case)
    sub = case.world.sign("credit.objection", case.buyer, {"notice": seq, "reason": "unfair"})
    assert refused(case.world, sub, PolicyError, "objection reason unfair").field == "body.reason"
    sub = case.world.sign("credit.objection", case.buyer, {"notice": seq, "reason": "不公平"})
    assert refused(case.world, sub, MalformedError).field == "body.reason"


def test_objection_target_must_be_a_notice(case: Case) -> None:
    body = {"notice": case.rejection, "reason": "evidence_wrong"}
    sub = case.world.sign("credit.objection", case.buyer, body)
    error = refused(case.world, sub, PolicyError, f"seq {case.rejection} is not a credit notice")
    assert error.field == "body.notice"


def test_suspended_member_may_object_withdrawn_may_not(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    world.submit(
        world.sign("member.suspended", "region:32", {"member": case.buyer, "reason": "inspection"})
    )
    assert notice(world, seq).objection_seq is None
    object_to(world, seq)
    second = give_notice(case, "false_claim")
    world.submit(
        world.sign("member.withdrawn", "region:32", {"member": case.buyer, "reason": "delisted"})
    )
    sub = world.sign("credit.objection", case.buyer, {"notice": second, "reason": "evidence_wrong"})
    refused(world, sub, UnknownPrincipalError, "withdrawn")


# --- credit.penalty ------------------------------------------------------------------------


def test_penalty_follows_the_deadline_and_sets_the_credit(case: Case) -> None:
    world = case.world
    penalty = decide(case)
    logged = format_utc(world.now)
    row = world.state.penalties.get(penalty)
    assert isinstance(row, PenaltyRow)
    notice_seq = row.notice
    assert (row.member, row.region, row.decision_no, row.rule, row.points, row.measure) == (
        case.buyer,
        "32",
        f"联信〔2026〕{notice_seq}号",
        "refused_return",
        20,
        "suspension",
    )
    assert world.state.credit_decisions.get("32", row.decision_no) == DecisionRow(
        "32", row.decision_no, penalty, 0, "return.recorded"
    )
    assert notice(world, notice_seq).decision_seq == penalty
    assert world.state.member_penalties[case.buyer] == [penalty]
    # 20 points: 4 stars by points, but a suspension caps them at 2
    assert credit(world, case.buyer) == CreditRow(case.buyer, logged, 20, "suspension", 2, 0, 0)


def test_penalty_before_the_deadline_ends_is_refused(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    move_to(world, objection_end(world, seq) - timedelta(microseconds=1))
    error = refused(world, sign_penalty(world, seq), PolicyError, "only after its objection period")
    assert error.field == "body.notice"


def test_penalty_must_cite_a_notice(case: Case) -> None:
    body = penalty_body(case.world, give_notice(case))
    body["notice"] = case.rejection
    sub = case.world.sign("credit.penalty", "region:32", body)
    refused(case.world, sub, PolicyError, f"seq {case.rejection} is not a credit notice")


def test_penalty_by_the_region_that_gave_notice(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    move_to(world, objection_end(world, seq))
    sub = world.sign("credit.penalty", "region:31", penalty_body(world, seq))
    assert refused(world, sub, PolicyError, "only region:32").field == "signer"


def test_penalty_cites_the_objection_exactly(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    objection = object_to(world, seq)
    move_to(world, objection_end(world, seq))
    for cited in (None, case.rejection):
        sub = sign_penalty(world, seq, objection=cited)
        error = refused(world, sub, PolicyError, f"drew the objection at seq {objection}")
        assert error.field == "body.objection"
    world.submit(sign_penalty(world, seq))
    other = give_notice(case, "false_claim")
    move_to(world, objection_end(world, other))
    sub = sign_penalty(world, other, objection=objection)
    refused(world, sub, PolicyError, f"notice {other} drew no objection")


@pytest.mark.parametrize(
    ("fields", "words", "where"),
    [
        ({"points": 21}, "proposed 20 points: 21 exceeds it", "body.points"),
        ({"measure": "delisting"}, "delisting is more severe", "body.measure"),
        ({"rule": "false_claim"}, "is under rule refused_return, not false_claim", "body.rule"),
    ],
)
def test_penalty_never_exceeds_the_notice(
    case: Case, fields: dict[str, Any], words: str, where: str
) -> None:
    world = case.world
    seq = give_notice(case)
    move_to(world, objection_end(world, seq))
    assert refused(world, sign_penalty(world, seq, **fields), PolicyError, words).field == where


def test_penalty_member_must_be_the_notices(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    move_to(world, objection_end(world, seq))
    other = world.enroll("32")
    error = refused(world, sign_penalty(world, seq, member=other), PolicyError, "concerns")
    assert error.field == "body.member"


def test_penalty_needs_the_rule_still_in_the_policy(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    policy = dict(world.config.policy)
    policy["rules"] = {k: v for k, v in policy["rules"].items() if k != "refused_return"}
    regions = [f"region:{code}" for code in world.state.region_codes()]
    world.submit(world.sign_by("policy.adopted", [OPERATOR, *regions], policy))
    move_to(world, objection_end(world, seq))
    sub = sign_penalty(world, seq)
    error = refused(world, sub, PolicyError, "rule refused_return is not in the current policy")
    assert error.field == "body.rule"


def test_penalty_may_be_lighter_than_the_notice(case: Case) -> None:
    penalty = decide(case, points=0, measure="warning")
    row = case.world.state.penalties.get(penalty)
    assert row is not None and (row.points, row.measure) == (0, "warning")
    assert credit(case.world, case.buyer).stars == 4  # a warning caps at 4 stars


@pytest.mark.parametrize("days", [0, -1])
def test_penalty_until_after_the_entry(case: Case, days: float) -> None:
    world = case.world
    seq = give_notice(case)
    move_to(world, objection_end(world, seq))
    until = entry_time(world.now + timedelta(days=days))
    error = refused(world, sign_penalty(world, seq, until=until), PolicyError, "not after")
    assert error.field == "body.until"


def test_penalty_until_within_the_rules_duration(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    move_to(world, objection_end(world, seq))
    late = entry_time(world.now + timedelta(days=365, hours=1))
    error = refused(world, sign_penalty(world, seq, until=late), PolicyError, "at most 365 days")
    assert error.field == "body.until"
    world.submit(sign_penalty(world, seq, until=entry_time(world.now + timedelta(days=365))))


def test_decision_numbers_are_unique_per_region(case: Case) -> None:
    world = case.world
    first = decide(case, decision_no="苏联信〔2026〕1号")
    second = give_notice(case, "false_claim")
    move_to(world, objection_end(world, second))
    sub = sign_penalty(world, second, decision_no="苏联信〔2026〕1号")
    error = refused(world, sub, PolicyError, "already used decision number", f"seq {first}")
    assert error.field == "body.decision_no"
    # another region may use the same number
    seller_notice = give_notice(case, "serious_violation")
    move_to(world, objection_end(world, seller_notice))
    world.submit(sign_penalty(world, seller_notice, decision_no="苏联信〔2026〕1号"))


def test_a_notice_is_decided_once(case: Case) -> None:
    world = case.world
    penalty = decide(case)
    seq = notice(world, world.state.penalties.get(penalty).notice).seq  # type: ignore[union-attr]
    sub = sign_penalty(world, seq, decision_no="another")
    refused(world, sub, PolicyError, f"notice {seq} was already decided at seq {penalty}")


def test_withdrawn_member_can_still_be_decided(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    world.submit(
        world.sign("member.withdrawn", "region:32", {"member": case.buyer, "reason": "delisted"})
    )
    move_to(world, objection_end(world, seq))
    world.submit(sign_penalty(world, seq))
    assert credit(world, case.buyer).measure == "suspension"


# --- credit.restored -----------------------------------------------------------------------


def _cure(case: Case, number: str = "C-R") -> int:
    """A return the buyer records and both regions approve."""
    seq = _return(case.world, case.seller, case.buyer, number)
    endorse(case.world, "31", [seq])
    endorse(case.world, "32", [seq])
    return seq


def test_restoration_with_the_cure_lifts_the_penalty(case: Case) -> None:
    world = case.world
    penalty = decide(case)
    cure = _cure(case)
    restored = world.submit(sign_restore(world, penalty, cure))
    assert world.state.penalties.get(penalty).restored_seq == restored  # type: ignore[union-attr]
    row = credit(world, case.buyer)
    assert (row.points, row.measure, row.stars) == (0, "none", 5)


def test_restoration_needs_the_cure_of_a_curable_rule(case: Case) -> None:
    world = case.world
    penalty = decide(case)
    error = refused(world, sign_restore(world, penalty), PolicyError, "only citing its cure")
    assert error.field == "body.cure"


@pytest.mark.parametrize(
    ("which", "words"),
    [
        ("before", "is not after penalty"),
        ("not_a_return", "is not a return (return.recorded)"),
        ("unapproved", "is not approved by every region"),
        ("other_member", "was not recorded by"),
        ("future", "is not an earlier entry"),
    ],
)
def test_restoration_cure_must_be_a_later_approved_return_of_the_member(
    case: Case, which: str, words: str
) -> None:
    world = case.world
    earlier = _cure(case, "C-0")
    penalty = decide(case)
    if which == "before":
        cure = earlier
    elif which == "not_a_return":
        cure = endorse(world, "31", [_return(world, case.seller, case.buyer, "C-1")])
    elif which == "unapproved":
        cure = _return(world, case.seller, case.buyer, "C-2")
    elif which == "other_member":
        other = world.enroll("32")
        cure = _return(world, case.seller, other, "C-3")
        endorse(world, "31", [cure])
        endorse(world, "32", [cure])
    else:
        cure = world.state.size
    error = refused(world, sign_restore(world, penalty, cure), PolicyError, words)
    assert error.field == "body.cure"


def test_restoration_of_a_rule_without_cure_cites_none(case: Case) -> None:
    world = case.world
    penalty = decide(case, "false_claim", until_days=700)
    world.tick(days=365)
    sub = sign_restore(world, penalty, case.upheld)
    assert refused(world, sub, PolicyError, "cure must be null").field == "body.cure"
    world.submit(sign_restore(world, penalty))


def test_restoration_waits_under_the_policy_of_the_decision(case: Case) -> None:
    world = case.world
    penalty = decide(case, "false_claim", until_days=700)
    policy = dict(world.config.policy)
    policy["rules"] = {
        name: {**rule, "restore_after_days": 0} for name, rule in policy["rules"].items()
    }
    regions = [f"region:{code}" for code in world.state.region_codes()]
    world.submit(world.sign_by("policy.adopted", [OPERATOR, *regions], policy))
    world.tick(days=364)
    sub = sign_restore(world, penalty)
    error = refused(world, sub, PolicyError, "only 365 days after it was logged")
    assert error.field == "body.penalty"
    world.tick(days=1)
    world.submit(sign_restore(world, penalty))


def test_restoration_reason_is_a_policy_code(case: Case) -> None:
    world = case.world
    penalty = decide(case)
    cure = _cure(case)
    sub = sign_restore(world, penalty, cure, reason="paid_up")
    assert refused(world, sub, PolicyError, "restoration reason paid_up").field == "body.reason"


def test_restoration_target_must_be_a_penalty(case: Case) -> None:
    sub = case.world.sign("credit.restored", "region:31", restore_body(case.rejection))
    refused(case.world, sub, PolicyError, f"seq {case.rejection} is not a credit penalty")


def test_restoration_by_the_members_region(case: Case) -> None:
    world = case.world
    penalty = decide(case)
    cure = _cure(case)
    sub = world.sign("credit.restored", "region:31", restore_body(penalty, cure))
    assert refused(world, sub, PolicyError, "only region:32").field == "signer"


def test_restoration_happens_once(case: Case) -> None:
    world = case.world
    penalty = decide(case)
    cure = _cure(case)
    first = world.submit(sign_restore(world, penalty, cure))
    refused(
        world, sign_restore(world, penalty, cure), PolicyError, f"already restored at seq {first}"
    )


def test_expired_penalty_cannot_be_restored(case: Case) -> None:
    world = case.world
    penalty = decide(case, until_days=2)
    cure = _cure(case)
    world.tick(days=2)
    refused(world, sign_restore(world, penalty, cure), PolicyError, "expired")


# --- stars -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "measure", "stars"),
    [
        (0, "none", 5),
        (9, "none", 5),
        (10, "none", 4),
        (29, "none", 4),
        (30, "none", 3),
        (59, "none", 3),
        (60, "none", 2),
        (99, "none", 2),
        (100, "none", 1),
        (0, "warning", 4),
        (30, "warning", 3),
        (0, "suspension", 2),
        (100, "suspension", 1),
        (0, "delisting", 1),
    ],
)
def test_stars_from_points_capped_by_the_measure(points: int, measure: str, stars: int) -> None:
    assert stars_of(STARS, points, measure) == stars


@pytest.mark.parametrize(
    "stars",
    [{"4": 10, "3": 10, "2": 60, "1": 100}, {"4": 10, "3": 30, "2": 60}, {**STARS, "0": 200}],
)
def test_policy_star_thresholds_are_complete_and_rising(stars: dict[str, int]) -> None:
    policy = dict(LedgerWorld().config.policy, stars=stars)
    with pytest.raises(ValidationError):
        PolicyModel.model_validate(policy)


def test_credit_as_of_follows_the_clock(case: Case) -> None:
    world = case.world
    penalty = decide(case, "false_claim", until_days=700)
    start = parse_time(world.state.penalties.get(penalty).issued)  # type: ignore[union-attr]
    state = world.state
    assert credit_as_of(state, case.buyer, start - timedelta(seconds=1)).stars == 5
    now = credit_as_of(state, case.buyer, start)
    assert (now.points, now.measure, now.stars) == (40, "suspension", 2)
    # points leave the window after a year, the suspension stays until `until`
    year = credit_as_of(state, case.buyer, start + timedelta(days=365))
    assert (year.points, year.measure, year.stars) == (0, "suspension", 2)
    later = credit_as_of(state, case.buyer, start + timedelta(days=700))
    assert (later.points, later.measure, later.stars) == (0, "none", 5)


def test_points_accumulate_and_the_most_severe_measure_counts(case: Case) -> None:
    world = case.world
    decide(case, "refused_return", points=10, measure="warning")
    assert (credit(world, case.buyer).points, credit(world, case.buyer).stars) == (10, 4)
    decide(case, "false_claim")
    row = credit(world, case.buyer)
    assert (row.points, row.measure, row.stars) == (50, "suspension", 2)


# --- returns honoured ------------------------------------------------------------------------


def test_approved_return_counts_for_the_seller(case: Case) -> None:
    world = case.world
    first = _return(world, case.seller, case.buyer, "H-1")
    second = _return(world, case.seller, case.buyer, "H-2")
    before = credit(world, case.seller).returns_honoured
    endorse(world, "31", [first, second])
    assert credit(world, case.seller).returns_honoured == before
    world.tick(hours=1)
    endorse(world, "32", [first, second])
    row = credit(world, case.seller)
    assert (row.returns_honoured, row.as_of) == (before + 2, format_utc(world.now))
    assert credit(world, case.buyer).returns_honoured == 0


def test_rejected_and_own_store_returns_do_not_count(case: Case) -> None:
    world = case.world
    before = credit(world, case.seller).returns_honoured
    rejected = _return(world, case.seller, case.buyer, "H-3")
    endorse(world, "32", [rejected], "reject")
    endorse(world, "31", [rejected])
    own = _return(world, case.seller, case.seller, "H-own")
    endorse(world, "31", [own])
    assert world.state.endorsables.get(own).status == "approved"  # type: ignore[union-attr]
    assert credit(world, case.seller).returns_honoured == before


# --- the projection rebuilds -----------------------------------------------------------------


def test_credit_rebuilds_identically(case: Case) -> None:
    world = case.world
    seq = give_notice(case)
    object_to(world, seq)
    move_to(world, objection_end(world, seq))
    penalty = world.submit(sign_penalty(world, seq))
    world.submit(sign_restore(world, penalty, _cure(case)))
    rebuilt = world.replay()
    assert rebuilt.all_tables() == world.state.all_tables()
    for index in ("member_penalties", "rejections", "resolutions", "evidence_notices"):
        assert getattr(rebuilt, index) == getattr(world.state, index), index
