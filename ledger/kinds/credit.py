"""Credit kinds (`credit.notice`, `credit.objection`, `credit.penalty`, `credit.restored`)
and the credit projection (DESIGN §6, issue 7 §4).

Due process. The member's region first gives notice (告知): the rule, the points and
measure the rule carries, the evidence (earlier entries that concern the member and
prove the fault, of the kinds the policy maps the rule to) and an objection deadline
(a local date within the policy's bounds). The member may object (陈述申辩) until 24:00
local on that date (moved past days off by the policy calendar). Only after it may the
region decide (`credit.penalty`, with its 文号, unique per region): the decision cites the
notice and the member's objection, and never exceeds the notice's points or measure. It
restores (信用修复) under the terms of the policy in force when it decided (kept on the
DecisionRow), and, for a rule whose cure the log can show, only citing that cure.

Measures and stars. The alliance's own measures are, mildest first, ``warning``
(联盟警示), ``suspension`` (暂停承诺资格) and ``delisting`` (摘牌); they are not the
registration authority's 经营异常名录 / 严重违法失信名单, and the 5..1 star rating is not
SAMR's A/B/C/D risk classes. A member's credit is a pure function of the log:

* **points**: the sum over the member's penalties that are not restored, were logged
  within the trailing ``policy.points_window_days`` (a penalty logged exactly that long
  ago no longer counts) and whose ``until`` lies after the moment;
* **measure**: the most severe measure among the penalties that are not restored and
  whose ``until`` lies after the moment (it outlives the points window on purpose);
* **stars**: 5, less one step for each ``policy.stars`` threshold the points reach
  ({"4": 10, …} means 10 points or more give at most 4 stars), and capped by the measure:
  a warning allows at most 4 stars, a suspension 2, a delisting 1. A measure caps rather
  than subtracts so that the rating never says more than the measure the alliance
  published, while points still lower a member under a mild measure;
* **returns_honoured** / **overdue_settlements**: cumulative counts moved by money.py and
  reconciliation, carried unchanged here.

The stored CreditRow is "as of" its last credit-relevant entry; a live view calls
``credit_as_of(state, member, now)`` so that expired penalties drop out without an entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import get_args

from ledger.calendar import local_date, period_end
from ledger.rows import (
    CreditRow,
    DecisionRow,
    MemberRow,
    NoticeEvidenceRow,
    NoticeRow,
    ObligationRow,
    PenaltyRow,
    Row,
)
from ledger.state import Context, State, days_between, region_principal, register
from schemas.bodies import (
    MEASURES,
    STAR_STEPS,
    CureKind,
    EvidenceKind,
    NoticeBody,
    ObjectionBody,
    PenaltyBody,
    PenaltyRuleModel,
    PolicyModel,
    RestoredBody,
)
from schemas.entry import format_utc, parse_time
from schemas.errors import PolicyError, invariant

NO_MEASURE = "none"
# Measures by rising severity; the most severe active one is the member's measure.
MEASURE_SEVERITY: dict[str, int] = {NO_MEASURE: 0} | {
    measure: rank for rank, measure in enumerate(MEASURES, start=1)
}
BEST_STARS = 5
# The most stars a member under each measure can have (see the module's docstring).
STARS_CAP: dict[str, int] = {NO_MEASURE: 5, "warning": 4, "suspension": 2, "delisting": 1}
invariant(set(STARS_CAP) == set(MEASURE_SEVERITY), "every measure needs a star cap")


# --- the credit projection ---------------------------------------------------------------


def credit_as_of(state: State, member_id: str, moment: datetime) -> CreditRow:
    """The member's credit at ``moment``, from ``state`` (which must be the state at that
    moment or later: the counts are those of ``state``)."""
    return compute_credit(state, member_id, moment, format_utc(moment))


def compute_credit(
    state: State,
    member_id: str,
    moment: datetime,
    as_of: str,
    *,
    changed: Iterable[PenaltyRow] = (),
    honoured_delta: int = 0,
    overdue_delta: int = 0,
) -> CreditRow:
    """The credit row of ``member_id`` at ``moment``.

    Handlers are pure and run before their rows are applied, so ``changed`` lists the
    penalty rows the entry under judgement writes (they replace the stored rows of the
    same seq), ``honoured_delta`` the change it makes to returns_honoured and
    ``overdue_delta`` to overdue_settlements."""
    penalties: dict[int, PenaltyRow] = {}
    for seq in state.member_penalties.get(member_id, []):
        stored = state.penalties.get(seq)
        invariant(stored is not None, f"penalty index names missing seq {seq}")
        assert stored is not None
        penalties[seq] = stored
    for row in changed:
        if row.member == member_id:
            penalties[row.seq] = row
    return credit_row(
        member_id,
        penalties.values(),
        state.credit.get(member_id),
        state.policy,
        moment,
        as_of,
        honoured_delta=honoured_delta,
        overdue_delta=overdue_delta,
    )


def credit_row(
    member_id: str,
    penalties: Iterable[PenaltyRow],
    stored: CreditRow | None,
    policy: PolicyModel,
    moment: datetime,
    as_of: str,
    *,
    honoured_delta: int = 0,
    overdue_delta: int = 0,
) -> CreditRow:
    """The credit of ``member_id`` at ``moment`` from all its ``penalties`` and its
    ``stored`` credit row (which carries the counts): the one computation the writer
    (compute_credit) and the readers (ledger.reads) share."""
    points, measure = standing(penalties, moment, policy.points_window_days)
    honoured = (stored.returns_honoured if stored is not None else 0) + honoured_delta
    overdue = (stored.overdue_settlements if stored is not None else 0) + overdue_delta
    invariant(honoured >= 0, f"returns_honoured of {member_id} would fall below zero")
    stars = stars_of(policy.stars, points, measure)
    return CreditRow(member_id, as_of, points, measure, stars, honoured, overdue)


def standing(
    penalties: Iterable[PenaltyRow], moment: datetime, window_days: int
) -> tuple[int, str]:
    """(points, measure) of ``penalties`` at ``moment``."""
    window_start = moment - timedelta(days=window_days)
    points = 0
    measure = NO_MEASURE
    for penalty in penalties:
        issued = parse_time(penalty.issued)
        if penalty.restored_seq is not None or issued > moment:
            continue
        if moment >= parse_time(penalty.until):
            continue
        if issued > window_start:
            points += penalty.points
        if MEASURE_SEVERITY[penalty.measure] > MEASURE_SEVERITY[measure]:
            measure = penalty.measure
    return points, measure


def stars_of(thresholds: Mapping[str, int], points: int, measure: str) -> int:
    """5..1 stars: one step down for each threshold the points reach, capped by the
    measure."""
    stars = BEST_STARS
    for step in STAR_STEPS:
        if points >= thresholds[step]:
            stars = int(step)
    return min(stars, STARS_CAP[measure])


# --- evidence and cures --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proof:
    """What one cited entry shows for a member: ``of_kind`` whether the seq is an entry of
    the kind tried at all; ``refusal`` why it does not count (None: it does)."""

    of_kind: bool
    refusal: str | None = None


NOT_OF_KIND = Proof(False)
PROVEN = Proof(True)
# (state, seq of the cited entry, member) -> what the entry shows for that member.
EntryProof = Callable[[State, int, str], Proof]


def _claim_parties(state: State, seq: int) -> tuple[str, str] | None:
    """(who recorded the claim, who owes it) of a return or advance at ``seq``: the
    accepting merchant and the seller, or the payer and the liable merchant. A same-member
    return has no obligation: its seller recorded it."""
    obligation = state.obligations.get(seq)
    if isinstance(obligation, ObligationRow) and obligation.kind != "reversal":
        return obligation.creditor, obligation.debtor
    returned = state.receipt_returns.get(seq)
    return (returned.merchant, returned.merchant) if returned is not None else None


def rejection_proves(state: State, seq: int, member: str) -> Proof:
    """A rejecting endorsement proves a refused claim against the member that recorded
    it (the accepting merchant of a return, the payer of an advance)."""
    targets = state.rejections.get(seq)
    if targets is None:
        return NOT_OF_KIND
    parties = {target: _claim_parties(state, target) for target in sorted(targets)}
    if not any(pair is not None and member in pair for pair in parties.values()):
        return Proof(True, f"endorsement {seq} rejects nothing {member} recorded or owes")
    if not any(pair is not None and pair[0] == member for pair in parties.values()):
        return Proof(True, f"endorsement {seq} rejects no claim that {member} recorded")
    return PROVEN


def upheld_dispute_proves(state: State, seq: int, member: str) -> Proof:
    """An upheld (or partly upheld) dispute proves a false claim by the claim's creditor."""
    dispute_seq = state.resolutions.get(seq)
    dispute = state.disputes.get(dispute_seq) if dispute_seq is not None else None
    if dispute is None:
        return NOT_OF_KIND
    claim = state.obligations.get(dispute.target)
    invariant(claim is not None, f"dispute {dispute.seq} targets no obligation")
    assert claim is not None
    if member not in (claim.debtor, claim.creditor):
        return Proof(True, f"resolution {seq} decided a claim between other members")
    if member != claim.creditor:
        return Proof(True, f"in resolution {seq} {member} was the debtor, not the claimant")
    if dispute.status not in ("upheld", "partly"):
        return Proof(True, f"resolution {seq} {dispute.status} the dispute: no false claim")
    return PROVEN


