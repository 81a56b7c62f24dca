"""Append-only is enforced by the database itself (DESIGN §4): raw SQL through the engine,
bypassing every line of application code, cannot rewrite the log."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ledger.db import make_engine
from ledger.schema import migrate
from tests.conftest import Alliance, require_pg
from tests.dbtools import (
    INSERT_ENTRY,
    PgServer,
    check_log,
    entry_row,
    new_schema_name,
    schema_url,
    snapshot,
)

LOG_TABLES = ("log_entries", "checkpoints", "cosignatures")

REFUSED_CHANGES = [
    ("log_entries", "UPDATE log_entries SET kind = 'region.genesis' WHERE seq = 1"),
    ("log_entries", "UPDATE log_entries SET leaf = leaf_hash"),
    ("log_entries", "DELETE FROM log_entries WHERE seq = 2"),
    ("log_entries", "DELETE FROM log_entries"),
    ("checkpoints", "UPDATE checkpoints SET root = root WHERE size = 1"),
    ("checkpoints", "UPDATE checkpoints SET note = 'forged'"),
    ("checkpoints", "DELETE FROM checkpoints WHERE size = 4"),
    ("cosignatures", "UPDATE cosignatures SET timestamp_s = 0"),
    ("cosignatures", "DELETE FROM cosignatures"),
]


def refused(engine: Engine, sql: str, **params: object) -> str:
    """Run ``sql`` in its own transaction; it must fail. Returns the database's message."""
    with pytest.raises(DBAPIError) as caught, engine.begin() as connection:
        connection.execute(text(sql), params)
    return str(caught.value.orig)


def accepted(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql), params)


@pytest.fixture
def grown(alliance: Alliance) -> Alliance:
    """Genesis plus two batches: 4 entries, 3 checkpoints, cosignatures at size 1."""
    alliance.sequencer.submit(alliance.enroll_doc())
    alliance.sequencer.submit_many([alliance.enroll_doc(), alliance.enroll_doc()])
    return alliance


@pytest.mark.parametrize(("table", "sql"), REFUSED_CHANGES)
def test_update_and_delete_on_log_tables_are_refused(grown: Alliance, table: str, sql: str) -> None:
    before = snapshot(grown.engine)
    message = refused(grown.engine, sql)
    assert "append-only" in message and table in message
    assert snapshot(grown.engine) == before


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite has no TRUNCATE
@pytest.mark.parametrize("table", [*LOG_TABLES, "merkle_tiles"])
def test_truncate_is_refused_on_postgresql(grown: Alliance, table: str) -> None:
    assert grown.engine.dialect.name == "postgresql"
    before = snapshot(grown.engine)
    message = refused(grown.engine, f"TRUNCATE {table} CASCADE")
    assert "append-only" in message
    assert snapshot(grown.engine) == before


def test_merkle_tiles_may_only_grow(grown: Alliance) -> None:
    engine = grown.engine
    tile = snapshot(engine).tiles[(0, 0)]
    assert len(tile) == 4 * 32
    where = "WHERE level = 0 AND idx = 0"
    for sql, params in [
        (f"UPDATE merkle_tiles SET hashes = :shorter {where}", {"shorter": tile[:64]}),
        (f"UPDATE merkle_tiles SET hashes = :other {where}", {"other": bytes(len(tile))}),
        (  # the same length with one hash of the prefix changed
            f"UPDATE merkle_tiles SET hashes = :changed {where}",
            {"changed": tile[:32] + bytes(32) + tile[64:]},
        ),
        (  # grown, but the old prefix rewritten
            f"UPDATE merkle_tiles SET hashes = :rewritten {where}",
            {"rewritten": bytes(32) + tile[32:] + bytes(32)},
        ),
        (f"UPDATE merkle_tiles SET idx = 5 {where}", {}),
        (f"UPDATE merkle_tiles SET level = 3 {where}", {}),
        (f"DELETE FROM merkle_tiles {where}", {}),
        ("DELETE FROM merkle_tiles", {}),
    ]:
        message = refused(engine, sql, **params)
        assert "merkle_tiles" in message, sql
        assert snapshot(engine).tiles[(0, 0)] == tile
    # Extending the prefix by the hash of a new log row is what the sequencer does; the
    # database allows it (the extension must match the log's size: see below).
    extra = hashlib.sha256(b"next leaf").digest()
    accepted(engine, INSERT_ENTRY, **_raw_entry(4, "next"))
    accepted(engine, f"UPDATE merkle_tiles SET hashes = :grown {where}", grown=tile + extra)
    assert snapshot(engine).tiles[(0, 0)] == tile + extra


