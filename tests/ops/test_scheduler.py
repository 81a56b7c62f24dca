"""`alliance scheduler` and the nightly job it runs: the one coalescing job, catching up
in order, two schedulers racing, a clean stop on SIGTERM, and a kill -9 mid-night."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest

from ledger.app import Ledger
from ledger.db import make_engine
from ops.scheduler import JOB_ID, build_scheduler, run_once
from reconciliation.nightly import Night, close_due, verified_night
from tests.conftest import Alliance
from tests.reconciliation.nights import Town, make_town, sale, to_next_day

PROCESS_TIMEOUT_S = 120  # a hung child fails the test instead of hanging the run


@pytest.fixture
def town(alliance: Alliance) -> Town:
    return make_town(alliance)


def test_the_scheduler_runs_one_coalescing_job_at_reconcile_at(town: Town) -> None:
    scheduler = build_scheduler(town.alliance.ledger, "00:30", io.StringIO())
    job = scheduler.get_job(JOB_ID)
    assert job is not None
    assert (job.coalesce, job.max_instances) == (True, 1)
    fields = {field.name: str(field) for field in job.trigger.fields}
    assert (fields["hour"], fields["minute"]) == ("0", "30")
    assert job.next_run_time is not None  # its first run catches up at start


def test_a_run_catches_up_missed_days_in_order_and_logs_one_line(town: Town) -> None:
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    for _ in range(3):
        to_next_day(town.alliance, minutes=600)
    out = io.StringIO()
    nights = run_once(town.alliance.ledger, out)
    assert [night.day for night in nights] == [town.day + timedelta(days=n) for n in range(3)]
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "reconcile"
    assert [item["day"] for item in record["closed"]] == [n.day.isoformat() for n in nights]
    assert run_once(town.alliance.ledger, io.StringIO()) == []  # nothing is due now


def test_two_schedulers_racing_close_each_day_once(town: Town, db_url: str) -> None:
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    for _ in range(3):
        to_next_day(town.alliance)
    alliance = town.alliance
    other = Ledger(make_engine(db_url), alliance.ring.keys["operator"], alliance.clock)
    results: dict[str, list[Night]] = {}
    barrier = threading.Barrier(2)

    def run(name: str, ledger: Ledger) -> None:
        barrier.wait()
        results[name] = close_due(ledger)

    threads = [
        threading.Thread(target=run, args=("first", alliance.ledger)),
        threading.Thread(target=run, args=("second", other)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Whichever ran second either found nothing due or was answered with the first's nights.
    seen: dict[date, tuple[int, bytes]] = {}
    for night in [*results["first"], *results["second"]]:
        assert seen.setdefault(night.day, (night.seq, night.report)) == (night.seq, night.report)
    appended = [n.appended for n in [*results["first"], *results["second"]]]
    assert appended.count(True) == 3  # each of the three days appended once, by one of them
    days = sorted(row.day for row in alliance.ledger.state().nights.rows())
    assert days == [(town.day + timedelta(days=n)).isoformat() for n in range(3)]
    other.close()


def _child(db_url: str, keys: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import os, signal, sys\n"
        "from datetime import date\n"
        "from ledger.app import Ledger\n"
        "from signing.keys import PrivateKey\n"
        "import reconciliation.nightly as nightly\n"
        f"ledger = Ledger.open({db_url!r}, PrivateKey.load({str(keys / 'operator.pem')!r}))\n"
        + code
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
        check=False,
    )


def _close(town: Town) -> str:
    return f"nightly.close_day(ledger, date.fromisoformat({town.day.isoformat()!r}))\n"


def _one_sale_and_saved_keys(town: Town, tmp_path: Path) -> Path:
    """One cross-store return to settle, and the ring's keys on disk for a child process."""
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    keys = tmp_path / "keys"
    town.alliance.ring.save(keys)
    return keys


def _restarted(town: Town, db_url: str) -> Ledger:
    return Ledger(make_engine(db_url), town.alliance.ring.keys["operator"], town.alliance.clock)


def test_a_night_killed_after_its_commit_is_found_on_restart(
    town: Town, db_url: str, tmp_path: Path
) -> None:
    keys = _one_sale_and_saved_keys(town, tmp_path)
    # The child dies with SIGKILL right after its night committed, before it read it back.
    kill = "nightly.verified_night = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
    child = _child(db_url, keys, kill + _close(town))
    assert child.returncode == -signal.SIGKILL, child.stderr
    restarted = _restarted(town, db_url)
    night = verified_night(restarted, town.day)
    again = close_due(restarted)
    assert all(n.day != town.day or not n.appended for n in again)
    assert [row.day for row in restarted.state().nights.rows()].count(town.day.isoformat()) == 1
    assert verified_night(restarted, town.day).report == night.report
    restarted.close()


def test_a_night_killed_before_its_commit_closes_once_on_restart(
    town: Town, db_url: str, tmp_path: Path
) -> None:
    keys = _one_sale_and_saved_keys(town, tmp_path)
    size = town.alliance.ledger.size()
    kill = "Ledger.submit = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
    child = _child(db_url, keys, kill + _close(town))
    assert child.returncode == -signal.SIGKILL, child.stderr
    restarted = _restarted(town, db_url)
    assert restarted.size() == size  # nothing of the killed night was written
    to_next_day(town.alliance)
    [night] = close_due(restarted)
    assert night.day == town.day and night.appended
    assert json.loads(night.report)["included"]
    restarted.close()


def test_the_scheduler_process_stops_cleanly_on_sigterm(
    town: Town, db_url: str, tmp_path: Path
) -> None:
    keys = _one_sale_and_saved_keys(town, tmp_path)
    command = [sys.executable, "-m", "ops.cli", "scheduler", "--db", db_url, "--keys", str(keys)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    try:
        assert process.stdout is not None
        events = []
        for line in process.stdout:  # blocks until the child writes: no sleeps
            events.append(json.loads(line)["event"])
            if events[-1] in ("reconcile", "reconcile-failed"):
                break
        assert events == ["scheduler-started", "reconcile"]
        process.send_signal(signal.SIGTERM)
        rest, errors = process.communicate(timeout=PROCESS_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    assert [json.loads(line)["event"] for line in rest.splitlines()] == [
        "scheduler-stopping",
        "scheduler-stopped",
    ]
