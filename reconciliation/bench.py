"""`alliance bench reconcile`: one night's netting, report and roots against the raw loop.

The night: ``obligations`` synthetic obligations among ``members`` numbered USCCs of the
four regions, drawn from a seeded generator (reproducible: the same arguments give the
same night, the same instructions and the same roots), built as the rows a store would
return, ``(seq, kind, debtor, creditor, amount_fen)`` tuples in seq order.

Timed, ours: every row made an ``Obligation`` (checked), ``build_report`` (positions,
greedy instructions with due dates and references), ``closed_body`` (the three roots
over JCS items) and ``report_bytes``: all the pure work of closing a night.

Timed, raw: the fastest straightforward code for the same netting in the same run: one
dict sum of net positions over the rows and the heapq greedy match, with no checks,
references, canonical bytes or roots. Its transfers are compared with ours (untimed), so
both did the same netting. ``ratio`` = raw_seconds / seconds (1.0: no overhead).

Garbage collection is off while timing, both sides alike: neither builds reference
cycles, and collections would only rescan the million input rows. ``peak_rss_mb`` is the
process's peak, input rows included. With ``--db`` the rows would be read from a table
and the raw baseline would be one SQL ``GROUP BY``; not built yet (see the README).
"""

from __future__ import annotations

import gc
import heapq
import random
import resource
import time
from collections.abc import Sequence
from datetime import date

from reconciliation.netting import Obligation
from reconciliation.report import build_report, closed_body, report_bytes
from schemas.bodies import CalendarModel
from schemas.errors import InvariantError, LimitError, MalformedError
from schemas.identifiers import make_uscc
from schemas.limits import BENCH_RECONCILE_MEMBERS_MAX, BENCH_RECONCILE_OBLIGATIONS_MAX

SEED = 1
BENCH_DAY = date(2026, 12, 1)
REGIONS = ("31", "32", "33", "34")
AMOUNT_FEN_RANGE = (100, 200_000)  # 1 元 to 2,000 元: a cross-store refund
ADVANCE_EVERY = 20  # one obligation in twenty is an advance, the rest returns
KB_PER_MB = 1024  # ru_maxrss is in kilobytes on Linux
CUTOFF_ROOT = bytes(32)  # the cutoff's root is carried, never recomputed, by the netting

Row = tuple[int, str, str, str, int]


def synthetic_night(obligations: int, members: int, seed: int = SEED) -> list[Row]:
    """Rows of a night, seq ascending (odd seqs: endorsements and other entries lie
    between), debtor and creditor distinct members drawn uniformly."""
    if obligations < 1 or members < 2:
        raise MalformedError("a night needs one obligation and two members")
    if obligations > BENCH_RECONCILE_OBLIGATIONS_MAX or members > BENCH_RECONCILE_MEMBERS_MAX:
        raise LimitError(
            f"at most {BENCH_RECONCILE_OBLIGATIONS_MAX} obligations"
            f" among {BENCH_RECONCILE_MEMBERS_MAX} members"
        )
    ids = [_member(n) for n in range(members)]
    rng = random.Random(seed)  # noqa: S311 (a reproducible workload, not a secret)
    draw, low, high = rng.randrange, *AMOUNT_FEN_RANGE
    rows: list[Row] = []
    for n in range(obligations):
        debtor = draw(members)
        creditor = draw(members - 1)
        creditor += creditor >= debtor  # skip the debtor itself, still uniform
        kind = "advance" if n % ADVANCE_EVERY == 0 else "return"
        rows.append((2 * n + 1, kind, ids[debtor], ids[creditor], draw(low, high)))
    return rows


def _member(serial: int) -> str:
    """A valid USCC per serial (below 10**7), the regions in turn (ops.world's numbering)."""
    region = REGIONS[serial % len(REGIONS)]
    return make_uscc(f"9{region[0]}{region}0000MA{serial:07d}")


def raw_netting(rows: Sequence[Row]) -> list[tuple[str, str, int]]:
    """The baseline: dict sum of nets, then the heap greedy, as plainly as it goes."""
    net: dict[str, int] = {}
    get = net.get
    for _, _, debtor, creditor, amount in rows:
        net[debtor] = get(debtor, 0) - amount
        net[creditor] = get(creditor, 0) + amount
    debtors = [(value, member) for member, value in net.items() if value < 0]
    creditors = [(-value, member) for member, value in net.items() if value > 0]
    heapq.heapify(debtors)
    heapq.heapify(creditors)
    transfers: list[tuple[str, str, int]] = []
    while debtors:
        owed, payer = heapq.heappop(debtors)
        due, payee = heapq.heappop(creditors)
        amount = min(-owed, -due)
        transfers.append((payer, payee, amount))
        if owed + amount:
            heapq.heappush(debtors, (owed + amount, payer))
        if due + amount:
            heapq.heappush(creditors, (due + amount, payee))
    return transfers


def _timed_raw(rows: Sequence[Row]) -> tuple[float, list[tuple[str, str, int]]]:
    started = time.perf_counter()
    transfers = raw_netting(rows)
    return time.perf_counter() - started, transfers


def _timed_ours(
    rows: Sequence[Row], calendar: CalendarModel | None
) -> tuple[float, list[tuple[str, str, int]]]:
    started = time.perf_counter()
    included = [Obligation(*row) for row in rows]
    report = build_report(
        BENCH_DAY, 2 * len(rows) + 1, CUTOFF_ROOT, included, calendar=calendar, settlement_days=3
    )
    closed_body(report)
    report_bytes(report)
    seconds = time.perf_counter() - started
    return seconds, [(i.payer, i.payee, i.amount_fen) for i in report.instructions]


def bench_reconcile(
    obligations: int = 1_000_000,
    members: int = 100_000,
    calendar: CalendarModel | None = None,
) -> dict[str, object]:
    """One JSON-ready report: sizes, both timings, the ratio and the peak RSS. The CLI
    passes the shipped policy's ``calendar`` and adds the machine."""
    rows = synthetic_night(obligations, members)
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        raw_seconds, raw_transfers = _timed_raw(rows)
        seconds, transfers = _timed_ours(rows, calendar)
    finally:
        if enabled:
            gc.enable()
    if transfers != raw_transfers:
        raise InvariantError("the raw baseline netted the night differently")
    return {
        "bench": "reconcile",
        "backend": "memory",
        "obligations": obligations,
        "members": members,
        "instructions": len(transfers),
        "seconds": round(seconds, 3),
        "raw_seconds": round(raw_seconds, 3),
        "ratio": round(raw_seconds / seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KB_PER_MB, 1),
    }
