"""A region's check of a night it cannot replay (issue 8 rule 5, over HTTP).

A region's node over HTTP reads the night's report and the entries touching its region,
not every leaf. ``check_night()`` recomputes from the report what needs no other leaf,
with the netting code the writer uses (``reconciliation.netting``, ``.report``):

* the report is the JSON of a report, of the body's day and cutoff, included seqs
  strictly ascending below the cutoff;
* the positions are well formed and sum to zero; the instructions are the greedy match
  of those positions (payers, payees, amounts, due dates, payment references);
* the ``reconciliation.closed`` body built from that recomputed report is the body the
  log holds: totals, counts, amounts, the positions and instructions roots.

The included root is taken from the body: its leaves are whole obligations (parties and
amounts), and a region sees only its own members' (``region_obligations()`` checks
those: each member of the region nets to its position in the report). Raises
``VerificationError`` on any difference; returns the concerns a person must weigh
(instructions that differ only by their due date, which depends on the policy the node
holds).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from itertools import pairwise
from typing import Any

from reconciliation.netting import Obligation, Position, instructions, positions
from reconciliation.report import Overdue, Report, closed_body, document
from schemas.bodies import CalendarModel
from schemas.canonical import canonical
from schemas.errors import AllianceError, VerificationError
from schemas.limits import HASH_SIZE
from signing.keys import b64decode

POSITION_KEYS = frozenset({"member", "net_fen", "receivable_fen", "payable_fen"})
OVERDUE_KEYS = frozenset({"day", "index", "payer", "payee", "amount_fen", "due", "days"})


def check_night(
    body: Mapping[str, Any],
    report: Mapping[str, Any],
    calendar: CalendarModel | None,
    settlement_days: int,
) -> list[str]:
    """Raise ``VerificationError`` unless ``report`` recomputes to ``body`` (module
    docstring); the concerns left for a person (empty: everything checked)."""
    try:
        recomputed = _recompute(body, report, calendar, settlement_days)
    except (AllianceError, KeyError, TypeError, ValueError) as exc:
        detail = exc.detail if isinstance(exc, AllianceError) else repr(exc)
        raise VerificationError(
            f"the report of {body.get('day')!r} is no report: {detail}"
        ) from exc
    recomputed, concerns = _with_served_due(recomputed, report["instructions"])
    expected = closed_body(recomputed)
    if expected != dict(body):
        names = sorted(k for k in expected.keys() | body.keys() if expected.get(k) != body.get(k))
        raise VerificationError(
            f"the report of {body.get('day')} recomputes to another body: {', '.join(names)}"
        )
    if document(recomputed) != dict(report):
        raise VerificationError(f"the report of {recomputed.day} is not its recomputation")
    return concerns


def _with_served_due(recomputed: Report, served: list[Any]) -> tuple[Report, list[str]]:
    """The recomputed report with the served instructions' one due date, if they share
    one that is not this node's (the policy it holds may be older than the night's):
    everything else must then match, and the date is left to a person."""
    dues = {item.get("due") if isinstance(item, Mapping) else None for item in served}
    if len(dues) != 1 or not recomputed.instructions:
        return recomputed, []
    text = str(dues.pop())
    ours = recomputed.instructions[0].due
    if text == ours.isoformat():
        return recomputed, []
    try:
        due = date.fromisoformat(text)
    except ValueError as exc:
        raise VerificationError(f"due date {text!r} is not YYYY-MM-DD") from exc
    moved = tuple(replace(item, due=due) for item in recomputed.instructions)
    concern = (
        f"the instructions of {recomputed.day} are due {text}, not {ours.isoformat()}"
        " (the settlement days under the policy this node holds)"
    )
    return replace(recomputed, instructions=moved), [concern]


def _recompute(
    body: Mapping[str, Any],
    report: Mapping[str, Any],
    calendar: CalendarModel | None,
    settlement_days: int,
) -> Report:
    """The report recomputed from ``report``'s positions (the included root: the body's)."""
    canonical(dict(report))  # JSON a report can be written as, or MalformedError
    if report["day"] != body["day"] or report["cutoff"] != body["cutoff"]:
        raise VerificationError(f"the report is of another night than {body['day']}")
    day = date.fromisoformat(str(report["day"]))
    cutoff_size = report["cutoff"]["tree_size"]
    seqs = report["included"]
    if any(type(s) is not int for s in seqs) or any(a >= b for a, b in pairwise(seqs)):
        raise VerificationError("included seqs are not integers strictly ascending")
    if seqs and (seqs[0] < 0 or seqs[-1] >= cutoff_size):
        raise VerificationError(f"an included seq lies outside the cutoff {cutoff_size}")
    netted = [_position(item) for item in report["positions"]]
    return Report(
        day=day,
        cutoff_size=cutoff_size,
        cutoff_root=b64decode(report["cutoff"]["root"], size=HASH_SIZE, what="cutoff root"),
        included=array("q", seqs),
        included_root=b64decode(body["included"]["root"], size=HASH_SIZE, what="root"),
        positions=tuple(netted),
        instructions=tuple(instructions(netted, day, calendar, settlement_days)),
        overdue=tuple(_overdue(item) for item in report["overdue"]),
    )


def _position(item: Mapping[str, Any]) -> Position:
    if set(item) != POSITION_KEYS:
        raise VerificationError(f"position {item!r} is not {sorted(POSITION_KEYS)}")
    return Position(**item)


def _overdue(item: Mapping[str, Any]) -> Overdue:
    if set(item) != OVERDUE_KEYS:
        raise VerificationError(f"overdue item {item!r} is not {sorted(OVERDUE_KEYS)}")
    dates = {name: date.fromisoformat(str(item[name])) for name in ("day", "due")}
    return Overdue(**{**item, **dates})


def check_members(
    report: Mapping[str, Any], members: Iterable[str], obligations: Iterable[Obligation]
) -> None:
    """Raise ``VerificationError`` unless each of ``members`` (a region's) has in the
    report the position its included ``obligations`` net to (all of them: a region sees
    every obligation of its members, each proven from its source entry by the caller).
    A member with no included obligation has no position."""
    included = set(report["included"])
    mine = {o.seq: o for o in obligations if o.seq in included}
    netted = {p.member: p for p in positions(mine.values())}
    served = {str(item["member"]): item for item in report["positions"]}
    for member in sorted(set(members)):
        want = netted.get(member)
        got = served.get(member)
        if (want is None) != (got is None) or (want is not None and want.item() != got):
            raise VerificationError(
                f"{member}'s position in the report of {report['day']} is {got},"
                f" its included obligations net to {None if want is None else want.item()}"
            )


__all__ = ["check_members", "check_night"]