def advance_proves(state: State, seq: int, member: str) -> Proof:
    """An advance every region approved and no dispute voided proves that the liable
    merchant left its customer to be paid by a fund or platform."""
    obligation = state.obligations.get(seq)
    endorsable = state.endorsables.get(seq)
    if obligation is None or obligation.kind != "advance" or endorsable is None:
        return NOT_OF_KIND
    if member not in (obligation.debtor, obligation.creditor):
        return Proof(True, f"advance {seq} is between other members")
    if member != obligation.debtor:
        return Proof(True, f"{member} paid advance {seq}; it is not liable for it")
    if endorsable.status != "approved" or obligation.status == "void":
        return Proof(True, f"advance {seq} is {obligation.status}, not a standing claim")
    return PROVEN


def reconciliation_proves_overdue(state: State, seq: int, member: str) -> Proof:
    """A night every region approved whose report lists the member as the payer of an
    overdue instruction (issue 8 rule 7). Approved, because only then did every region
    recompute that list from the log and sign it; a void night's list proves nothing."""
    night = state.nights.get(seq)
    if night is None:
        return NOT_OF_KIND
    listed = state.overdue_listed.get((seq, member))
    if not listed:
        return Proof(True, f"the night of {night.day} lists no overdue instruction of {member}")
    if night.status != "approved":
        return Proof(
            True, f"the night of {night.day} is {night.status}, not approved by every region"
        )
    if all(_paid_in_full(state, key) for key in listed):
        # Rule 6: the payer recorded its payment; a payee who does not confirm it is
        # escalated to the payee's region, and the payer is not penalised.
        return Proof(
            True,
            f"{member} has recorded payment of what the night of {night.day} lists overdue; "
            "the payee's confirmation is escalated to its region",
        )
    return PROVEN


