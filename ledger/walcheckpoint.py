"""The SQLite WAL checkpoint job: copies the write-ahead log into the database file off
the writer's thread. (An SQLite checkpoint, not the log's signed checkpoint.)

In WAL mode a commit appends the transaction's pages to the WAL and fsyncs it: that is
what makes a batch durable. Copying those pages into the database file afterwards (a
"checkpoint") is not needed for durability, only to keep the WAL short. SQLite does it by
default inside the commit that takes the WAL past 1,000 pages, which for a batch of
thousands of entries is every commit: on a large log that copy (random writes into big
indexes, then an fsync of the file) was a quarter of the writer's time. Here each
connection checkpoints by itself only past SQLITE_WAL_AUTOCHECKPOINT_PAGES (the bound if
this job falls behind), and after every committed batch the writer asks this job for one
PASSIVE checkpoint: it copies what no reader still needs and never takes the write lock,
so it never delays a batch. It runs in SQLite's C code, which releases the interpreter
lock: the copy proceeds on the second core while the writer judges the next batch.

A checkpoint that fails (the file went away, the disk is full) fails only itself: the
WAL stays longer until the next one, or until a commit passes the bound. It never
touches what the log holds.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine

from ledger.db import sqlite_file
from schemas.limits import SQLITE_BUSY_TIMEOUT_MS

LOGGER = logging.getLogger(__name__)
JOB_NAME = "wal-checkpoint"


@functools.cache
def _executor() -> ThreadPoolExecutor:
    """One thread per process serves every engine: the jobs are I/O in C, and a second
    one at once would only compete for the same disk."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=JOB_NAME)


class WalCheckpoints:
    """The checkpoint job of one SQLite engine: ``committed()`` after each batch queues
    one checkpoint unless one is already waiting to start (they coalesce)."""

    def __init__(self, path: Path) -> None:
        # mode=rw: a job that outlives its file (removed, or its test's folder) must
        # not make an empty database in its place.
        self._uri = path.resolve().as_uri() + "?mode=rw"
        self._lock = threading.Lock()
        self._queued: Future[None] | None = None  # queued and not yet started
        self._last: Future[None] | None = None

    @staticmethod
    def for_engine(engine: Engine) -> WalCheckpoints | None:
        """The job for ``engine`` if it is a SQLite file (WAL mode), else None."""
        url = engine.url.render_as_string(hide_password=False)
        path = sqlite_file(url) if engine.dialect.name == "sqlite" else None
        return None if path is None else WalCheckpoints(path)

    def committed(self) -> None:
        with self._lock:
            if self._queued is not None:
                return  # the one waiting to start will copy this batch too
            future = _executor().submit(self._run)
            self._queued = self._last = future

    def drain(self) -> None:
        """Wait for the last checkpoint asked for (tests, and before a close)."""
        with self._lock:
            last = self._last
        if last is not None:
            last.result()

    def _run(self) -> None:
        with self._lock:
            self._queued = None  # a batch committed from now on asks for a new one
        try:
            # A connection of its own, in autocommit (no BEGIN: that would take the write
            # lock), opened and closed per job: an idle writer holds nothing here.
            connection = sqlite3.connect(
                self._uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()
        except (sqlite3.Error, OSError) as exc:
            LOGGER.warning("%s failed, the WAL stays longer: %s", JOB_NAME, exc)