def test_a_tile_cannot_run_ahead_of_the_log(grown: Alliance) -> None:
    """Bytes appended to the frontier tile with no leaf behind them would wedge the writer
    (tiles only grow, so it could never write the true hash there): refused."""
    engine = grown.engine
    tile = snapshot(engine).tiles[(0, 0)]
    where = "WHERE level = 0 AND idx = 0"
    extra = hashlib.sha256(b"planted").digest()
    message = refused(engine, f"UPDATE merkle_tiles SET hashes = :h {where}", h=tile + extra)
    assert "width" in message
    message = refused(
        engine, "INSERT INTO merkle_tiles (level, idx, hashes) VALUES (1, 0, :h)", h=extra
    )
    assert "width" in message
    assert snapshot(engine).tiles[(0, 0)] == tile
    grown.sequencer.submit(grown.enroll_doc())  # the writer is not wedged
    check_log(engine)


def test_a_log_row_must_say_what_its_leaf_says(grown: Alliance) -> None:
    """The same signed entry cannot be logged twice under another entry_id: the
    entry_id column (UNIQUE) must be the leaf's own id, and seq, kind and signer too."""
    engine = grown.engine
    head = snapshot(engine).head
    copied = _raw_entry(head, "copy", entry_id="11111111-0000-4000-8000-000000000000")
    assert "match the leaf" in refused(engine, INSERT_ENTRY, **copied)
    wrong_seq = {**_raw_entry(head + 7, "seq"), "seq": head}
    assert "match the leaf" in refused(engine, INSERT_ENTRY, **wrong_seq)
    wrong_kind = {**_raw_entry(head, "kind"), "kind": "region.genesis"}
    assert "match the leaf" in refused(engine, INSERT_ENTRY, **wrong_kind)
    not_json = {**_raw_entry(head, "x"), "leaf": b"\xff not json"}
    refused(engine, INSERT_ENTRY, **not_json)
    if engine.dialect.name == "postgresql":  # SQLite has no SHA-256 in SQL
        bad_hash = {**_raw_entry(head, "hash"), "leaf_hash": bytes(32)}
        assert "match the leaf" in refused(engine, INSERT_ENTRY, **bad_hash)
    assert snapshot(engine).head == head


def test_merkle_tiles_refuse_a_tile_wider_than_256_hashes(grown: Alliance) -> None:
    refused(
        grown.engine,
        "INSERT INTO merkle_tiles (level, idx, hashes) VALUES (0, 9, :h)",
        h=bytes(32 * 257),
    )
    refused(
        grown.engine,
        "INSERT INTO merkle_tiles (level, idx, hashes) VALUES (0, 9, :h)",
        h=bytes(31),
    )


def _raw_entry(seq: int, marker: str, entry_id: str | None = None) -> dict[str, object]:
    """A log row whose columns say what its leaf says (the database checks that much;
    that the leaf is a valid, signed record is the writer's and the auditor's job)."""
    identifier = f"00000000-0000-4000-8000-{seq:012d}"
    record = {
        "seq": seq,
        "marker": marker,
        "entry": {"id": identifier, "kind": "member.enrolled", "signer": "region:31"},
    }
    leaf = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    return entry_row(
        seq,
        leaf,
        entry_id=entry_id or identifier,
        kind="member.enrolled",
        signer="region:31",
        entry_hash=hashlib.sha256(leaf).digest(),
    )