def _paid_in_full(state: State, key: tuple[int, int]) -> bool:
    instruction = state.instructions.get(*key)
    return instruction is not None and instruction.paid_fen >= instruction.amount_fen


def settlement_cures(state: State, seq: int, member: str) -> Proof:
    """The payee's confirmation that discharged an instruction the member owed: the last
    confirmation of it, bringing the confirmed amount to the instruction's (a part paid
    cures nothing; rule 7 wants the instruction discharged)."""
    settlement = state.settlements.get(seq)
    if settlement is None or settlement.kind != "confirmed":
        return NOT_OF_KIND
    instruction = state.instructions.get(settlement.night, settlement.index)
    invariant(instruction is not None, f"confirmation {seq} names a missing instruction")
    assert instruction is not None
    named = f"instruction {settlement.index} of night {settlement.night}"
    if instruction.payer != member:
        return Proof(True, f"confirmation {seq} is of {named}, which {member} does not pay")
    if instruction.confirmed_fen < instruction.amount_fen:
        return Proof(
            True,
            f"{named} is not discharged: {instruction.confirmed_fen} of "
            f"{instruction.amount_fen} fen confirmed",
        )
    last = state.last_confirmation.get((settlement.night, settlement.index))
    if last != seq:
        return Proof(
            True, f"confirmation {seq} confirmed a part of {named}; seq {last} discharged it"
        )
    return PROVEN


