"""The SQLite WAL checkpoint job (ledger.walcheckpoint): a batch's commit leaves the copy
of the write-ahead log into the database file to it, it copies everything committed,
and a checkpoint that fails fails only itself."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ledger.app import Ledger
from ledger.db import make_engine
from ledger.schema import migrate
from ledger.sequencer import Appended
from ledger.walcheckpoint import WalCheckpoints
from schemas.limits import SQLITE_WAL_AUTOCHECKPOINT_PAGES
from tests.conftest import Alliance, make_alliance

ENROLMENTS = 40


@pytest.fixture
def sqlite_alliance(tmp_path: Path) -> Alliance:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    migrate(engine)
    return make_alliance(url, engine)


def submit_all(ledger: Ledger, documents: list[dict[str, object]]) -> None:
    results = ledger.submit_many(documents)
    assert all(isinstance(result, Appended) for result in results), results


def rows_in_the_file(path: Path) -> int:
    """log_entries rows in the database file itself, not counting the WAL: the file
    opened immutable, which reads neither the WAL nor its index."""
    uri = path.resolve().as_uri() + "?immutable=1"
    connection = sqlite3.connect(uri, uri=True)
    try:
        (count,) = connection.execute("SELECT count(*) FROM log_entries").fetchone()
    finally:
        connection.close()
    return int(count)


def test_every_connection_leaves_the_copy_to_the_job(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        assert WalCheckpoints.for_engine(engine) is None  # PostgreSQL has no WAL job
        return
    with engine.connect() as connection:
        pages = connection.execute(text("PRAGMA wal_autocheckpoint")).scalar()
    assert pages == SQLITE_WAL_AUTOCHECKPOINT_PAGES


def test_after_a_batch_the_job_copies_it_into_the_database_file(
    sqlite_alliance: Alliance, tmp_path: Path
) -> None:
    alliance = sqlite_alliance
    wal = alliance.sequencer.wal
    assert wal is not None
    documents = [alliance.enroll_doc() for _ in range(ENROLMENTS)]
    submit_all(alliance.ledger, documents)
    wal.drain()
    with alliance.engine.connect() as connection:
        size = connection.execute(text("SELECT count(*) FROM log_entries")).scalar()
    # Far fewer pages than the commit's own bound: only the job copied them.
    assert rows_in_the_file(tmp_path / "ledger.db") == size == 1 + ENROLMENTS


def test_without_the_job_the_batch_stays_in_the_wal(tmp_path: Path) -> None:
    """The check above can fail: with no job, the committed rows are not in the file."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    migrate(engine)
    # The schema into the file (the migration's pages are still in the WAL, too).
    full = sqlite3.connect(tmp_path / "ledger.db")
    full.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    full.close()
    before = rows_in_the_file(tmp_path / "ledger.db")
    alliance = make_alliance(url, engine)
    wal = alliance.sequencer.wal
    assert wal is not None
    wal.drain()  # the genesis batch's job, before the writer goes on without one
    alliance.sequencer.wal = None
    submit_all(alliance.ledger, [alliance.enroll_doc() for _ in range(ENROLMENTS)])
    # At most the genesis, which the job of make_alliance's own batch may have copied.
    assert before == 0 and rows_in_the_file(tmp_path / "ledger.db") <= 1
    engine.dispose()


def test_a_checkpoint_that_fails_fails_only_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    path = folder / "ledger.db"
    sqlite3.connect(path).close()
    wal = WalCheckpoints.for_engine(make_engine(f"sqlite:///{path}"))
    assert wal is not None
    shutil.rmtree(folder)
    with caplog.at_level(logging.WARNING, logger="ledger.walcheckpoint"):
        wal.committed()
        wal.drain()  # no exception: the WAL would only stay longer
    assert "wal-checkpoint failed" in caplog.text
    assert not folder.exists()  # and nothing was made in place of the file


def wal_connection(path: Path) -> sqlite3.Connection:
    """A writer's connection in WAL mode that copies nothing at commit (as the ledger's)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL").fetchall()
    connection.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
    connection.execute("CREATE TABLE IF NOT EXISTS scratch (body BLOB)")
    return connection


def write_rows(connection: sqlite3.Connection, count: int) -> None:
    """One transaction of ``count`` rows of 1 KiB: a batch."""
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany("INSERT INTO scratch VALUES (?)", [(b"x" * 1024,)] * count)
    connection.execute("COMMIT")


def wal_file_bytes(path: Path) -> int:
    return (path.parent / (path.name + "-wal")).stat().st_size


def test_a_long_wal_is_copied_before_the_next_batch_which_restarts_it(tmp_path: Path) -> None:
    path = tmp_path / "scratch.db"
    writer = wal_connection(path)  # open throughout: the last to close would copy it all
    write_rows(writer, 2_000)
    wal = WalCheckpoints(path, restart_pages=1)
    wal.committed()
    wal.drain()
    assert wal.wal_pages > 100  # what the job found: the long batch's frames
    wal.restart_if_long()
    assert wal.wal_pages == 0  # copied; the next batch begins with every frame copied
    before = wal_file_bytes(path)
    write_rows(writer, 1)
    wal.committed()
    wal.drain()
    # The one-row batch restarted the WAL: the job finds only its own few frames,
    # written over the start of the same file.
    assert 0 < wal.wal_pages < 10
    assert wal_file_bytes(path) <= before
    writer.close()


def test_a_path_that_names_another_file_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger.db"
    writer = wal_connection(path)
    write_rows(writer, 10)
    wal = WalCheckpoints(path)
    wal.committed()  # the file committed to
    wal.drain()
    other = tmp_path / "other.db"
    stranger = wal_connection(other)
    write_rows(stranger, 3)
    stranger.close()
    os.replace(other, path)  # a restore, or a hostile hand, swaps the file
    with caplog.at_level(logging.WARNING, logger="ledger.walcheckpoint"):
        wal.committed()
        wal.drain()
    assert "is no longer the file the writer committed to" in caplog.text
    writer.close()
