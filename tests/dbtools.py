"""Database helpers for the ledger tests.

* fresh PostgreSQL schemas (``PgServer``), one per test, built from the DDL that
  ``ledger.schema.migrate`` emitted once per test session;
* entry builders and snapshots of everything the log stores (the log clock is
  ``ops.world.Clock``);
* independent Merkle recomputation (the RFC 6962 definition, no project code);
* the worker processes of the concurrency and crash tests: top-level functions, so a
  ``spawn`` child can import them.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.connection import Connection as Pipe
from typing import Any

import psycopg
from sqlalchemy import Engine, event, select, text
from sqlalchemy.engine import make_url

from ledger import merkle, projections, store
from ledger.app import Ledger
from ledger.db import make_engine
from ledger.schema import migrate
from ledger.sequencer import Sequencer
from ledger.state import region_principal
from ledger.tables import Checkpoint, Cosignature, MerkleTile
from ops.world import (
    EntryFactory,
    Keyring,
    fresh_schema,
    numbered_stores,
    schema_url,
    uscc,
)
from ops.world import member_body as world_member_body
from schemas.entry import parse_record
from tests.support import START

PG_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WORKER_TIME = START + timedelta(minutes=1)  # the log clock of spawned writers


# --- PostgreSQL: one fresh schema per test ---------------------------------------------


def pg_base_url() -> str:
    return os.environ.get("ALLIANCE_TEST_PG") or PG_DEFAULT_URL


def libpq_url(url: str) -> str:
    """``url`` as psycopg.connect() takes it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def new_schema_name() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"t_{worker}_{os.getpid()}_{uuid.uuid4().hex[:10]}".lower()


class PgServer:
    """An admin connection to the test database and the schema DDL of ``migrate``.

    ``migrate`` is run for real once (into a template schema) and every statement it
    sent is recorded; each test's schema then gets the same DDL in one round trip
    (≈ 4x faster than running Alembic per test). If a migration ever sends parameters
    (a data migration), replaying is not faithful and tests run ``migrate`` instead.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.admin = psycopg.connect(libpq_url(base_url), autocommit=True, connect_timeout=5)
        self.ddl: str | None = self._record_migration()

    def _record_migration(self) -> str | None:
        with fresh_schema(self.base_url, new_schema_name()) as url:
            return self._record_migration_into(url)

    def _record_migration_into(self, url: str) -> str | None:
        statements: list[str] = []
        faithful = True
        engine = make_engine(url)

        @event.listens_for(engine, "before_cursor_execute")
        def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
            nonlocal faithful
            if statement.lstrip().upper().startswith("SELECT"):
                return  # Alembic's reflection: reads only
            if params:
                faithful = False
            # Sent with an empty parameter mapping, psycopg read "%%" as "%"; the
            # replay sends no parameters at all, so it must not be escaped.
            statements.append(statement.strip().rstrip(";").replace("%%", "%"))

        try:
            migrate(engine)
        finally:
            engine.dispose()
        return ";\n".join(statements) + ";" if faithful and statements else None

    def create(self, schema: str) -> str:
        """A fresh, migrated schema; returns the engine URL for it."""
        self.admin.execute(f'CREATE SCHEMA "{schema}"')
        url = schema_url(self.base_url, schema)
        try:
            if self.ddl is None:
                engine = make_engine(url)
                try:
                    migrate(engine)
                finally:
                    engine.dispose()
            else:
                # One implicit transaction: SET LOCAL scopes the search path to it.
                self.admin.execute(f'SET LOCAL search_path TO "{schema}";\n{self.ddl}'.encode())
        except BaseException:
            self.drop(schema)  # no fixture teardown runs for a failed setup
            raise
        return url

    def drop(self, schema: str) -> None:
        self.admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def close(self) -> None:
        self.admin.close()


# --- principals, entries -----------------------------------------------------------------


def member_body(
    ring: Keyring,
    member_id: str,
    region: str = "31",
    *,
    name: str | None = None,
    stores: int = 1,
    network: list[str] | None = None,
) -> dict[str, Any]:
    key = ring.ensure(member_id).public.wire()
    return world_member_body(
        member_id,
        region,
        key,
        name=name,
        stores=numbered_stores(region, stores),
        network=network,
    )


def enroll_doc(
    ring: Keyring,
    factory: EntryFactory,
    member_id: str,
    time: datetime,
    region: str = "31",
    **body: Any,
) -> dict[str, Any]:
    """A `submitted` member.enrolled by region:<region>, timed ``time``."""
    ring.ensure(region_principal(region))  # from the ring's seed: the genesis's key
    return factory.signed(
        ring,
        "member.enrolled",
        region_principal(region),
        member_body(ring, member_id, region, **body),
        time,
    )


# --- what the database holds -------------------------------------------------------------


@dataclass
class Snapshot:
    head: int
    entries: list[store.StoredEntry]
    checkpoints: list[store.StoredCheckpoint]
    tiles: dict[tuple[int, int], bytes]
    cosignatures: list[tuple[int, str, int, str]]
    projections: dict[str, list[tuple[object, ...]]] = field(repr=False)

    @property
    def latest(self) -> store.StoredCheckpoint:
        return self.checkpoints[-1]


def snapshot(engine: Engine) -> Snapshot:
    with engine.connect() as connection:
        head = store.head_size(connection)
        entries = list(store.read_entries(connection, 0, head))
        checkpoints = [
            store.StoredCheckpoint(int(r.size), bytes(r.root), r.note, r.signed)
            for r in connection.execute(select(Checkpoint).order_by(Checkpoint.size))
        ]
        tiles = {
            (int(r.level), int(r.idx)): bytes(r.hashes)
            for r in connection.execute(select(MerkleTile))
        }
        cosignatures = [
            (int(r.size), r.witness, int(r.timestamp_s), r.line)
            for r in connection.execute(
                select(Cosignature).order_by(Cosignature.size, Cosignature.witness)
            )
        ]
        rows = projections.read_all(connection)
    return Snapshot(head, entries, checkpoints, tiles, cosignatures, rows)


# --- raw rows, as an attacker with INSERT rights (but no key) writes them ----------------

RAW_LOGGED = "2026-11-23T02:00:00.000000Z"  # START, as the writer formats a logged time


def plant_cosignature(engine: Engine, size: int, witness: str, line: str | None = None) -> None:
    """INSERT a cosignature row as someone with an INSERT grant would: by default a
    garbage line under the witness's name, which verifies under no key."""
    row = {"size": size, "witness": witness, "timestamp_s": 1}
    row["line"] = line if line is not None else f"\u2014 {witness} AAAA\n"
    with engine.begin() as connection:
        connection.execute(text(insert_sql("cosignatures", list(row))), row)