def approved_return_cures(state: State, seq: int, member: str) -> Proof:
    """A return the member recorded that every region approved shows it records genuine
    returns again (the cure of ``refused_return``; the caller checks it is later than the
    penalty)."""
    returned = state.receipt_returns.get(seq)
    endorsable = state.endorsables.get(seq)
    if returned is None or endorsable is None:
        return NOT_OF_KIND
    parties = _claim_parties(state, seq)
    if parties is None or parties[0] != member:
        return Proof(True, f"return {seq} was not recorded by {member}")
    if endorsable.status != "approved" or returned.status != "live":
        return Proof(True, f"return {seq} is not approved by every region")
    return PROVEN


# Each kind a policy may name (schemas.bodies.EvidenceKind / CureKind), with what it shows.
EVIDENCE_PROOFS: dict[str, tuple[str, EntryProof]] = {
    "endorsement": ("a rejecting endorsement", rejection_proves),
    "dispute.resolved": ("a dispute resolution", upheld_dispute_proves),
    "advance.paid": ("an advance", advance_proves),
    "reconciliation.closed": ("a closed reconciliation", reconciliation_proves_overdue),
}
CURE_PROOFS: dict[str, tuple[str, EntryProof]] = {
    "return.recorded": ("a return", approved_return_cures),
    "settlement.confirmed": ("a settlement confirmation", settlement_cures),
}


# --- shared checks -------------------------------------------------------------------------


def _member_for_region(state: State, ctx: Context, member_id: str, field: str) -> MemberRow:
    """The enrolled member, if the signer is its region. Any status: a measure follows the
    legal entity, so a suspended or withdrawn member can still be penalised or restored."""
    member = state.member(member_id)
    if member is None:
        raise PolicyError(f"{member_id} is not an enrolled member", field=field)
    if ctx.signer != region_principal(member.region):
        raise PolicyError(
            f"only region:{member.region} may act on the credit of member {member_id}",
            field="signer",
        )
    return member


def _rule(state: State, name: str) -> PenaltyRuleModel:
    rule = state.policy.rules.get(name)
    if rule is None:
        raise PolicyError(f"rule {name} is not in the current policy", field="body.rule")
    return rule


def _check_reason(codes: list[str], reason: str, purpose: str) -> None:
    """A reason is a code of the policy's list for its purpose, never free text."""
    if reason not in codes:
        raise PolicyError(
            f"{purpose} reason {reason} is not one of {', '.join(codes)}", field="body.reason"
        )


def _earlier(ctx: Context, seq: int, what: str, field: str) -> None:
    if seq >= ctx.seq:
        raise PolicyError(
            f"{what} seq {seq} is not an earlier entry of the log (this is seq {ctx.seq})",
            field=field,
        )


def _prove(
    state: State,
    seq: int,
    member: str,
    proofs: dict[str, tuple[str, EntryProof]],
    kinds: Sequence[str],
) -> Proof:
    """What ``seq`` shows for ``member`` as the first of ``kinds`` it is an entry of."""
    for kind in kinds:
        invariant(kind in proofs, f"no proof for kind {kind}")
        proof = proofs[kind][1](state, seq, member)
        if proof.of_kind:
            return proof
    return NOT_OF_KIND


