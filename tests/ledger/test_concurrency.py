"""Several writer PROCESSES on one PostgreSQL log: the advisory lock serializes their
batches, and the log stays one gapless sequence with a consistent tree.

PostgreSQL only (SQLite's single-writer lock is exercised by the crash test); under
CI=true an unreachable server fails this test instead of skipping it.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import wait

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ledger.db import make_engine
from ledger.sequencer import lock_log
from ops.world import fresh_schema
from tests.conftest import Alliance
from tests.dbtools import (
    append_worker,
    check_log,
    naive_root,
    new_schema_name,
    pg_base_url,
    snapshot,
)

WORKERS = 4
PER_WORKER = 2_000
BATCH = 100
DEADLINE_S = 240  # a hung writer fails the test instead of hanging the suite


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_four_writer_processes_append_one_gapless_log(alliance: Alliance) -> None:
    assert alliance.engine.dialect.name == "postgresql"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)  # all append at once, not one after another
    pipes, processes = [], []
    for worker in range(WORKERS):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=append_worker,
            args=(alliance.url, worker, PER_WORKER, BATCH, start, sender),
            name=f"writer-{worker}",
        )
        process.start()
        sender.close()
        pipes.append(receiver)
        processes.append(process)

    reports: dict[int, tuple[str, object]] = {}
    try:
        waiting = dict(enumerate(pipes))
        while waiting:
            ready = wait(list(waiting.values()), timeout=DEADLINE_S)
            assert ready, f"writers {sorted(waiting)} did not finish in {DEADLINE_S} s"
            for worker, pipe in list(waiting.items()):
                if pipe in ready:
                    try:
                        reports[worker] = pipe.recv()
                    except EOFError:
                        reports[worker] = ("error", "the writer died without a report")
                    del waiting[worker]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()

    failures = {w: r for w, r in reports.items() if r[0] != "done"}
    assert not failures, failures
    assert all(process.exitcode == 0 for process in processes)

    # Each writer got its own seqs, increasing, and together they are exactly 1..8000.
    per_worker: dict[int, list[int]] = {}
    for worker in range(WORKERS):
        seqs = reports[worker][1]
        assert isinstance(seqs, list) and len(seqs) == PER_WORKER
        assert seqs == sorted(seqs)
        per_worker[worker] = seqs
    all_seqs = [seq for seqs in per_worker.values() for seq in seqs]
    total = WORKERS * PER_WORKER
    assert sorted(all_seqs) == list(range(1, total + 1))
    # The writers really contended: their batches interleave in the log.
    owner = {seq: worker for worker, seqs in per_worker.items() for seq in seqs}
    runs = 1 + sum(1 for seq in range(2, total + 1) if owner[seq] != owner[seq - 1])
    assert runs > WORKERS, "each writer appended all its batches in one go"

    log = check_log(alliance.engine)  # gapless, every checkpoint root recomputed
    assert log.size == total + 1
    snap = snapshot(alliance.engine)
    assert len({entry.entry_id for entry in snap.entries}) == total + 1
    assert naive_root([entry.leaf for entry in snap.entries]) == snap.latest.root
    # Every batch (one submit_many of a single-threaded writer) committed one checkpoint.
    assert len(snap.checkpoints) == 1 + WORKERS * (PER_WORKER // BATCH)
    assert len(snap.projections["members"]) == total


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_writer_lock_is_per_log_not_per_database(alliance: Alliance) -> None:
    """Two logs in two schemas of one database never wait for each other's writer; two
    writers of one log do."""
    base = pg_base_url()
    with fresh_schema(base, new_schema_name()) as other_url:
        holder, same_log, other_log = (
            make_engine(url) for url in (alliance.url, alliance.url, other_url)
        )
        try:
            with holder.begin() as held:
                lock_log(held)  # the writer of this log holds it until this block ends
                with other_log.begin() as other:
                    other.execute(text("SET LOCAL lock_timeout = '10s'"))
                    lock_log(other)  # the other log's writer takes its own at once
                refused = pytest.raises(OperationalError, match="lock timeout")
                with refused, same_log.begin() as second:
                    second.execute(text("SET LOCAL lock_timeout = '50ms'"))
                    lock_log(second)
        finally:
            for engine in (holder, same_log, other_log):
                engine.dispose()
