"""`alliance bench reconcile`: one night's netting, report and roots against the raw loop.

The night: ``obligations`` synthetic obligations among ``members`` numbered USCCs of the
four regions, drawn from a seeded generator (reproducible: the same arguments give the
same night, the same instructions and the same roots), built as the rows a store would
return, ``(seq, kind, debtor, creditor, amount_fen)`` tuples in seq order.

Timed, ours: ``build_report`` over the rows (each checked as ``Obligation`` checks it,
netted, its JCS leaf hashed into the included root, its seq kept: one streaming pass,
``reconciliation.streaming``), the greedy instructions with due dates and references,
``closed_body`` (the three roots over JCS items) and ``report_bytes``: all the pure work
of closing a night.

Timed, raw: the fastest straightforward code for the same netting in the same run: one
dict sum of net positions over the rows and the heapq greedy match, with no checks,
references, canonical bytes or roots. Its transfers are compared with ours (untimed), so
both did the same netting. ``ratio`` = raw_seconds / seconds (1.0: no overhead).

Garbage collection is off while timing, both sides alike: neither builds reference
cycles, and collections would only rescan the million input rows. ``peak_rss_mb`` is the
process's peak, input rows included. With ``--db`` (``ops.bench.reconcile``) both sides
read a table instead: ours every row in seq order, raw one SQL ``GROUP BY``.
"""

from __future__ import annotations

import gc
import heapq
import random
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date

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

Row = tuple[int, str, str, str, int]  # (seq, kind, debtor, creditor, amount_fen)
Transfer = tuple[str, str, int]  # (payer, payee, amount_fen)


def synthetic_night(obligations: int, members: int, seed: int = SEED) -> list[Row]:
    """Rows of a night, seq ascending (odd seqs: endorsements and other entries lie
    between), debtor and creditor distinct members drawn uniformly."""
    return list(synthetic_rows(obligations, members, seed))


def synthetic_rows(obligations: int, members: int, seed: int = SEED) -> Iterator[Row]:
    """``synthetic_night`` one row at a time (a database is loaded without holding them)."""
    if obligations < 1 or members < 2:
        raise MalformedError("a night needs one obligation and two members")
    if obligations > BENCH_RECONCILE_OBLIGATIONS_MAX or members > BENCH_RECONCILE_MEMBERS_MAX:
        raise LimitError(
            f"at most {BENCH_RECONCILE_OBLIGATIONS_MAX} obligations"
            f" among {BENCH_RECONCILE_MEMBERS_MAX} members"
        )
    return _rows(obligations, members, seed)


def _rows(obligations: int, members: int, seed: int) -> Iterator[Row]:
    ids = [_member(n) for n in range(members)]
    rng = random.Random(seed)  # noqa: S311 (a reproducible workload, not a secret)
    draw, low, high = rng.randrange, *AMOUNT_FEN_RANGE
    for n in range(obligations):
        debtor = draw(members)
        creditor = draw(members - 1)
        creditor += creditor >= debtor  # skip the debtor itself, still uniform
        kind = "advance" if n % ADVANCE_EVERY == 0 else "return"
        yield (2 * n + 1, kind, ids[debtor], ids[creditor], draw(low, high))


def _member(serial: int) -> str:
    """A valid USCC per serial (below 10**7), the regions in turn (ops.world's numbering)."""
    region = REGIONS[serial % len(REGIONS)]
    return make_uscc(f"9{region[0]}{region}0000MA{serial:07d}")


def raw_netting(rows: Iterable[Row]) -> list[Transfer]:
    """The baseline: dict sum of nets, then the heap greedy, as plainly as it goes."""
    net: dict[str, int] = {}
    get = net.get
    for _, _, debtor, creditor, amount in rows:
        net[debtor] = get(debtor, 0) - amount
        net[creditor] = get(creditor, 0) + amount
    return raw_greedy(net.items())


def raw_greedy(nets: Iterable[tuple[str, int]]) -> list[Transfer]:
    """The heap greedy over (member, net_fen), as plainly as it goes: the same order as
    ``reconciliation.netting.instructions`` (largest first, then the smaller id)."""
    debtors: list[tuple[int, str]] = []
    creditors: list[tuple[int, str]] = []
    for member, value in nets:
        if value < 0:
            debtors.append((value, member))
        elif value > 0:
            creditors.append((-value, member))
    heapq.heapify(debtors)
    heapq.heapify(creditors)
    transfers: list[Transfer] = []
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


def reconcile_rows(
    rows: Iterable[Row], cutoff_size: int, calendar: CalendarModel | None
) -> list[Transfer]:
    """Ours, timed by the benches: every row checked as an ``Obligation`` is and netted
    as it streams by (``reconciliation.streaming``), the report, the closed body with its
    three roots, and the report's bytes."""
    report = build_report(
        BENCH_DAY, cutoff_size, CUTOFF_ROOT, rows, calendar=calendar, settlement_days=3
    )
    closed_body(report)
    report_bytes(report)
    return [(i.payer, i.payee, i.amount_fen) for i in report.instructions]


def _timed(work: Callable[[], list[Transfer]]) -> tuple[float, list[Transfer]]:
    started = time.perf_counter()
    transfers = work()
    return time.perf_counter() - started, transfers


def compare(
    raw: Callable[[], list[Transfer]], ours: Callable[[], list[Transfer]]
) -> tuple[float, float, int]:
    """(raw_seconds, seconds, instructions): each side timed once, raw first, with the
    collector off for both; their transfers must be the same (InvariantError if not)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        raw_seconds, raw_transfers = _timed(raw)
        seconds, transfers = _timed(ours)
    finally:
        if enabled:
            gc.enable()
    if transfers != raw_transfers:
        raise InvariantError("the raw baseline netted the night differently")
    return raw_seconds, seconds, len(transfers)


def figures(
    backend: str, obligations: int, members: int, timings: tuple[float, float, int]
) -> dict[str, object]:
    """The bench's JSON line (the CLI adds the machine)."""
    raw_seconds, seconds, count = timings
    return {
        "bench": "reconcile",
        "backend": backend,
        "obligations": obligations,
        "members": members,
        "instructions": count,
        "seconds": round(seconds, 3),
        "raw_seconds": round(raw_seconds, 3),
        "ratio": round(raw_seconds / seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KB_PER_MB, 1),
    }


def bench_reconcile(
    obligations: int = 1_000_000,
    members: int = 100_000,
    calendar: CalendarModel | None = None,
) -> dict[str, object]:
    """The night in memory: both sides start from the same rows. The CLI passes the
    shipped policy's ``calendar``."""
    rows = synthetic_night(obligations, members)
    timings = compare(
        lambda: raw_netting(rows), lambda: reconcile_rows(rows, 2 * len(rows) + 1, calendar)
    )
    return figures("memory", obligations, members, timings)
