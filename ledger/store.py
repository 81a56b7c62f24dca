"""Reads and writes of the log tables. Pure SQL, no rules: the sequencer decides."""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    LargeBinary,
    String,
    Table,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from ledger.tables import (
    Checkpoint,
    Cosignature,
    LogEntry,
    MerkleTile,
    MerkleTileNodes,
    NightReport,
)
from schemas.errors import invariant
from schemas.limits import (
    HASH_SIZE,
    READ_CHUNK_ENTRIES,
    SQLITE_INSERT_ROWS_MAX,
    SQLITE_STATEMENTS_PENDING_MAX,
    TILE_WIDTH,
)

# The columns of log_entries, in the order insert_entries() writes them.
ENTRY_COLUMNS = ("seq", "entry_id", "entry_hash", "kind", "signer", "logged", "leaf", "leaf_hash")


@dataclass(frozen=True, slots=True)
class StoredEntry:
    seq: int
    entry_id: str
    entry_hash: bytes
    kind: str
    signer: str
    logged: str
    leaf: bytes
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    signed: str


def head_size(connection: Connection) -> int:
    """The number of entries in the log (max seq + 1; seqs are gapless by trigger)."""
    value = connection.execute(select(func.max(LogEntry.seq))).scalar()
    return 0 if value is None else int(value) + 1


def find_ids(connection: Connection, ids: Sequence[str]) -> dict[str, tuple[int, bytes]]:
    """entry id -> (seq, leaf) for the ids already logged. The leaf, not the row's
    entry_hash or leaf_hash columns: those are not checked by every backend's triggers,
    so the caller derives what it compares from the leaf itself."""
    if not ids:
        return {}
    # One parameter for all the ids rather than one bind parameter each (a batch has
    # thousands, and expanding them costs more than the look-ups): an array on
    # PostgreSQL, a JSON array read by json_each on SQLite; both probe the unique index.
    if connection.dialect.name == "postgresql":
        wanted = any_(bindparam("ids", list(ids), type_=postgresql.ARRAY(String)))
        condition = LogEntry.entry_id == wanted
    else:
        listed = func.json_each(bindparam("ids", json.dumps(list(ids)), type_=String))
        condition = LogEntry.entry_id.in_(select(listed.table_valued("value").c.value))
    rows = connection.execute(
        select(LogEntry.entry_id, LogEntry.seq, LogEntry.leaf).where(condition)
    )
    return {row.entry_id: (int(row.seq), bytes(row.leaf)) for row in rows}


def _entry_row(e: StoredEntry) -> tuple[object, ...]:
    return (e.seq, e.entry_id, e.entry_hash, e.kind, e.signer, e.logged, e.leaf, e.leaf_hash)


class CopyStream:
    """One PostgreSQL COPY into ``table`` kept open while the caller goes on working:
    rows are sent as they are added (in buffers of a few tens of KB) and the server
    checks, stores and indexes them on its own core meanwhile; finish() waits for it
    to take the rest. In the caller's transaction: nothing is durable before its
    commit. Use as a context manager: a failure inside ends the COPY with an error (the
    transaction is then rolled back). Failures are raised as copy_rows() raises them."""

    def __init__(self, connection: Connection, table: Table, columns: Sequence[str]) -> None:
        self._connection = connection
        self._statement = _copy_statement(table.name, columns)
        self._types = _copy_types(table, columns)
        self._copies = ExitStack()
        self._copy: psycopg.Copy | None = None
        self.sent = 0  # rows written into the COPY

    def __enter__(self) -> CopyStream:
        return self

    def __exit__(self, *failure: Any) -> None:
        if failure[0] is None:
            self.finish()
        else:  # the COPY fails with the exception, which goes on
            with _as_dbapi_error(self._connection, self._statement):
                self._copies.__exit__(*failure)

    def _open(self) -> psycopg.Copy:
        if self._copy is None:
            cursor = self._copies.enter_context(_driver(self._connection).cursor())
            self._copy = self._copies.enter_context(cursor.copy(self._statement))
            self._copy.set_types(self._types)
        return self._copy

    def add(self, row: Sequence[object]) -> None:
        with _as_dbapi_error(self._connection, self._statement):
            self._open().write_row(row)
        self.sent += 1

    def add_all(self, rows: Sequence[Sequence[object]]) -> None:
        with _as_dbapi_error(self._connection, self._statement):
            write = self._open().write_row
            for row in rows:
                write(row)
        self.sent += len(rows)

    def finish(self) -> None:
        """Wait for the server to take every row sent (a trigger's refusal is raised
        here at the latest)."""
        with _as_dbapi_error(self._connection, self._statement):
            self._copies.close()
        self._copy = None