def _kinds_text(proofs: dict[str, tuple[str, EntryProof]], kinds: Sequence[str]) -> str:
    return " or ".join(f"{proofs[kind][0]} ({kind})" for kind in kinds)


# --- credit.notice -----------------------------------------------------------------------


def _check_proposal(body: NoticeBody, rule: PenaltyRuleModel) -> None:
    """A notice proposes what its rule carries, so the member knows the worst outcome."""
    if body.points != rule.points:
        raise PolicyError(
            f"rule {body.rule} carries {rule.points} points, not {body.points}",
            field="body.points",
        )
    if body.measure != rule.measure:
        raise PolicyError(
            f"rule {body.rule} carries the measure {rule.measure}, not {body.measure}",
            field="body.measure",
        )


def _check_evidence(state: State, ctx: Context, body: NoticeBody, rule: PenaltyRuleModel) -> None:
    """Each evidence seq is an earlier entry, of a kind the policy maps the rule to, that
    concerns the member and proves the fault, and supports no other notice of the rule
    (one fact, one penalty)."""
    if len(set(body.evidence)) != len(body.evidence):
        raise PolicyError("an evidence seq is listed twice", field="body.evidence")
    kinds = list(rule.evidence_kinds)
    for index, seq in enumerate(body.evidence):
        where = f"body.evidence.{index}"
        _earlier(ctx, seq, "evidence", where)
        proof = _prove(state, seq, body.member, EVIDENCE_PROOFS, kinds)
        if not proof.of_kind:
            raise PolicyError(
                f"evidence seq {seq} is not {_kinds_text(EVIDENCE_PROOFS, kinds)}, "
                f"which rule {body.rule} needs",
                field=where,
            )
        if proof.refusal is not None:
            raise PolicyError(f"evidence seq {seq}: {proof.refusal}", field=where)
        for notice_seq in sorted(state.evidence_notices.get(seq, ())):
            notice = state.credit_notices.get(notice_seq)
            if notice is not None and notice.rule == body.rule and notice.member == body.member:
                raise PolicyError(
                    f"evidence seq {seq} already supports notice {notice_seq} under rule "
                    f"{body.rule}",
                    field=where,
                )
        _check_instructions_unnoticed(state, body, seq, where)


def _check_instructions_unnoticed(state: State, body: NoticeBody, seq: int, where: str) -> None:
    """For a night, the fact is the unpaid instruction, not the night that lists it: every
    later night lists it again, and one unpaid instruction is one penalty."""
    listed = state.overdue_listed.get((seq, body.member))
    if not listed:
        return
    for notice in state.credit_notices.rows():
        if notice.rule != body.rule or notice.member != body.member:
            continue
        for row in state.notice_evidence.rows():
            if row.notice != notice.seq:
                continue
            shared = listed & state.overdue_listed.get((row.evidence, body.member), set())
            if shared:
                night, index = min(shared)
                raise PolicyError(
                    f"instruction {index} of night {night} is already the fact of notice "
                    f"{notice.seq} under rule {body.rule}",
                    field=where,
                )


def _objection_until(state: State, ctx: Context, deadline_text: str) -> datetime:
    """The end of the objection period: 24:00 local on the deadline, which lies within
    the policy's bounds after the notice's local date (moved past days off, art. 203)."""
    policy = state.policy
    deadline = date.fromisoformat(deadline_text)
    issued_on = local_date(ctx.logged)
    earliest = issued_on + timedelta(days=policy.objection_days_min)
    latest = issued_on + timedelta(days=policy.objection_days_max)
    if not earliest <= deadline <= latest:
        raise PolicyError(
            f"the objection deadline {deadline_text} must lie between {earliest.isoformat()} "
            f"and {latest.isoformat()} ({policy.objection_days_min} to "
            f"{policy.objection_days_max} days after the notice)",
            field="body.deadline",
        )
    return period_end(deadline, 0, policy.calendar)


