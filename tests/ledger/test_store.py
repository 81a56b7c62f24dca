"""Log rows streamed to the database while the writer judges the rest of its batch
(ledger.store.EntryStream): all of them, in seq order, under the database's own triggers,
and a refusal or a failure leaves nothing behind, on both backends."""

from __future__ import annotations

import hashlib
import threading

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from ledger import merkle, store
from ledger.db import make_engine
from ledger.schema import migrate
from ledger.sequencer import record_leaf
from ledger.tables import LogEntry
from schemas.canonical import canonical
from schemas.limits import SQLITE_INSERT_ROWS_MAX

LOGGED = "2026-11-23T02:00:00.000000Z"
ROWS = 2 * SQLITE_INSERT_ROWS_MAX + 7  # several statements on SQLite, and a short one


def stored(seq: int, *, leaf_seq: int | None = None) -> store.StoredEntry:
    """A log row whose columns say what its leaf says (unless ``leaf_seq`` differs)."""
    entry = {"id": f"e-{seq}", "kind": "member.enrolled", "signer": "region:31", "body": {}}
    entry_bytes = canonical(entry)
    leaf = record_leaf(seq if leaf_seq is None else leaf_seq, LOGGED, entry_bytes, b"[]")
    return store.StoredEntry(
        seq=seq,
        entry_id=f"e-{seq}",
        entry_hash=hashlib.sha256(entry_bytes).digest(),
        kind="member.enrolled",
        signer="region:31",
        logged=LOGGED,
        leaf=leaf,
        leaf_hash=merkle.leaf_hash(leaf),
    )


def stream_rows(engine: Engine, entries: list[store.StoredEntry]) -> None:
    """Stream ``entries`` as the sequencer does (each added as it is admitted, then
    insert_entries), in one transaction."""
    with engine.begin() as connection, store.EntryStream(connection) as stream:
        for entry in entries:
            stream.add(entry)
        store.insert_entries(connection, entries, stream)


def logged_seqs(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(select(LogEntry.seq).order_by(LogEntry.seq)).scalars())


def helper_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if "sqlite-rows" in thread.name]


def test_every_streamed_row_is_stored_in_order(engine: Engine) -> None:
    entries = [stored(seq) for seq in range(ROWS)]
    stream_rows(engine, entries)
    assert logged_seqs(engine) == list(range(ROWS))
    with engine.connect() as connection:
        back = list(store.read_entries(connection, 0, ROWS))
    assert back == entries
    assert helper_threads() == []


@pytest.mark.parametrize("rows_per_statement", [SQLITE_INSERT_ROWS_MAX, 16])
def test_a_gap_past_the_first_statement_is_refused_and_nothing_stays(
    engine: Engine, rows_per_statement: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 rows a statement: the batch is 65 statements, far more than the helper may have
    pending, so the refusal is met while the writer waits for room, and still raised."""
    monkeypatch.setattr(store, "SQLITE_INSERT_ROWS_MAX", rows_per_statement)
    entries = [stored(seq) for seq in range(ROWS)]
    entries[SQLITE_INSERT_ROWS_MAX + 3] = stored(ROWS + 5)  # seq jumps: the gapless trigger
    with pytest.raises(IntegrityError):
        stream_rows(engine, entries)
    assert logged_seqs(engine) == []
    assert helper_threads() == []
    stream_rows(engine, [stored(0), stored(1)])  # the database takes rows again
    assert logged_seqs(engine) == [0, 1]


def test_a_leaf_that_disagrees_with_its_columns_is_refused(engine: Engine) -> None:
    entries = [stored(seq) for seq in range(ROWS)]
    entries[-1] = stored(ROWS - 1, leaf_seq=ROWS + 40)
    with pytest.raises(IntegrityError):
        stream_rows(engine, entries)
    assert logged_seqs(engine) == []


def test_a_failure_while_streaming_rolls_everything_back(engine: Engine) -> None:
    """The writer fails between rows (a bug, a halt): the statements already sent finish
    before the rollback, and none of their rows stay."""
    entries = [stored(seq) for seq in range(ROWS)]
    with (
        pytest.raises(RuntimeError, match="judging failed"),
        engine.begin() as connection,
        store.EntryStream(connection) as stream,
    ):
        for entry in entries:
            stream.add(entry)
        raise RuntimeError("judging failed")
    assert logged_seqs(engine) == []
    assert helper_threads() == []
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(LogEntry)).scalar() == 0


def test_an_in_memory_database_takes_the_rows_on_the_writer_thread() -> None:
    """sqlite3 ties an in-memory database's connection to its thread: no helper there,
    the same rows and the same refusal."""
    engine = make_engine("sqlite://")
    try:
        migrate(engine)
        entries = [stored(seq) for seq in range(ROWS)]
        stream_rows(engine, entries)
        assert logged_seqs(engine) == list(range(ROWS))
        with pytest.raises(IntegrityError):
            stream_rows(engine, [stored(ROWS + 1)])
        assert logged_seqs(engine) == list(range(ROWS))
    finally:
        engine.dispose()