class SqliteStream:
    """Rows for SQLite tables inserted on a helper thread while the caller goes on
    working, in the caller's transaction: the same idea as CopyStream. sqlite3 releases
    the GIL while a statement runs (its B-tree, index and trigger work), so the rows go
    as multi-row INSERTs of up to SQLITE_INSERT_ROWS_MAX rows (one step each, the GIL
    held only to bind the values): a per-row executemany would need the GIL back for
    every row. Statements run one after another, in the order they were added (the
    gapless trigger checks each log row against the one before).

    The caller must not use the connection before finish(), which waits for every
    statement and raises the first failure as SQLAlchemy's DBAPIError subclass for it
    (IntegrityError for a trigger's refusal), as an executemany would raise it. Use as a
    context manager: on a failure inside, it waits for the statements already sent and
    lets the failure go on (the caller's transaction is then rolled back)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        driver = connection.connection.driver_connection
        if not isinstance(driver, sqlite3.Connection):
            raise TypeError("SqliteStream needs a sqlite3 connection")
        self._driver = driver
        self._variables_max = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        # An in-memory database's connection belongs to the thread that opened it
        # (SQLAlchemy keeps sqlite3's same-thread check for it): statements run inline.
        database = connection.engine.url.database
        self._threaded = bool(database) and database != ":memory:"
        self._executor: ThreadPoolExecutor | None = None
        self._pending: deque[tuple[str, Future[sqlite3.Cursor]]] = deque()
        self._failure: tuple[str, BaseException] | None = None  # the first, with its SQL

    def __enter__(self) -> SqliteStream:
        return self

    def __exit__(self, *failure: Any) -> None:
        if failure[0] is None:
            self.finish()
        else:
            self._settle(0)
            self._close()

    def add_all(
        self, table: Table, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        """Send ``rows`` (plain int, str, bytes or None, in the order of ``columns``).
        At most SQLITE_STATEMENTS_PENDING_MAX statements wait for the helper at a time
        (a rebuild writes millions of rows), so their values are held only that long."""
        if not rows:
            return
        if self._executor is None and self._threaded:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-rows")
        per_statement = max(1, min(SQLITE_INSERT_ROWS_MAX, self._variables_max // len(columns)))
        for start in range(0, len(rows), per_statement):
            self._settle(SQLITE_STATEMENTS_PENDING_MAX - 1)
            chunk = rows[start : start + per_statement]
            statement = _multi_insert(table.name, tuple(columns), len(chunk))
            values = list(chain.from_iterable(chunk))
            if self._executor is None:
                self._execute_inline(statement, values)
            else:
                future = self._executor.submit(self._driver.execute, statement, values)
                self._pending.append((statement, future))

    def finish(self) -> None:
        """Wait for every statement; raise the first failure."""
        self._settle(0)
        self._close()
        if self._failure is None:
            return
        statement, failure = self._failure
        if isinstance(failure, sqlite3.Error):
            raise DBAPIError.instance(
                statement, None, failure, sqlite3.Error, dialect=self._connection.dialect
            ) from failure
        raise failure

    def _execute_inline(self, statement: str, values: list[object]) -> None:
        if self._failure is not None:
            return  # the transaction is rolled back anyway
        try:
            self._driver.execute(statement, values)
        except sqlite3.Error as exc:
            self._failure = (statement, exc)

    def _settle(self, pending_max: int) -> None:
        """Wait for the oldest statements until at most ``pending_max`` are pending,
        keeping the first failure."""
        while len(self._pending) > pending_max:
            statement, future = self._pending.popleft()
            try:
                future.result()
            except BaseException as exc:  # the first one is raised by finish()
                if self._failure is None:
                    self._failure = (statement, exc)

    def _close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


@lru_cache(maxsize=256)
def _multi_insert(table: str, columns: tuple[str, ...], rows: int) -> str:
    """INSERT INTO table (columns) VALUES (?, …), … for ``rows`` rows (names are the
    schema's own, quoted)."""
    placeholders = "(" + ", ".join("?" for _ in columns) + ")"
    names = ", ".join(f'"{name}"' for name in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ' + ", ".join([placeholders] * rows)


class EntryStream:
    """Log rows sent to the database while the sequencer is still judging the rest of
    its batch, so the database checks each row (gapless and leaf triggers) and indexes
    it on another core while the writer judges the next entries, instead of all at once
    after them. PostgreSQL: one COPY (CopyStream) stays open through the admission.
    SQLite: rows go in chunks of SQLITE_INSERT_ROWS_MAX to a SqliteStream's helper
    thread. insert_entries() ends it. Use as a context manager around the admission and
    the insert."""

    def __init__(self, connection: Connection) -> None:
        self._copy: CopyStream | None = None
        self._sqlite: SqliteStream | None = None
        self._buffer: list[tuple[object, ...]] = []
        self._sent = 0
        if connection.dialect.name == "postgresql":
            self._copy = CopyStream(connection, _LOG_TABLE, ENTRY_COLUMNS)
        else:
            self._sqlite = SqliteStream(connection)

    @property
    def sent(self) -> int:
        """Rows handed to the database so far (sent or buffered for it)."""
        return self._sent

    def __enter__(self) -> EntryStream:
        return self

    def __exit__(self, *failure: Any) -> None:
        if self._copy is not None:
            self._copy.__exit__(*failure)
        if self._sqlite is not None:
            self._sqlite.__exit__(*failure)

    def add(self, entry: StoredEntry) -> None:
        """Hand one row over now, in seq order."""
        self._sent += 1
        if self._copy is not None:
            self._copy.add(_entry_row(entry))
        elif self._sqlite is not None:
            self._buffer.append(_entry_row(entry))
            if len(self._buffer) >= SQLITE_INSERT_ROWS_MAX:
                self._flush()

    def _flush(self) -> None:
        if self._sqlite is not None and self._buffer:
            self._sqlite.add_all(_LOG_TABLE, ENTRY_COLUMNS, self._buffer)
            self._buffer = []

    def finish(self) -> None:
        if self._copy is not None:
            self._copy.finish()
        if self._sqlite is not None:
            self._flush()
            self._sqlite.finish()


def insert_entries(
    connection: Connection, entries: Sequence[StoredEntry], stream: EntryStream | None = None
) -> None:
    """Insert log rows in the caller's transaction, in the given (seq) order, so the
    gapless trigger checks each row against the one before. PostgreSQL: one COPY (the
    rest of ``stream``'s, when it sent the first rows already); SQLite: one executemany
    of the driver. Both skip SQLAlchemy's per-row work."""
    if stream is not None and stream.sent:
        invariant(stream.sent <= len(entries), "more rows streamed than the batch holds")
        for entry in entries[stream.sent :]:
            stream.add(entry)
        stream.finish()
        return
    rows = [_entry_row(e) for e in entries]
    if connection.dialect.name == "postgresql":
        copy_rows(connection, _LOG_TABLE, ENTRY_COLUMNS, rows)
    else:
        execute_many(connection, _LOG_TABLE.insert(), ENTRY_COLUMNS, rows)


def execute_many(
    connection: Connection,
    statement: Insert,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
) -> None:
    """Run ``statement`` once per row through the driver's executemany. The values are
    plain int, str, bytes or None (no type processing needed), given per row in the
    order of ``columns``. No rows run nothing (SQLAlchemy would run the statement
    once with no parameters)."""
    if not rows:
        return
    compiled = statement.compile(dialect=connection.dialect)
    params: Sequence[Sequence[object]] | list[dict[str, object]]
    if not compiled.positional or compiled.positiontup is None:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    elif list(compiled.positiontup) == list(columns):
        params = rows
    else:
        order = [columns.index(name) for name in compiled.positiontup]
        params = [tuple(row[index] for index in order) for row in rows]
    connection.exec_driver_sql(compiled.string, params)


def _copy_statement(table: str, columns: Sequence[str]) -> sql.Composed:
    """COPY in PostgreSQL's binary format: neither side formats or parses text (bytea as
    hex, integers as digits), so each row costs less on both sides."""
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def _copy_types(table: Table, columns: Sequence[str]) -> list[str]:
    """The PostgreSQL type of each column, which binary COPY needs (the values are plain
    int, str, bytes or None)."""
    types = []
    for name in columns:
        kind = table.c[name].type
        if isinstance(kind, BigInteger):
            types.append("int8")
        elif isinstance(kind, Integer):
            types.append("int4")
        elif isinstance(kind, LargeBinary):
            types.append("bytea")
        elif isinstance(kind, String):  # Text and String
            types.append("text")
        else:
            raise TypeError(f"no COPY type for column {table.name}.{name} ({kind})")
    return types


_LOG_TABLE: Table = LogEntry.__table__  # type: ignore[assignment]


def _driver(connection: Connection) -> psycopg.Connection[Any]:
    driver = connection.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError("COPY needs a psycopg connection")
    return driver


@contextmanager
def _as_dbapi_error(connection: Connection, statement: sql.Composed) -> Iterator[None]:
    """A psycopg failure raised as SQLAlchemy's DBAPIError subclass for it
    (IntegrityError for a trigger's refusal), as an executemany would raise it."""
    try:
        yield
    except psycopg.Error as exc:
        driver = connection.connection.driver_connection
        raise DBAPIError.instance(
            statement.as_string(driver), None, exc, psycopg.Error, dialect=connection.dialect
        ) from exc


def copy_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
) -> None:
    """PostgreSQL COPY of ``rows`` into ``table`` within the connection's transaction.
    Row triggers fire for every row, in order. A failure is raised as SQLAlchemy's
    DBAPIError subclass for it (IntegrityError for a trigger's refusal), as an
    executemany would raise it."""
    with CopyStream(connection, table, columns) as stream:
        stream.add_all(rows)


def read_entries(connection: Connection, start: int, end: int) -> Iterator[StoredEntry]:
    """Entries with start <= seq < end, in order, read in bounded chunks."""
    position = start
    while position < end:
        stop = min(end, position + READ_CHUNK_ENTRIES)
        rows = connection.execute(
            select(LogEntry)
            .where(LogEntry.seq >= position, LogEntry.seq < stop)
            .order_by(LogEntry.seq)
        )
        for row in rows:
            yield StoredEntry(
                int(row.seq),
                row.entry_id,
                bytes(row.entry_hash),
                row.kind,
                row.signer,
                row.logged,
                bytes(row.leaf),
                bytes(row.leaf_hash),
            )
        position = stop


def read_entries_of_kinds(
    connection: Connection, kinds: Sequence[str], start: int, end: int
) -> list[StoredEntry]:
    """Entries of ``kinds`` with start <= seq < end, in order: one query, for kinds that
    are rare (the declarations of keys). The kind column is the leaf's own (the triggers
    read it back from the leaf's JSON), so no such leaf is missed."""
    rows = connection.execute(
        select(LogEntry)
        .where(LogEntry.seq >= start, LogEntry.seq < end, LogEntry.kind.in_(kinds))
        .order_by(LogEntry.seq)
    )
    return [
        StoredEntry(
            int(row.seq),
            row.entry_id,
            bytes(row.entry_hash),
            row.kind,
            row.signer,
            row.logged,
            bytes(row.leaf),
            bytes(row.leaf_hash),
        )
        for row in rows
    ]


def read_entry(connection: Connection, seq: int) -> StoredEntry | None:
    return next(read_entries(connection, seq, seq + 1), None)


# Built once: building the statement each time cost more than running it.
_NEWEST_CHECKPOINTS = (
    select(Checkpoint.size, Checkpoint.root, Checkpoint.note, Checkpoint.signed)
    .order_by(Checkpoint.size.desc())
    .limit(bindparam("limit"))
)


@lru_cache(maxsize=256)
def keyed_sql(dialect: str, table: str, keys: int) -> str:
    """The driver-level SQL DbTiles reads ``keys`` (level, idx) rows of ``table`` with
    on ``dialect``, as (level, idx, data): each key one probe of the primary key
    (tests/ledger/test_store.py checks both plans). PostgreSQL: a row-value IN list,
    planned as one index scan per key (a join with unnest() of key arrays is planned as
    a hash join over a full scan of the table); one text per key count, which psycopg
    prepares after a few runs. SQLite: a row-value IN is a full scan there, so the keys
    come as one JSON array (parameter 1) that drives the loop (CROSS JOIN fixes the
    join order); one text, in sqlite3's statement cache."""
    column = _KEYED_COLUMNS[table]
    if dialect == "postgresql":
        listed = ", ".join(["(%s::integer, %s::bigint)"] * keys)
        return f"SELECT level, idx, {column} FROM {table} WHERE (level, idx) IN ({listed})"
    return (
        f"SELECT t.level, t.idx, t.{column} FROM json_each(?1) AS k CROSS JOIN {table} AS t "
        "ON t.level = json_extract(k.value, '$[0]') AND t.idx = json_extract(k.value, '$[1]')"
    )


@lru_cache(maxsize=256)
def proof_sql(dialect: str, keys: int, head: bool = False) -> str:
    """The tiles and the blobs of ``keys`` keys, and with ``head`` the size and root of the
    newest checkpoint row, in one statement: rows of (0 for a tile, 1 for a blob, 3 for
    the head; level or size; idx; data). No leaf: a proof takes the leaf's hash from the
    level-0 tile it reads (DbTiles.tile_leaf_hash), which the check against the root
    authenticates; at 10 M entries the leaf row was the one read that missed the cache
    (a random page of the largest table)."""
    tiles, nodes = (keyed_sql(dialect, table, keys) for table in _KEYED_COLUMNS)
    statement = f"SELECT 0, * FROM ({tiles}) AS a UNION ALL SELECT 1, * FROM ({nodes}) AS b"
    if head:
        statement += (
            " UNION ALL SELECT 3, size, 0, root FROM"
            " (SELECT size, root FROM checkpoints ORDER BY size DESC LIMIT 1) AS c"
        )
    return statement


_KEYED_COLUMNS = {"merkle_tiles": "hashes", "merkle_tile_nodes": "nodes"}
LEAF_SQL = {
    "postgresql": "SELECT leaf FROM log_entries WHERE seq = %s::bigint",
    "sqlite": "SELECT leaf FROM log_entries WHERE seq = ?",
}
_TileRows = dict[tuple[int, int], bytes]
_TILE, _BLOB, _HEAD = 0, 1, 3  # proof_sql()'s row kinds


def driver_rows(
    connection: Connection,
    statement: str,
    params: Sequence[object],
    *,
    outside_transaction: bool = False,
) -> list[Any]:
    """Run driver-level SQL (%s placeholders on PostgreSQL, ? on SQLite) in the
    connection's transaction, if it has one; PostgreSQL returns binary, not hex text.
    For the per-proof reads, where SQLAlchemy's statement handling cost more than the
    look-ups; on SQLite it also opens no write transaction (SQLAlchemy begins every one
    IMMEDIATE), so a proof never waits for the writer's lock. With
    ``outside_transaction``, a PostgreSQL connection not yet in a transaction reads
    outside one too, as SQLite does (no BEGIN, and no ROLLBACK when the pool takes the
    connection back: two round trips of a proof's four); for reads that need no
    snapshot shared with other statements (the log only grows)."""
    driver = connection.connection.driver_connection
    if isinstance(driver, psycopg.Connection):
        idle = driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        autocommit = outside_transaction and idle and not driver.autocommit
        if autocommit:
            driver.autocommit = True
        try:
            with driver.cursor(binary=True) as cursor:
                cursor.execute(statement, params)
                return cursor.fetchall()
        finally:
            if autocommit:
                driver.autocommit = False
    invariant(isinstance(driver, sqlite3.Connection), "a database driver this code knows")
    assert isinstance(driver, sqlite3.Connection)
    return driver.execute(statement, params).fetchall()


class DbTiles:
    """TileReader over merkle_tiles and merkle_tile_nodes: one query per call, each key
    one probe of the primary key, at the driver level (driver_rows).

    For a proof (``prefetch_nodes``), read_tiles also reads, in the same round trip,
    the blobs of the same keys (read_nodes then serves them: the blobs a proof needs
    are of tiles it reads) and, with ``read_head``, the newest checkpoint row's (size,
    root) (then in ``head``): a proof costs one query. Not for the writer, which reads
    many tiles and few blobs."""

    def __init__(
        self,
        connection: Connection,
        *,
        prefetch_nodes: bool = False,
        read_head: bool = False,
    ) -> None:
        self.connection = connection
        self._dialect = connection.dialect.name
        self._prefetch = prefetch_nodes
        self._read_head = read_head
        self.head: tuple[int, bytes] | None = None  # (size, root) of the newest row, if read
        self._tiles: _TileRows = {}  # the tiles a proof read (prefetch_nodes), for tile_leaf_hash
        self._nodes: _TileRows = {}
        self._fetched: set[tuple[int, int]] = set()

    def _params(self, keys: list[tuple[int, int]], copies: int) -> list[object]:
        if self._dialect == "postgresql":
            flat: list[object] = list(chain.from_iterable(keys))
            return flat * copies
        return [json.dumps(keys)]

    def _read(self, table: str, keys: Sequence[tuple[int, int]]) -> _TileRows:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        statement = keyed_sql(self._dialect, table, len(wanted))
        rows = driver_rows(self.connection, statement, self._params(wanted, 1))
        return {(int(row[0]), int(row[1])): bytes(row[2]) for row in rows}

    def read_tiles(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        if not self._prefetch:
            return self._read("merkle_tiles", keys)
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        statement = proof_sql(self._dialect, len(wanted), self._read_head)
        tiles: _TileRows = {}
        rows = driver_rows(
            self.connection, statement, self._params(wanted, 2), outside_transaction=True
        )
        for kind, level, index, data in rows:
            if kind == _TILE:
                tiles[(int(level), int(index))] = bytes(data)
            elif kind == _BLOB:
                self._nodes[(int(level), int(index))] = bytes(data)
            else:
                invariant(kind == _HEAD, f"proof_sql row of kind {kind}")
                self.head = (int(level), bytes(data))
        self._fetched.update(wanted)
        self._tiles.update(tiles)
        self._read_head = False  # read once
        return tiles

    def tile_leaf_hash(self, seq: int) -> bytes | None:
        """The hash of leaf ``seq`` as the level-0 tile a proof read says (None if no such
        tile was read or it stops short of ``seq``). Unchecked: the caller proves it."""
        data = self._tiles.get((0, seq // TILE_WIDTH))
        start = (seq % TILE_WIDTH) * HASH_SIZE
        if data is None or len(data) < start + HASH_SIZE:
            return None
        return data[start : start + HASH_SIZE]

    def read_leaf(self, seq: int) -> bytes | None:
        """The leaf of ``seq`` (None if the log has no such row)."""
        rows = driver_rows(
            self.connection, LEAF_SQL[self._dialect], [seq], outside_transaction=True
        )
        return bytes(rows[0][0]) if rows else None

    def read_nodes(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        missing = [key for key in keys if key not in self._fetched]
        found = {key: self._nodes[key] for key in keys if key in self._nodes}
        if missing:
            found.update(self._read("merkle_tile_nodes", missing))
        return found


def write_nodes(connection: Connection, nodes: Mapping[tuple[int, int], bytes]) -> None:
    """Store the inner nodes of tiles that just became full (written once, never changed)."""
    if not nodes:
        return
    connection.execute(
        MerkleTileNodes.__table__.insert(),  # type: ignore[attr-defined]
        [
            {"level": level, "idx": index, "nodes": data}
            for (level, index), data in sorted(nodes.items())
        ],
    )


def write_tiles(connection: Connection, tiles: Mapping[tuple[int, int], bytes]) -> None:
    """Insert new tiles and extend partial ones (the grow-only trigger checks prefixes)."""
    if not tiles:
        return
    table = MerkleTile.__table__
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)  # type: ignore[arg-type]
    statement = statement.on_conflict_do_update(
        index_elements=["level", "idx"], set_={"hashes": statement.excluded.hashes}
    )
    connection.execute(
        statement,
        [
            {"level": level, "idx": index, "hashes": data}
            for (level, index), data in sorted(tiles.items())
        ],
    )


def insert_checkpoint(connection: Connection, checkpoint: StoredCheckpoint) -> None:
    connection.execute(
        Checkpoint.__table__.insert(),  # type: ignore[attr-defined]
        {
            "size": checkpoint.size,
            "root": checkpoint.root,
            "note": checkpoint.note,
            "signed": checkpoint.signed,
        },
    )


def insert_reports(connection: Connection, reports: Sequence[tuple[str, int, bytes]]) -> None:
    """Store night reports (day, seq of its closing entry, JCS bytes)."""
    if reports:
        connection.execute(
            NightReport.__table__.insert(),  # type: ignore[attr-defined]
            [{"day": day, "seq": seq, "report": report} for day, seq, report in reports],
        )


def read_report(connection: Connection, day: str) -> tuple[int, bytes] | None:
    """The stored report of business ``day`` and its entry's seq (unverified bytes)."""
    row = connection.execute(
        select(NightReport.seq, NightReport.report).where(NightReport.day == day)
    ).first()
    return None if row is None else (int(row[0]), bytes(row[1]))


def report_days(connection: Connection) -> list[tuple[str, int]]:
    """Every stored report's (day, seq), by day."""
    rows = connection.execute(select(NightReport.day, NightReport.seq).order_by(NightReport.day))
    return [(str(row[0]), int(row[1])) for row in rows]


def latest_checkpoint(connection: Connection) -> StoredCheckpoint | None:
    """The newest stored checkpoint row (unverified): read at the driver level, as every
    proof served reads it (driver_rows)."""
    rows = driver_rows(connection, _LATEST_CHECKPOINT, (), outside_transaction=True)
    if not rows:
        return None
    size, root, note, signed = rows[0]
    return StoredCheckpoint(int(size), bytes(root), str(note), str(signed))


_LATEST_CHECKPOINT = "SELECT size, root, note, signed FROM checkpoints ORDER BY size DESC LIMIT 1"


def recent_checkpoints(connection: Connection, limit: int) -> list[StoredCheckpoint]:
    """Up to ``limit`` stored checkpoints, largest size first (unverified rows)."""
    rows = connection.execute(_NEWEST_CHECKPOINTS, {"limit": limit})
    return [StoredCheckpoint(int(r.size), bytes(r.root), r.note, r.signed) for r in rows]


def cosigned_sizes(connection: Connection, witness: str) -> Iterator[int]:
    """Sizes with a stored cosignature row by ``witness``, largest first (unverified:
    the caller stops at the first that verifies, so planted rows cost time, never trust).
    """
    rows = connection.execute(
        select(Cosignature.size)
        .where(Cosignature.witness == witness)
        .distinct()
        .order_by(Cosignature.size.desc())
    )
    for row in rows:
        yield int(row.size)


def checkpoint_at(connection: Connection, size: int) -> StoredCheckpoint | None:
    row = connection.execute(select(Checkpoint).where(Checkpoint.size == size)).first()
    if row is None:
        return None
    return StoredCheckpoint(int(row.size), bytes(row.root), row.note, row.signed)


def insert_cosignature(
    connection: Connection, size: int, witness: str, timestamp_s: int, line: str
) -> None:
    connection.execute(
        Cosignature.__table__.insert(),  # type: ignore[attr-defined]
        {"size": size, "witness": witness, "timestamp_s": timestamp_s, "line": line},
    )


def cosignature_lines(connection: Connection, size: int) -> list[str]:
    rows = connection.execute(
        select(Cosignature.line).where(Cosignature.size == size).order_by(Cosignature.witness)
    )
    return [str(row.line) for row in rows]


def last_cosigned_size(connection: Connection, witness: str) -> int | None:
    value = connection.execute(
        select(func.max(Cosignature.size)).where(Cosignature.witness == witness)
    ).scalar()
    return None if value is None else int(value)