@register("credit.notice", NoticeBody)
def credit_notice(state: State, ctx: Context, body: NoticeBody) -> list[Row]:
    """告知: the member's region states the rule, what it carries, the evidence and until
    when the member may object. Nothing changes the member's credit yet."""
    member = _member_for_region(state, ctx, body.member, "body.member")
    rule = _rule(state, body.rule)
    _check_proposal(body, rule)
    until = _objection_until(state, ctx, body.deadline)
    _check_evidence(state, ctx, body, rule)
    notice = NoticeRow(
        ctx.seq,
        member.id,
        member.region,
        body.rule,
        body.points,
        body.measure,
        ctx.logged_text,
        body.deadline,
        format_utc(until),
        None,
        None,
    )
    return [notice, *(NoticeEvidenceRow(ctx.seq, seq) for seq in body.evidence)]


# --- credit.objection --------------------------------------------------------------------


def _notice(state: State, seq: int, field: str) -> NoticeRow:
    notice = state.credit_notices.get(seq)
    if notice is None:
        raise PolicyError(f"seq {seq} is not a credit notice", field=field)
    return notice


@register("credit.objection", ObjectionBody, signer_statuses=frozenset({"active", "suspended"}))
def credit_objection(state: State, ctx: Context, body: ObjectionBody) -> list[Row]:
    """陈述申辩: the member named in a notice (active or suspended: a suspension takes no
    right of defence) answers it once, before the deadline ends."""
    notice = _notice(state, body.notice, "body.notice")
    if ctx.signer != notice.member:
        raise PolicyError(f"only {notice.member} may object to notice {notice.seq}", field="signer")
    if notice.objection_seq is not None:
        raise PolicyError(
            f"{notice.member} already objected to notice {notice.seq} at seq "
            f"{notice.objection_seq}",
            field="body.notice",
        )
    if ctx.logged >= parse_time(notice.objection_until):
        raise PolicyError(
            f"the objection period of notice {notice.seq} ended at {notice.objection_until}",
            field="body.notice",
        )
    _check_reason(state.policy.reasons.objection, body.reason, "objection")
    return [notice._replace(objection_seq=ctx.seq)]


# --- credit.penalty ----------------------------------------------------------------------


def _decidable(state: State, ctx: Context, body: PenaltyBody) -> NoticeRow:
    """The notice, by the region that gave it, undecided, its objection period over, and
    the objection it drew cited (or none, if it drew none)."""
    notice = _notice(state, body.notice, "body.notice")
    if ctx.signer != region_principal(notice.region):
        raise PolicyError(
            f"only region:{notice.region}, which gave notice {notice.seq}, may decide it",
            field="signer",
        )
    if notice.decision_seq is not None:
        raise PolicyError(
            f"notice {notice.seq} was already decided at seq {notice.decision_seq}",
            field="body.notice",
        )
    if ctx.logged < parse_time(notice.objection_until):
        raise PolicyError(
            f"notice {notice.seq} may be decided only after its objection period ends at "
            f"{notice.objection_until}",
            field="body.notice",
        )
    if body.objection != notice.objection_seq:
        drew = (
            "no objection"
            if notice.objection_seq is None
            else f"the objection at seq {notice.objection_seq}"
        )
        raise PolicyError(
            f"notice {notice.seq} drew {drew}: the decision must cite exactly that",
            field="body.objection",
        )
    return notice