def insert_sql(table: str, columns: Sequence[str]) -> str:
    """``INSERT INTO table (a, b) VALUES (:a, :b)``: one row (or many) by name."""
    names = ", ".join(columns)
    params = ", ".join(f":{column}" for column in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({params})"


INSERT_ENTRY = insert_sql("log_entries", store.ENTRY_COLUMNS)


def entry_row(
    seq: int,
    leaf: bytes,
    *,
    entry_id: str,
    kind: str,
    signer: str,
    entry_hash: bytes,
    logged: str = RAW_LOGGED,
) -> dict[str, object]:
    """The parameters of INSERT_ENTRY for ``leaf``; its leaf hash is the true one."""
    values = (seq, entry_id, entry_hash, kind, signer, logged, leaf, merkle.leaf_hash(leaf))
    return dict(zip(store.ENTRY_COLUMNS, values, strict=True))


# --- independent Merkle recomputation ------------------------------------------------------


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _mth(hashes: Sequence[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    split = 1 << ((len(hashes) - 1).bit_length() - 1)  # largest power of two < n
    return _node(_mth(hashes[:split]), _mth(hashes[split:]))


def naive_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[0:n]) by the recursive definition of RFC 6962 §2.1."""
    return _mth([_leaf(leaf) for leaf in leaves])


def prefix_roots(leaves: Sequence[bytes], sizes: Sequence[int]) -> dict[int, bytes]:
    """MTH of every prefix in ``sizes``, by a stack of complete subtrees (RFC 6962
    decomposes n into powers of two, largest first), in one pass over the leaves."""
    wanted = set(sizes)
    result = {0: hashlib.sha256(b"").digest()} if 0 in wanted else {}
    stack: list[tuple[int, bytes]] = []
    for count, leaf in enumerate(leaves, start=1):
        stack.append((1, _leaf(leaf)))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (width, left), (_, right) = stack[-2], stack[-1]
            stack[-2:] = [(2 * width, _node(left, right))]
        if count in wanted:
            root = stack[-1][1]
            for _, subtree in reversed(stack[:-1]):
                root = _node(subtree, root)
            result[count] = root
    return result


@dataclass
class LogCheck:
    size: int
    root: bytes
    checkpoint_sizes: list[int]


def check_log(engine: Engine) -> LogCheck:
    """Everything the log stores agrees: seqs 0..n-1 gapless, each leaf's record holds
    its seq, the stored leaf hashes, every checkpoint's root (from the tiles and from
    the leaves), and the latest checkpoint covers the whole log."""
    snap = snapshot(engine)
    assert [entry.seq for entry in snap.entries] == list(range(snap.head))
    leaves = [entry.leaf for entry in snap.entries]
    for entry in snap.entries:
        _, model = parse_record(entry.leaf)
        assert model.seq == entry.seq
        assert entry.leaf_hash == _leaf(entry.leaf)
    assert snap.checkpoints, "the log has no checkpoint"
    sizes = [checkpoint.size for checkpoint in snap.checkpoints]
    assert sizes == sorted(set(sizes))
    expected = prefix_roots(leaves, sizes)
    reader = merkle.MemoryTiles(snap.tiles)
    for checkpoint in snap.checkpoints:
        assert checkpoint.root == expected[checkpoint.size], checkpoint.size
        assert merkle.root(checkpoint.size, reader) == checkpoint.root, checkpoint.size
    latest = snap.latest
    assert latest.size == snap.head, f"checkpoint {latest.size} does not cover log {snap.head}"
    assert naive_root(leaves) == latest.root
    # The stored right edge is exactly that of the head: no tile beyond the log.
    merkle.integrate(snap.head, reader.read_tiles(merkle.frontier_tile_keys(snap.head)), [])
    return LogCheck(snap.head, latest.root, sizes)


# --- spawned writers -----------------------------------------------------------------------


def _writer(url: str, ring: Keyring) -> Sequencer:
    engine = make_engine(url)
    return Ledger(engine, ring.ensure("operator"), lambda: WORKER_TIME).writer


def append_worker(url: str, worker: int, count: int, batch: int, start: Any, pipe: Pipe) -> None:
    """Append ``count`` member.enrolled entries in batches through this process's own
    Sequencer, once every writer is ready (``start``: a multiprocessing Barrier); send
    back ("done", seqs) or ("error", text)."""
    try:
        ring = Keyring(seed=1)  # the same region:31 and operator keys as the genesis
        factory = EntryFactory(seed=1000 + worker)
        documents = [
            enroll_doc(ring, factory, uscc("31", (worker + 1) * 100_000 + i), WORKER_TIME)
            for i in range(count)
        ]
        sequencer = _writer(url, ring)
        sequencer.state()  # connected and caught up with the log
        start.wait(timeout=120)
        seqs: list[int] = []
        for start in range(0, count, batch):
            for result in sequencer.submit_many(documents[start : start + batch]):
                if isinstance(result, Exception):
                    raise result
                seqs.append(result.seq)
        sequencer.engine.dispose()
        pipe.send(("done", seqs))
    except BaseException as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


CRASH_POINTS = {
    "entries": "insert_entries",  # leaves inserted, nothing else
    "tiles": "write_tiles",  # leaves and tiles
    "checkpoint": "insert_checkpoint",  # everything, just before COMMIT
}


def crash_writer(url: str, point: str, batch: int, committed: int, pipe: Pipe) -> None:
    """Append batches of ``batch`` entries in a loop, reporting ("committed", size, root)
    after each. In batch number ``committed`` it stops right after the store call named
    by ``point`` (inside the transaction), reports ("in-batch", head) and waits to be
    killed."""
    ring = Keyring(seed=1)
    factory = EntryFactory(seed=77)
    sequencer = _writer(url, ring)
    finished = 0
    name = CRASH_POINTS[point]
    original = getattr(store, name)

    def stop_inside(connection: Any, *args: Any) -> None:
        original(connection, *args)
        if finished == committed:
            pipe.send(("in-batch", store.head_size(connection)))
            pipe.recv()  # never answered: the parent kills us here

    setattr(store, name, stop_inside)
    serial = 0
    while True:
        documents = []
        for _ in range(batch):
            serial += 1
            documents.append(enroll_doc(ring, factory, uscc("32", serial), WORKER_TIME, "32"))
        for result in sequencer.submit_many(documents):
            if isinstance(result, Exception):
                pipe.send(("error", f"{type(result).__name__}: {result}"))
                return
        finished += 1
        with sequencer.engine.connect() as connection:
            latest = store.latest_checkpoint(connection)
        assert latest is not None
        pipe.send(("committed", latest.size, latest.root))