def test_log_entries_must_be_inserted_gaplessly(grown: Alliance) -> None:
    engine = grown.engine
    head = snapshot(engine).head
    for seq in (head + 1, head + 100, head - 1, 0, -1):
        refused(engine, INSERT_ENTRY, **_raw_entry(seq, "gap"))
    assert snapshot(engine).head == head
    # The next seq is accepted by the database (what goes in is the sequencer's job).
    accepted(engine, INSERT_ENTRY, **_raw_entry(head, "next"))
    assert snapshot(engine).head == head + 1
    # Several rows in one statement are checked row by row.
    rows = [_raw_entry(head + 1, "a"), _raw_entry(head + 3, "b")]
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(text(INSERT_ENTRY), rows)
    assert snapshot(engine).head == head + 1


def test_checkpoints_cannot_run_ahead_of_the_log_or_go_back(grown: Alliance) -> None:
    engine = grown.engine
    snap = snapshot(engine)
    insert = "INSERT INTO checkpoints (size, root, note, signed) VALUES (:size, :root, 'n', 'now')"
    for size in (snap.head + 1, snap.head + 1000):
        message = refused(engine, insert, size=size, root=bytes(32))
        assert "checkpoints" in message
    refused(engine, insert, size=snap.checkpoints[0].size, root=bytes(32))  # taken
    # A log grown without a checkpoint: a checkpoint behind the newest is refused, one
    # at the head is allowed.
    accepted(engine, INSERT_ENTRY, **_raw_entry(snap.head, "x"))
    accepted(engine, INSERT_ENTRY, **_raw_entry(snap.head + 1, "y"))
    refused(engine, insert, size=snap.latest.size - 1, root=bytes(32))
    refused(engine, insert, size=snap.head + 3, root=bytes(32))
    accepted(engine, insert, size=snap.head + 2, root=bytes(32))
    refused(engine, insert, size=snap.head + 1, root=bytes(32))


def test_cosignatures_need_a_stored_checkpoint(grown: Alliance) -> None:
    refused(
        grown.engine,
        "INSERT INTO cosignatures (size, witness, timestamp_s, line) VALUES (99, 'w', 1, 'l')",
    )


def test_the_sequencer_still_appends_after_refused_tampering(grown: Alliance) -> None:
    for _, sql in REFUSED_CHANGES:
        refused(grown.engine, sql)
    assert grown.sequencer.submit(grown.enroll_doc()).seq == 4
    check_log(grown.engine)


def test_a_replayed_test_schema_equals_a_migrated_one(pg_server: PgServer | str) -> None:
    """The PostgreSQL fixture replays migrate()'s DDL; it must build the same schema:
    columns, constraints, indexes, functions and triggers."""
    pg_server = require_pg(pg_server)
    if pg_server.ddl is None:
        pytest.skip("the fixture runs migrate() itself")

    def describe(schema: str) -> list[tuple[object, ...]]:
        queries = [
            "SELECT table_name, column_name, data_type, is_nullable, "
            "character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = %(s)s",
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = %(s)s::regnamespace",
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s",
            "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE NOT tgisinternal AND tgrelid::regclass::text NOT LIKE 'pg_%%' "
            "AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = %(s)s::regnamespace)",
            "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = %(s)s::regnamespace",
            "SELECT version_num FROM alembic_version",
        ]
        rows: list[tuple[object, ...]] = []
        with pg_server.admin.transaction():
            pg_server.admin.execute(f'SET LOCAL search_path TO "{schema}"')
            for query in queries:
                found = pg_server.admin.execute(query, {"s": schema}).fetchall()
                rows += sorted(tuple(str(v).replace(schema, "<s>") for v in r) for r in found)
        return rows

    replayed = new_schema_name()
    migrated = new_schema_name()
    try:
        pg_server.create(replayed)
        pg_server.admin.execute(f'CREATE SCHEMA "{migrated}"')
        engine = make_engine(schema_url(pg_server.base_url, migrated))
        migrate(engine)
        engine.dispose()
        assert describe(replayed) == describe(migrated)
        assert len(describe(replayed)) > 50
    finally:
        pg_server.drop(replayed)
        pg_server.drop(migrated)