def _check_decision(body: PenaltyBody, notice: NoticeRow) -> None:
    """The decision is on the notice's member and rule, and never heavier than noticed."""
    if body.member != notice.member:
        raise PolicyError(
            f"notice {notice.seq} concerns {notice.member}, not {body.member}",
            field="body.member",
        )
    if body.rule != notice.rule:
        raise PolicyError(
            f"notice {notice.seq} is under rule {notice.rule}, not {body.rule}",
            field="body.rule",
        )
    if body.points > notice.points:
        raise PolicyError(
            f"notice {notice.seq} proposed {notice.points} points: {body.points} exceeds it",
            field="body.points",
        )
    if MEASURE_SEVERITY[body.measure] > MEASURE_SEVERITY[notice.measure]:
        raise PolicyError(
            f"notice {notice.seq} proposed the measure {notice.measure}: {body.measure} is "
            "more severe",
            field="body.measure",
        )


def _check_until(ctx: Context, body: PenaltyBody, rule: PenaltyRuleModel) -> None:
    until = parse_time(body.until, field="body.until")
    if until <= ctx.time:
        raise PolicyError(
            f"penalty until {body.until} is not after the entry time {ctx.entry['time']}",
            field="body.until",
        )
    if until > ctx.time + timedelta(days=rule.days):
        raise PolicyError(
            f"rule {body.rule} lasts at most {rule.days} days: until {body.until} is later",
            field="body.until",
        )


@register("credit.penalty", PenaltyBody)
def credit_penalty(state: State, ctx: Context, body: PenaltyBody) -> list[Row]:
    """The decision on a notice, with its 文号 (unique per region). The restoration terms
    of the rule as the current policy states them are kept on the DecisionRow."""
    notice = _decidable(state, ctx, body)
    _check_decision(body, notice)
    rule = _rule(state, body.rule)
    _check_until(ctx, body, rule)
    used = state.credit_decisions.get(notice.region, body.decision_no)
    if used is not None:
        raise PolicyError(
            f"region:{notice.region} already used decision number {body.decision_no} "
            f"(seq {used.penalty})",
            field="body.decision_no",
        )
    penalty = PenaltyRow(
        ctx.seq,
        notice.member,
        notice.region,
        notice.seq,
        body.decision_no,
        body.rule,
        body.points,
        body.measure,
        ctx.logged_text,
        body.until,
        None,
    )
    decision = DecisionRow(
        notice.region, body.decision_no, ctx.seq, rule.restore_after_days, rule.cure
    )
    credit = compute_credit(state, notice.member, ctx.logged, ctx.logged_text, changed=[penalty])
    return [penalty, decision, notice._replace(decision_seq=ctx.seq), credit]


# --- credit.restored ---------------------------------------------------------------------


def _restorable(state: State, ctx: Context, seq: int) -> tuple[PenaltyRow, DecisionRow]:
    penalty = state.penalties.get(seq)
    if not isinstance(penalty, PenaltyRow):
        raise PolicyError(f"seq {seq} is not a credit penalty", field="body.penalty")
    _member_for_region(state, ctx, penalty.member, "body.penalty")
    decision = state.credit_decisions.get(penalty.region, penalty.decision_no)
    invariant(decision is not None, f"penalty {seq} has no decision row")
    assert decision is not None
    if penalty.restored_seq is not None:
        raise PolicyError(
            f"penalty {seq} was already restored at seq {penalty.restored_seq}",
            field="body.penalty",
        )
    if ctx.logged >= parse_time(penalty.until):
        raise PolicyError(
            f"penalty {seq} expired at {penalty.until}: there is nothing to restore",
            field="body.penalty",
        )
    wait = decision.restore_after_days
    if days_between(parse_time(penalty.issued), ctx.logged) < wait:
        raise PolicyError(
            f"penalty {seq} under rule {penalty.rule} may be restored only "
            f"{wait} days after it was logged ({penalty.issued})",
            field="body.penalty",
        )
    return penalty, decision


