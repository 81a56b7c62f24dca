"""Credit kinds (`credit.penalty`, `credit.restored`) and the credit projection (DESIGN §6).

A member's credit is a pure function of the log, so auditors recompute it:

* **points**: the sum over the member's penalties that are not restored, were logged
  within the trailing ``policy.points_window_days`` (a penalty logged exactly that long
  ago no longer counts) and whose ``until`` lies after the moment;
* **listing**: the most severe listing (serious > abnormal > watch > none) among the
  penalties that are not restored and whose ``until`` lies after the moment. A listing
  outlives the points window on purpose: a serious-violation listing lasts three years;
* **grade**: D if listed serious or points >= grades.D, C if abnormal or >= grades.C,
  B if watch or >= grades.B, else A;
* **returns_honoured**: the number of approved cross-member returns (A != B) in which the
  member was the seller A, i.e. the debtor of the return's obligation, and that no upheld
  dispute voided. It counts the times the member stood by its return commitment when
  another member's store refunded its customer. Same-member returns (A = B) create no
  obligation and the projections keep no seller for them, so they are not counted;
* **overdue_settlements**: kept by reconciliation; carried unchanged here.

The two counts are cumulative facts of the log: they are carried on the stored
``CreditRow`` and moved by the entries that change them (money.py). Points, listing and
grade depend on time and are recomputed from the member's penalties (the
``state.member_penalties`` index) whenever a credit-relevant entry concerning the member is
admitted: a penalty, a restoration, a return it honoured becoming approved, an upheld
dispute voiding such a return. The stored row is therefore "as of" its last such entry
(``as_of`` = that entry's logged time); a live view (public lookup) calls
``credit_as_of(state, member, now)`` so that expired penalties drop out without an entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from ledger.rows import CreditRow, MemberRow, PenaltyRow, Row
from ledger.state import Context, State, days_between, region_principal, register
from schemas.bodies import (
    GradeThresholdsModel,
    PenaltyBody,
    PenaltyRuleModel,
    PolicyModel,
    RestoredBody,
)
from schemas.entry import format_utc, parse_time
from schemas.errors import PolicyError, invariant

NO_LISTING = "none"
# Listings by rising severity; the most severe active one is the member's listing.
LISTING_SEVERITY: dict[str, int] = {NO_LISTING: 0, "watch": 1, "abnormal": 2, "serious": 3}
# The listing that alone forces each grade below A, most severe first.
GRADE_BY_LISTING: tuple[tuple[str, str], ...] = (
    ("D", "serious"),
    ("C", "abnormal"),
    ("B", "watch"),
)
GRADE_A = "A"


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
) -> CreditRow:
    """The credit row of ``member_id`` at ``moment``.

    Handlers are pure and run before their rows are applied, so ``changed`` lists the
    penalty rows the entry under judgement writes (they replace the stored rows of the
    same seq) and ``honoured_delta`` the change it makes to returns_honoured."""
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
) -> CreditRow:
    """The credit of ``member_id`` at ``moment`` from all its ``penalties`` and its
    ``stored`` credit row (which carries the counts): the one computation the writer
    (compute_credit) and the readers (ledger.reads) share."""
    points, listing = standing(penalties, moment, policy.points_window_days)
    honoured = (stored.returns_honoured if stored is not None else 0) + honoured_delta
    overdue = stored.overdue_settlements if stored is not None else 0
    invariant(honoured >= 0, f"returns_honoured of {member_id} would fall below zero")
    grade = grade_of(policy.grades, points, listing)
    return CreditRow(member_id, as_of, points, listing, grade, honoured, overdue)


def standing(
    penalties: Iterable[PenaltyRow], moment: datetime, window_days: int
) -> tuple[int, str]:
    """(points, listing) of ``penalties`` at ``moment``."""
    window_start = moment - timedelta(days=window_days)
    points = 0
    listing = NO_LISTING
    for penalty in penalties:
        issued = parse_time(penalty.issued)
        if penalty.restored_seq is not None or issued > moment:
            continue
        if moment >= parse_time(penalty.until):
            continue
        if issued > window_start:
            points += penalty.points
        if LISTING_SEVERITY[penalty.listing] > LISTING_SEVERITY[listing]:
            listing = penalty.listing
    return points, listing


def grade_of(thresholds: GradeThresholdsModel, points: int, listing: str) -> str:
    """A/B/C/D from the listing and the points (policy thresholds)."""
    by_points = {"D": thresholds.D, "C": thresholds.C, "B": thresholds.B}
    for grade, forcing_listing in GRADE_BY_LISTING:
        if listing == forcing_listing or points >= by_points[grade]:
            return grade
    return GRADE_A


# --- kinds -------------------------------------------------------------------------------


def _member_for_region(state: State, ctx: Context, member_id: str, field: str) -> MemberRow:
    """The enrolled member, if the signer is its region. Any status: a listing follows the
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


