"""The nightly job (issue 8): close each business day that is due, oldest first.

``close_due`` is the named periodic job: one bounded batch of at most
``NIGHTS_PER_RUN_MAX`` days per run, each closed by ``close_day``. Closing D builds the
night from the writer's verified state exactly as ``reconciliation.closed`` will judge it
(ledger.kinds.settlement.night_report), signs it as the operator and submits it; the
writer recomputes it and refuses any difference.

Exactly once. A day is closed once in the log (the kind refuses a second closing), so:
running the job again for D appends nothing and returns the stored night; two schedulers
racing on PostgreSQL both submit, the log's lock orders them, the second is refused and
answered with the first's night; a job killed after its entry committed finds it on the
next run. When the state moved between building and admitting (a dispute filed in
between), the writer refuses the stale night and the job builds it again, at most
``CLOSE_ATTEMPTS_MAX`` times.

Readers trust a stored report only after checking it against the entry's roots
(``verified_night``): the report table is one anyone with an INSERT grant could write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ledger.app import Ledger, stored_night
from ledger.calendar import LOCAL, local_date
from ledger.kinds.settlement import check_report, cutoff_size, night_report
from ledger.state import OPERATOR, State
from reconciliation.netting import Obligation
from reconciliation.report import closed_body
from schemas.entry import parse_time
from schemas.errors import (
    ConfigError,
    NotFoundError,
    PolicyError,
    invariant,
)
from schemas.limits import CLOSE_ATTEMPTS_MAX, NIGHTS_PER_RUN_MAX
from signing.entry import submitted

CLOSED_KIND = "reconciliation.closed"


@dataclass(frozen=True)
class Night:
    """A closed business day: its entry's seq and body, and its report's JCS bytes."""

    day: date
    seq: int
    body: dict[str, Any]
    report: bytes
    appended: bool  # closed by this call (False: it was closed already)

    def summary(self) -> dict[str, Any]:
        totals = self.body["totals"]
        return {"day": self.day.isoformat(), "seq": self.seq, "appended": self.appended, **totals}


# --- which days ------------------------------------------------------------------------


def first_open_day(state: State) -> date | None:
    """The oldest business day not closed yet (None before the log has any entry)."""
    if state.night_of_day:
        return date.fromisoformat(max(state.night_of_day)) + timedelta(days=1)
    ends = state.day_ends.rows()
    if ends:
        return min(date.fromisoformat(row.day) for row in ends)
    if state.last_logged is None:
        return None
    return local_date(parse_time(state.last_logged))


def due_days(state: State, now: datetime, limit: int = NIGHTS_PER_RUN_MAX) -> list[date]:
    """The business days whose cutoff has passed at ``now`` and that are not closed yet,
    oldest first, at most ``limit`` (the rest wait for the next run)."""
    first = first_open_day(state)
    today = local_date(now)
    if first is None or first >= today:
        return []
    count = min((today - first).days, limit)
    return [first + timedelta(days=offset) for offset in range(count)]


# --- closing ------------------------------------------------------------------------------


def _new_id() -> str:
    return str(uuid.uuid4())


def _signed_night(
    ledger: Ledger, body: dict[str, Any], now: datetime, new_id: Callable[[], str]
) -> dict[str, Any]:
    if ledger.operator is None:
        raise ConfigError("closing a night needs the operator key (--keys)")
    entry = {
        "v": 1,
        "kind": CLOSED_KIND,
        "id": new_id(),
        "time": now.astimezone(LOCAL).isoformat(timespec="seconds"),
        "signer": OPERATOR,
        "body": body,
    }
    return submitted(entry, ledger.operator)


def close_day(ledger: Ledger, day: date, *, new_id: Callable[[], str] = _new_id) -> Night:
    """Close business ``day``, or return its night if the log has it already. ``new_id``
    gives the entry's id (a random UUID; the demo passes its seeded ids, so that one seed
    gives one log)."""
    for attempt in range(CLOSE_ATTEMPTS_MAX):
        state = ledger.state()
        if day.isoformat() in state.night_of_day:
            return verified_night(ledger, day)
        now = ledger.clock()
        cutoff = cutoff_size(state, day, state.size, now)
        report = night_report(state, day, cutoff, ledger.root_at(cutoff))
        body = closed_body(report)
        try:
            appended = ledger.submit(_signed_night(ledger, body, now, new_id))
        except PolicyError:
            if attempt + 1 == CLOSE_ATTEMPTS_MAX:
                raise
            continue  # closed meanwhile, or the state moved: look again
        night = verified_night(ledger, day)
        invariant(night.seq == appended.seq, f"the night of {day} is not the entry appended")
        return Night(night.day, night.seq, night.body, night.report, appended=True)
    raise PolicyError(f"business day {day} could not be closed")  # not reached


def close_due(
    ledger: Ledger, limit: int = NIGHTS_PER_RUN_MAX, *, new_id: Callable[[], str] = _new_id
) -> list[Night]:
    """The job: close every due day, oldest first, at most ``limit`` of them."""
    days = due_days(ledger.state(), ledger.clock(), limit)
    return [close_day(ledger, day, new_id=new_id) for day in days]


# --- reading a night back ---------------------------------------------------------------


def verified_night(ledger: Ledger, day: date) -> Night:
    """The stored night of ``day``, its report checked against the entry's three roots."""
    with ledger.engine.connect() as connection:
        night = stored_night(connection, day.isoformat())
    if night is None:
        raise NotFoundError(f"business day {day} has no closed night")
    seq, report, body = night
    state = ledger.state()
    check_report(report, body, lambda seq: _obligation(state, seq))
    return Night(day, seq, body, report, appended=False)


def _obligation(state: State, seq: int) -> Obligation | None:
    row = state.obligations.get(seq)
    if row is None:
        return None
    return Obligation(row.seq, row.kind, row.debtor, row.creditor, row.amount_fen)
