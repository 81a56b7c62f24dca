"""Several writer PROCESSES on one PostgreSQL log: the advisory lock serializes their
batches, and the log stays one gapless sequence with a consistent tree.

PostgreSQL only (SQLite's single-writer lock is exercised by the crash test); under
CI=true an unreachable server fails this test instead of skipping it.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import wait

import pytest

from ledger.sequencer import Sequencer
from tests.conftest import Alliance
from tests.dbtools import append_worker, check_log, naive_root, snapshot

WORKERS = 4
PER_WORKER = 2_000
BATCH = 100
DEADLINE_S = 240  # a hung writer fails the test instead of hanging the suite


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_four_writer_processes_append_one_gapless_log(alliance: Alliance) -> None:
    assert alliance.engine.dialect.name == "postgresql"
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    for worker in range(WORKERS):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=append_worker,
            args=(alliance.url, worker, PER_WORKER, BATCH, sender),
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
    all_seqs: list[int] = []
    for worker in range(WORKERS):
        seqs = reports[worker][1]
        assert isinstance(seqs, list) and len(seqs) == PER_WORKER
        assert seqs == sorted(seqs)
        all_seqs += seqs
    total = WORKERS * PER_WORKER
    assert sorted(all_seqs) == list(range(1, total + 1))

    log = check_log(alliance.engine)  # gapless, every checkpoint root recomputed
    assert log.size == total + 1
    snap = snapshot(alliance.engine)
    assert len({entry.entry_id for entry in snap.entries}) == total + 1
    assert naive_root([entry.leaf for entry in snap.entries]) == snap.latest.root
    # Every batch (one submit_many of a single-threaded writer) committed one checkpoint.
    assert len(snap.checkpoints) == 1 + WORKERS * (PER_WORKER // BATCH)
    assert len(snap.projections["members"]) == total

    # The log goes on in this process.
    writer = Sequencer(alliance.engine, alliance.ring.keys["operator"], clock=alliance.clock)
    alliance.clock.advance(minutes=1)
    assert writer.submit(alliance.enroll_doc()).seq == total + 1
    check_log(alliance.engine)
