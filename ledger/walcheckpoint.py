"""The SQLite WAL checkpoint job: copies the write-ahead log into the database file off
the writer's thread. (An SQLite checkpoint, not the log's signed checkpoint.)

In WAL mode a commit appends the transaction's pages to the WAL and fsyncs it: that is
what makes a batch durable. Copying those pages into the database file afterwards (a
"checkpoint") is not needed for durability, only to keep the WAL short. SQLite does it by
default inside the commit that takes the WAL past 1,000 pages, which for a batch of
thousands of entries is every commit: on a large log that copy (random writes into big
indexes, then an fsync of the file) was a quarter of the writer's time. Here a commit
copies by itself only past SQLITE_WAL_AUTOCHECKPOINT_PAGES, and after every committed
batch the writer asks this job for one PASSIVE checkpoint: it copies what no reader
still needs and never takes the write lock, so it never delays a batch. It runs in
SQLite's C code, which releases the interpreter lock: the copy proceeds on another core
while the writer judges the next batch.

The WAL restarts from its beginning only when a batch begins with every frame copied.
Back to back, the job is still copying batch N when batch N + 1 begins, so the WAL would
only grow; once the job finds it SQLITE_WAL_RESTART_PAGES long, the writer waits for the
job before its next batch (``restart_if_long``), and that batch restarts it.

A checkpoint that fails (the file went away, the disk is full) fails only itself: the
WAL stays longer until the next one, or until a commit passes the bound. The job copies
only into the file the writer committed to: a path that now names another file (moved,
replaced, a symlink retargeted) is skipped with a warning, since a WAL is not tied to
its database file and copying one log's pages into another would corrupt it.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine

from ledger.db import sqlite_file
from schemas.limits import SQLITE_BUSY_TIMEOUT_MS, SQLITE_WAL_RESTART_PAGES

LOGGER = logging.getLogger(__name__)
JOB_NAME = "wal-checkpoint"


@functools.cache
def _executor() -> ThreadPoolExecutor:
    """One thread per process serves every engine: the jobs are I/O in C, and a second
    one at once would only compete for the same disk."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=JOB_NAME)


class WalCheckpoints:
    """The checkpoint job of one SQLite file: ``committed()`` after each batch queues
    one checkpoint unless one is already waiting to start (they coalesce)."""

    def __init__(self, path: Path, restart_pages: int = SQLITE_WAL_RESTART_PAGES) -> None:
        self._path = path
        # mode=rw: a job that outlives its file (removed, or its test's folder) must
        # not make an empty database in its place.
        self._uri = path.resolve().as_uri() + "?mode=rw"
        self._restart_pages = restart_pages
        self._lock = threading.Lock()
        self._queued: Future[None] | None = None  # queued and not yet started
        self._last: Future[None] | None = None
        self._identity: tuple[int, int] | None = None  # (device, inode) committed to
        self.wal_pages = 0  # the WAL's length when the last job ran, in pages

    @staticmethod
    def for_engine(engine: Engine) -> WalCheckpoints | None:
        """The job for ``engine`` if it is a SQLite file (WAL mode), else None."""
        url = engine.url.render_as_string(hide_password=False)
        path = sqlite_file(url) if engine.dialect.name == "sqlite" else None
        return None if path is None else WalCheckpoints(path)

    def committed(self) -> None:
        """A batch was committed to the file: copy its WAL pages, off this thread."""
        with self._lock:
            if self._identity is None:
                self._identity = self._stat()  # the file just committed to is the writer's
            if self._queued is not None:
                return  # the one waiting to start will copy this batch too
            future = _executor().submit(self._run)
            self._queued = self._last = future

    def restart_if_long(self) -> None:
        """Before a batch: once the job found the WAL SQLITE_WAL_RESTART_PAGES long, wait
        for it to copy the rest, so that the batch restarts the WAL from its start."""
        if self.wal_pages >= self._restart_pages:
            self.drain()
            self.wal_pages = 0

    def drain(self) -> None:
        """Wait for the last checkpoint asked for (before a close, and a restart)."""
        with self._lock:
            last = self._last
        if last is not None:
            last.result()

    def _stat(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self._path)
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def _run(self) -> None:
        with self._lock:
            self._queued = None  # a batch committed from now on asks for a new one
        if self._stat() != self._identity:
            LOGGER.warning(
                "%s skipped: %s is no longer the file the writer committed to", JOB_NAME, self._path
            )
            return
        try:
            # A connection of its own, in autocommit (no BEGIN: that would take the write
            # lock), opened and closed per job: an idle writer holds nothing here.
            connection = sqlite3.connect(
                self._uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            try:
                row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            finally:
                connection.close()
        except (sqlite3.Error, OSError) as exc:
            LOGGER.warning("%s failed, the WAL stays longer: %s", JOB_NAME, exc)
            return
        # (busy, frames in the WAL, frames copied): -1 when the file is not in WAL mode.
        self.wal_pages = max(0, int(row[1])) if row is not None else 0