def _penalty_rule(state: State, body: PenaltyBody) -> PenaltyRuleModel:
    rule = state.policy.rules.get(body.rule)
    if rule is None:
        raise PolicyError(f"rule {body.rule} is not in the current policy", field="body.rule")
    if body.points != rule.points:
        raise PolicyError(
            f"rule {body.rule} carries {rule.points} points, not {body.points}",
            field="body.points",
        )
    if body.listing != rule.listing:
        raise PolicyError(
            f"rule {body.rule} lists as {rule.listing}, not {body.listing}", field="body.listing"
        )
    return rule


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


def _check_evidence(ctx: Context, evidence: list[int]) -> None:
    if len(set(evidence)) != len(evidence):
        raise PolicyError("an evidence seq is listed twice", field="body.evidence")
    later = [seq for seq in evidence if seq >= ctx.seq]
    if later:
        raise PolicyError(
            f"evidence seq {later[0]} is not an earlier entry of the log (this is seq {ctx.seq})",
            field="body.evidence",
        )


@register("credit.penalty", PenaltyBody)
def credit_penalty(state: State, ctx: Context, body: PenaltyBody) -> list[Row]:
    """A region lists one of its members under a policy rule; points, listing and the
    maximum duration come from the rule, so auditors can recompute the grade."""
    member = _member_for_region(state, ctx, body.member, "body.member")
    rule = _penalty_rule(state, body)
    _check_until(ctx, body, rule)
    _check_evidence(ctx, body.evidence)
    penalty = PenaltyRow(
        ctx.seq,
        member.id,
        body.rule,
        body.points,
        body.listing,
        ctx.logged_text,
        body.until,
        None,
    )
    credit = compute_credit(state, member.id, ctx.logged, ctx.logged_text, changed=[penalty])
    return [penalty, credit]


def restore_after_days(state: State, rule: str) -> int:
    """The 信用修复 waiting time of ``rule`` under the current policy. A rule the alliance
    has since dropped from its policy imposes no waiting time: the penalty stays
    restorable rather than becoming unrestorable forever."""
    current = state.policy.rules.get(rule)
    return current.restore_after_days if current is not None else 0


@register("credit.restored", RestoredBody)
def credit_restored(state: State, ctx: Context, body: RestoredBody) -> list[Row]:
    """信用修复: the member's region lifts an active penalty once the rule's waiting time
    since the penalty was logged has passed. The penalty row stays, marked restored."""
    penalty = state.penalties.get(body.penalty)
    if not isinstance(penalty, PenaltyRow):
        raise PolicyError(f"seq {body.penalty} is not a credit penalty", field="body.penalty")
    _member_for_region(state, ctx, penalty.member, "body.penalty")
    if penalty.restored_seq is not None:
        raise PolicyError(
            f"penalty {penalty.seq} was already restored at seq {penalty.restored_seq}",
            field="body.penalty",
        )
    if ctx.logged >= parse_time(penalty.until):
        raise PolicyError(
            f"penalty {penalty.seq} expired at {penalty.until}: there is nothing to restore",
            field="body.penalty",
        )
    wait = restore_after_days(state, penalty.rule)
    if days_between(parse_time(penalty.issued), ctx.logged) < wait:
        raise PolicyError(
            f"penalty {penalty.seq} under rule {penalty.rule} may be restored only "
            f"{wait} days after it was logged ({penalty.issued})",
            field="body.penalty",
        )
    restored = replace(penalty, restored_seq=ctx.seq)
    credit = compute_credit(state, penalty.member, ctx.logged, ctx.logged_text, changed=[restored])
    return [restored, credit]
