"""kill -9 a writer in the middle of a batch: the database keeps whole batches only.

The writer is a spawned process that appends large batches in a loop. In one batch it
stops inside the transaction, right after a chosen store call (leaves inserted; tiles
written; checkpoint inserted, just before COMMIT), and says so through a pipe; the test
then SIGKILLs it. No sleeps: the pipe is the only synchronization.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.connection import wait

import pytest

from ledger import merkle, store
from ledger.app import Ledger
from ledger.db import make_engine
from tests.conftest import Alliance
from tests.dbtools import CRASH_POINTS, check_log, crash_writer, snapshot

BATCH = 300  # > 256: each batch fills a tile
COMMITTED_BATCHES = 2  # batches the writer commits before the one it dies in
DEADLINE_S = 120  # a hung writer fails the test instead of hanging the suite


def run_until_killed(url: str, point: str) -> tuple[list[tuple[int, bytes]], int]:
    """Start the writer, collect its committed checkpoints, kill it mid-batch.
    Returns [(size, root)] committed and the head the dying transaction had reached."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=crash_writer, args=(url, point, BATCH, COMMITTED_BATCHES, theirs), daemon=True
    )
    process.start()
    theirs.close()
    committed: list[tuple[int, bytes]] = []
    try:
        while True:
            ready = wait([ours, process.sentinel], timeout=DEADLINE_S)
            assert ready, f"the writer said nothing for {DEADLINE_S} s"
            if ours not in ready:
                pytest.fail(f"the writer exited early with code {process.exitcode}")
            message = ours.recv()
            if message[0] == "committed":
                committed.append((message[1], message[2]))
            elif message[0] == "in-batch":
                os.kill(process.pid, signal.SIGKILL)  # inside the open transaction
                process.join()
                assert process.exitcode == -signal.SIGKILL
                return committed, int(message[1])
            else:
                pytest.fail(f"the writer failed: {message}")
    finally:
        if process.is_alive():
            process.kill()
            process.join()
        ours.close()


@pytest.mark.slow
@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_a_writer_killed_mid_batch_leaves_only_whole_batches(
    alliance: Alliance, point: str
) -> None:
    committed, dying_head = run_until_killed(alliance.url, point)
    assert [size for size, _ in committed] == [1 + BATCH * n for n in (1, 2)]
    pre_size, pre_root = committed[-1]
    if point == "entries":
        assert dying_head == pre_size + BATCH  # the doomed leaves were in the transaction

    # Open the database afresh, as a restarted service would.
    engine = make_engine(alliance.url)
    try:
        log = check_log(engine)  # every entry under a checkpoint, tiles match the leaves
        assert (log.size, log.root) == (pre_size, pre_root)
        assert log.checkpoint_sizes == [1, *(size for size, _ in committed)]
        snap = snapshot(engine)
        assert len(snap.projections["members"]) == pre_size - 1
        assert Ledger(engine, alliance.ring.keys["operator"], alliance.clock).rebuild().identical

        # A new writer goes on; the tree extends the pre-crash checkpoint.
        alliance.clock.advance(minutes=2)
        writer = Ledger(engine, alliance.ring.keys["operator"], alliance.clock).writer
        results = writer.submit_many([alliance.enroll_doc() for _ in range(BATCH // 2)])
        assert [getattr(r, "seq", r) for r in results] == list(
            range(pre_size, pre_size + BATCH // 2)
        )
        assert writer.submit(alliance.enroll_doc()).seq == pre_size + BATCH // 2
        after = check_log(engine)
        assert after.size == pre_size + BATCH // 2 + 1
        with engine.connect() as connection:
            proof = merkle.consistency_proof(pre_size, after.size, store.DbTiles(connection))
        merkle.verify_consistency(pre_size, after.size, pre_root, after.root, proof)
        # The witnesses, last at size 1, cosign the new head after their own check.
        alliance.cosign()
        with engine.connect() as connection:
            assert len(store.cosignature_lines(connection, after.size)) == 4
    finally:
        engine.dispose()