def _check_cure(
    state: State, ctx: Context, body: RestoredBody, penalty: PenaltyRow, decision: DecisionRow
) -> None:
    """A rule whose cure the log can show is restored only citing that cure, logged after
    the penalty; a rule without one cites none."""
    if decision.cure is None:
        if body.cure is not None:
            raise PolicyError(
                f"rule {penalty.rule} had no cure the log can show when penalty "
                f"{penalty.seq} was decided: cure must be null",
                field="body.cure",
            )
        return
    kinds = [decision.cure]
    if body.cure is None:
        raise PolicyError(
            f"penalty {penalty.seq} under rule {penalty.rule} is restored only citing its "
            f"cure, {_kinds_text(CURE_PROOFS, kinds)}",
            field="body.cure",
        )
    _earlier(ctx, body.cure, "cure", "body.cure")
    if body.cure <= penalty.seq:
        raise PolicyError(
            f"cure seq {body.cure} is not after penalty {penalty.seq}", field="body.cure"
        )
    proof = _prove(state, body.cure, penalty.member, CURE_PROOFS, kinds)
    if not proof.of_kind:
        raise PolicyError(
            f"cure seq {body.cure} is not {_kinds_text(CURE_PROOFS, kinds)}", field="body.cure"
        )
    if proof.refusal is not None:
        raise PolicyError(f"cure seq {body.cure}: {proof.refusal}", field="body.cure")
    if decision.cure == "settlement.confirmed":
        _check_overdue_discharged(state, body.cure, penalty)


def _overdue_cited(state: State, penalty: PenaltyRow) -> set[tuple[int, int]]:
    """The instructions that the nights the penalty's notice cited list overdue for its
    member. A scan of the notice evidence: restorations are rare and the table holds one
    row per cited fact."""
    cited = [row.evidence for row in state.notice_evidence.rows() if row.notice == penalty.notice]
    listed: set[tuple[int, int]] = set()
    for evidence in cited:
        listed |= state.overdue_listed.get((evidence, penalty.member), set())
    return listed


def _check_overdue_discharged(state: State, cure: int, penalty: PenaltyRow) -> None:
    """Issue 8 rule 7: a penalty for an overdue settlement is lifted only once the
    instructions its evidence lists overdue are discharged, and the cure is one of them
    (paying another debt cures nothing)."""
    listed = _overdue_cited(state, penalty)
    if not listed:
        return  # the evidence was no night (a policy mapping the rule to other kinds)
    settlement = state.settlements.get(cure)
    invariant(settlement is not None, f"cure {cure} was proved but is no settlement")
    assert settlement is not None
    if (settlement.night, settlement.index) not in listed:
        raise PolicyError(
            f"cure seq {cure} discharged instruction {settlement.index} of night "
            f"{settlement.night}, which the evidence of notice {penalty.notice} does not "
            "list overdue",
            field="body.cure",
        )
    for night, index in sorted(listed):
        instruction = state.instructions.get(night, index)
        invariant(instruction is not None, "overdue listing names a missing instruction")
        assert instruction is not None
        if instruction.confirmed_fen < instruction.amount_fen:
            raise PolicyError(
                f"instruction {index} of night {night}, listed overdue in the evidence of "
                f"notice {penalty.notice}, is not discharged yet",
                field="body.cure",
            )


@register("credit.restored", RestoredBody)
def credit_restored(state: State, ctx: Context, body: RestoredBody) -> list[Row]:
    """信用修复: the member's region lifts an active penalty once the waiting time of the
    policy in force at the decision has passed and, for a rule with a cure the log can
    show, once that cure is logged. The penalty row stays, marked restored."""
    penalty, decision = _restorable(state, ctx, body.penalty)
    _check_cure(state, ctx, body, penalty, decision)
    _check_reason(state.policy.reasons.restoration, body.reason, "restoration")
    restored = penalty._replace(restored_seq=ctx.seq)
    credit = compute_credit(state, penalty.member, ctx.logged, ctx.logged_text, changed=[restored])
    return [restored, credit]


invariant(
    set(EVIDENCE_PROOFS) == set(get_args(EvidenceKind))
    and set(CURE_PROOFS) == set(get_args(CureKind)),
    "every evidence and cure kind of schemas.bodies needs its proof",
)
