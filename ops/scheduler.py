"""`alliance scheduler`: the nightly job in its own long-lived process (issue 8).

APScheduler 3.11 runs one named job, ``reconcile``, on a cron trigger at
``policy.reconcile_at`` local time (Asia/Shanghai): coalescing (missed firings run once),
``max_instances=1``, and a first run at start that catches up every missed day in order
(``reconciliation.nightly.close_due``, a bounded batch per run). Each run logs one
structured line (JSON) to stdout; SIGTERM or SIGINT stops the scheduler cleanly after the
running job, if any, has finished.

Two schedulers may run at once (a standby, or a mistake): the log closes each day once,
and the one refused is answered with the first's night.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any, TextIO

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from ledger.app import Ledger
from ledger.calendar import LOCAL
from reconciliation.nightly import Night, close_due
from schemas.errors import AllianceError

JOB_ID = "reconcile"
MISFIRE_GRACE_S = 6 * 3600  # a firing missed by less than this still runs (coalesced)


def log_line(out: TextIO, event: str, **fields: Any) -> None:
    """One structured line per event (for journald, a log shipper, or a person)."""
    record = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "event": event, **fields}
    out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    out.flush()


def run_once(ledger: Ledger, out: TextIO = sys.stdout) -> list[Night]:
    """One run of the job: close every due day (oldest first), log one line."""
    try:
        nights = close_due(ledger)
    except AllianceError as exc:
        # This run fails; the next firing tries again. The log is unchanged.
        log_line(out, "reconcile-failed", error=exc.type_slug, detail=exc.detail)
        return []
    log_line(out, "reconcile", closed=[night.summary() for night in nights])
    return nights


def build_scheduler(
    ledger: Ledger, reconcile_at: str, out: TextIO = sys.stdout
) -> BlockingScheduler:
    """The scheduler with its one job; it first runs at once (catching up)."""
    hour, minute = (int(part) for part in reconcile_at.split(":"))
    scheduler = BlockingScheduler(timezone=LOCAL)
    scheduler.add_job(
        run_once,
        CronTrigger(hour=hour, minute=minute, timezone=LOCAL),
        args=[ledger, out],
        id=JOB_ID,
        name="close the business days that are due",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_S,
        next_run_time=datetime.now(LOCAL),
    )
    return scheduler


def serve(ledger: Ledger, out: TextIO = sys.stdout) -> None:
    """Run until SIGTERM or SIGINT; log the start and the stop."""
    reconcile_at = ledger.state().policy.reconcile_at
    scheduler = build_scheduler(ledger, reconcile_at, out)
    stop = _stopper(scheduler, out)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log_line(out, "scheduler-started", reconcile_at=reconcile_at, timezone="Asia/Shanghai")
    scheduler.start()  # blocks until shutdown
    log_line(out, "scheduler-stopped")


def _stopper(scheduler: BlockingScheduler, out: TextIO) -> Callable[[int, FrameType | None], None]:
    def stop(signum: int, _frame: FrameType | None) -> None:
        log_line(out, "scheduler-stopping", signal=signal.Signals(signum).name)
        scheduler.shutdown(wait=True)  # the running job, if any, finishes first

    return stop
