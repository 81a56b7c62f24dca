"""A region's check of a night from its report (reconciliation.check): an honest night
passes, any change to the report or the body is refused, a change the report and body
agree on (a forged night, recomputed consistently) is caught by the region whose member
it wrongs, and a due date that only another policy explains is a concern, not a refusal."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings

from reconciliation.check import check_members, check_night
from reconciliation.netting import Obligation
from reconciliation.report import Report, build_report, closed_body, document
from schemas.errors import VerificationError
from tests.reconciliation.support import (
    CUTOFF_ROOT,
    DAY,
    SETTLEMENT_DAYS,
    nights,
    ob,
    shipped_calendar,
)

CUTOFF_SIZE = 10_001
A, B, C = "M1", "M2", "M3"


def _night(obligations: list[Obligation]) -> Report:
    return build_report(
        DAY,
        CUTOFF_SIZE,
        CUTOFF_ROOT,
        obligations,
        calendar=shipped_calendar(),
        settlement_days=SETTLEMENT_DAYS,
    )


def _check(body: dict[str, Any], report: dict[str, Any], days: int = SETTLEMENT_DAYS) -> list[str]:
    return check_night(body, report, shipped_calendar(), days)


OBLIGATIONS = [ob(1, A, B, 5_000), ob(4, B, C, 2_000), ob(7, C, A, 1_000, "advance")]


@settings(max_examples=40, deadline=None)
@given(nights())
def test_an_honest_night_recomputes_to_its_body(obligations: list[Obligation]) -> None:
    report = _night(obligations)
    assert _check(closed_body(report), document(report)) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda r, b: r["instructions"][0].update(amount_fen=r["instructions"][0]["amount_fen"] - 1),
        lambda r, b: r["instructions"][0].update(reference="X" * 20),
        lambda r, b: r["instructions"].reverse(),
        lambda r, b: r["positions"][0].update(net_fen=r["positions"][0]["net_fen"] + 1),
        lambda r, b: r["positions"].pop(),
        lambda r, b: r["included"].pop(),
        lambda r, b: r["included"].append(CUTOFF_SIZE),
        lambda r, b: r["included"].reverse(),
        lambda r, b: r.update(day="2026-12-02"),
        lambda r, b: r["cutoff"].update(tree_size=CUTOFF_SIZE + 1),
        lambda r, b: r.update(extra=1),
        lambda r, b: b["totals"].update(gross_fen=b["totals"]["gross_fen"] + 1),
        lambda r, b: b["totals"].update(reduction_permille=0),
        lambda r, b: b["positions"].update(root=b["instructions"]["root"]),
        lambda r, b: b["instructions"].update(count=b["instructions"]["count"] + 1),
    ],
)
def test_any_change_to_the_report_or_the_body_is_refused(change: Any) -> None:
    report = _night(OBLIGATIONS)
    served, body = document(report), closed_body(report)
    assert _check(body, served) == []
    change(served, body)
    with pytest.raises(VerificationError):
        _check(body, served)


def test_a_consistent_forgery_is_caught_by_the_wronged_members_region() -> None:
    """The operator moves 1 000 fen from A's credit to B's and recomputes the rest: the
    report agrees with its body, but A's region, netting A's own obligations (each
    proven from its entry), finds A's position is not what they net to."""
    honest = _night(OBLIGATIONS)
    forged = _night([ob(1, A, B, 6_000), ob(4, B, C, 2_000), ob(7, C, A, 1_000, "advance")])
    served = document(forged)
    assert _check(closed_body(forged), served) == []
    with pytest.raises(VerificationError, match=A):
        check_members(served, [A], OBLIGATIONS)
    check_members(served, [C], OBLIGATIONS)  # C's obligations are as logged
    check_members(document(honest), [A, B, C], OBLIGATIONS)


def test_a_due_date_of_another_policy_is_a_concern_not_a_refusal() -> None:
    report = _night(OBLIGATIONS)
    served = document(report)
    [concern] = _check(closed_body(report), served, days=SETTLEMENT_DAYS + 1)
    assert str(served["instructions"][0]["due"]) in concern
    moved = copy.deepcopy(served)
    moved["instructions"][0]["due"] = "2026-12-31"  # one date differs: not a policy's
    with pytest.raises(VerificationError):
        _check(closed_body(report), moved)
