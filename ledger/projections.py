"""Projection tables: the State's rows, stored as sealed versions.

Every change to a projection row is stored as a new *version* of it (the seq of the entry
that wrote it) with a seal (ledger.seal); rows are never updated or deleted (triggers
refuse it), so the current row of a key is its newest version. The writer reads only
versions whose seal verifies; readers that hold no operator key (API, reconciliation)
read the newest version, and `alliance doctor` reports any version whose seal fails.

Writes are plain inserts: one COPY per table on PostgreSQL, one executemany on SQLite.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import threading
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    LargeBinary,
    MetaData,
    Select,
    Table,
    Text,
    and_,
    delete,
    func,
    select,
)

from ledger import store
from ledger.collector import collection_deferred
from ledger.rows import TABLES, Row
from ledger.seal import Sealer
from ledger.state import WRITER_PAGED_TABLES, State
from ledger.tables import LogEntry
from schemas.errors import invariant
from schemas.limits import PAGE_READ_KEYS_MAX

metadata = MetaData()
VERSION = "version"
SEAL = "seal"


# Indexes beyond the key, for the readers' joins (ledger.reads).
READ_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "obligations": (("debtor", VERSION), ("creditor", VERSION)),
    "penalties": (("member", VERSION),),
    "endorsement_dues": (("region", VERSION),),
}


# Field names per table, in column order (without version and seal). TABLES holds the
# row types as plain types (calling one with a stored row's values is untyped anyway).
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    name: row_type._fields  # type: ignore[attr-defined]
    for name, (row_type, _) in TABLES.items()
}
invariant(all(len(names) > 1 for names in FIELD_NAMES.values()), "a one-column projection")


def _table(name: str, row_type: type, keys: tuple[str, ...]) -> Table:
    hints = typing.get_type_hints(row_type)
    columns = []
    for field in FIELD_NAMES[name]:
        hint = hints[field]
        is_int = hint is int or int in typing.get_args(hint)
        columns.append(
            Column(
                field,
                BigInteger if is_int else Text,
                nullable=type(None) in typing.get_args(hint),
            )
        )
    columns.append(Column(VERSION, BigInteger, nullable=False))
    columns.append(Column(SEAL, LargeBinary, nullable=False))
    indexes = [Index(f"{name}_key_version", *keys, VERSION)]
    for fields in READ_INDEXES.get(name, ()):
        indexes.append(Index(f"{name}_by_{'_'.join(fields)}", *fields))
    return Table(name, metadata, *columns, *indexes)


PROJECTION_TABLES: dict[str, Table] = {
    name: _table(name, row_type, keys) for name, (row_type, keys) in TABLES.items()
}
# The log size each batch's projection writes correspond to, sealed.
PROJECTION_HEADS = Table(
    "projection_heads",
    metadata,
    Column("size", BigInteger, nullable=False),
    Column(SEAL, LargeBinary, nullable=False),
    Index("projection_heads_size", "size"),
)
SEALED_TABLES = (*PROJECTION_TABLES, PROJECTION_HEADS.name)


@dataclass(frozen=True, slots=True)
class Loaded:
    """The state the sealed projections hold, and how many stored rows failed their seal."""

    state: State
    forged_rows: int


def _sealed(
    sealer: Sealer, name: str, changed: Sequence[tuple[tuple[object, ...], int]]
) -> list[tuple[object, ...]]:
    """Sealer.rows() in one pass: (values…, version, seal) per changed row of ``name``."""
    seal = sealer.sealer(name)
    rows = []
    for row, version in changed:
        # The row is its values, but the seal is over a plain tuple: orjson refuses a
        # tuple subclass (the seal would fall back to repr(), slow and other bytes). A
        # full slice of a tuple subclass is a plain tuple, the fastest copy to one.
        fields = row[:]
        rows.append((*fields, version, seal(fields, version)))
    return rows


def write_changes(connection: Connection, state: State, sealer: Sealer) -> int:
    """Insert a sealed version of every row the state changed since the last write, and
    the sealed head marker of ``state.size``; returns the row count."""
    changed = [(table.name, table.take_changed()) for table in state.all_tables()]
    written = write_rows(connection, sealer, changed)
    write_head(connection, sealer, state.size)
    return written


def write_rows(
    connection: Connection,
    sealer: Sealer,
    changed: Sequence[tuple[str, Sequence[tuple[tuple[object, ...], int]]]],
) -> int:
    """Insert a sealed version of each (row, version) of each table named; returns the
    count (an import stores each chunk's changes so, as the audit's replay makes them)."""
    return _store(connection, sealer, [(name, rows) for name, rows in changed if rows])


def write_head(connection: Connection, sealer: Sealer, size: int) -> None:
    """The sealed head marker of log size ``size``: every row version up to it is stored."""
    connection.execute(PROJECTION_HEADS.insert(), {"size": size, SEAL: sealer.head(size)})


def _store(
    connection: Connection,
    sealer: Sealer,
    changed: Sequence[tuple[str, Sequence[tuple[tuple[object, ...], int]]]],
) -> int:
    """Insert a sealed version of each (row, version) of each table; returns the count.

    PostgreSQL: one COPY per table, each sent before the next table's rows are sealed
    and waited for only after, so the server stores one table while the writer seals
    the next. SQLite: multi-row INSERTs on a helper thread (store.SqliteStream), each
    table's sent before the next table is sealed, all waited for before returning."""
    written = 0
    if connection.dialect.name == "postgresql":
        sealed = _sealed(sealer, *changed[0]) if changed else []
        for index, (name, _) in enumerate(changed):
            columns = (*FIELD_NAMES[name], VERSION, SEAL)
            with store.CopyStream(connection, PROJECTION_TABLES[name], columns) as stream:
                stream.add_all(sealed)
                written += len(sealed)
                if index + 1 < len(changed):
                    sealed = _sealed(sealer, *changed[index + 1])
    else:
        # A helper thread inserts each table's rows while the next table is sealed.
        with store.SqliteStream(connection) as rows_stream:
            for name, rows in changed:
                sealed = _sealed(sealer, name, rows)
                columns = (*FIELD_NAMES[name], VERSION, SEAL)
                rows_stream.add_all(PROJECTION_TABLES[name], columns, sealed)
                written += len(sealed)
    return written


def write_all(connection: Connection, state: State, sealer: Sealer) -> None:
    """Store every row of ``state`` (into emptied tables: rebuild, doctor and import): a
    replay's, whose paged rows, if it spilled them (ledger.spill), are streamed back from
    the spill file a chunk at a time. Never the writer's own state (it holds only a
    working set of what these tables already hold). The cyclic collector waits (see
    ledger.collector): this makes a few tuples per row while the whole state is alive."""
    invariant(not isinstance(state.source, SealedRows), "write_all() of the writer's state")
    with collection_deferred():
        _write_all(connection, state, sealer)


def _write_all(connection: Connection, state: State, sealer: Sealer) -> None:
    source = state.source
    for table in state.all_tables():
        if table.pager is None:
            table.changed.update(dict.fromkeys(table.rows_by_key))
    write_changes(connection, state, sealer)
    if source is None:
        return
    for name in state.paged:
        invariant(not state.table(name).rows_by_key, f"{name} was not spilled before")
        chunk: list[tuple[Row, int]] = []
        for row, version in source.scan(name, state.size):
            chunk.append((row, version))
            if len(chunk) >= PAGE_READ_KEYS_MAX:
                _store(connection, sealer, [(name, chunk)])
                chunk = []
        if chunk:
            _store(connection, sealer, [(name, chunk)])


def sealed_head(connection: Connection, sealer: Sealer, log_size: int) -> int:
    """The newest log size, at most ``log_size``, whose head marker verifies (0: none).
    Markers are tried newest first until one verifies, with no cap: planted markers
    cost a look each, and can never push the genuine one out of reach."""
    rows = connection.execute(
        select(PROJECTION_HEADS.c.size, PROJECTION_HEADS.c.seal)
        .where(PROJECTION_HEADS.c.size <= log_size)
        .order_by(PROJECTION_HEADS.c.size.desc())
    )
    for size, seal in rows:
        if sealer.head_ok(int(size), bytes(seal)):
            return int(size)
    return 0


def load_state(
    connection: Connection, sealer: Sealer, log_size: int, *, paged: bool = False
) -> Loaded:
    """The state as of the newest sealed head at most ``log_size``, from the newest
    version of each row whose seal verifies (an older version is never checked once a
    newer one verified); the derived indexes come out as a replay builds them. The
    caller replays the log from ``state.size`` on (verifying every signature): rows and
    markers it cannot verify are never built upon. ``paged``: the tables of
    ledger.state.WRITER_PAGED_TABLES are left out (the caller attaches a SealedRows source), so
    a start reads only what does not grow with the log."""
    head = sealed_head(connection, sealer, log_size)
    state = State()
    forged = Forged()
    if head == 0:
        return Loaded(state, 0)
    for name in PROJECTION_TABLES:
        if paged and name in WRITER_PAGED_TABLES:
            continue
        row_type = TABLES[name][0]
        put = state.put
        for fields, version in _newest_sealed(connection, sealer, name, head, None, forged):
            put(row_type(*fields), version, changed=False)
    # Replay appends each member's penalties in seq order; keys were read descending.
    for seqs in state.member_penalties.values():
        seqs.sort()
    state.size = head
    logged = connection.execute(select(LogEntry.logged).where(LogEntry.seq == head - 1)).scalar()
    state.last_logged = None if logged is None else str(logged)
    return Loaded(state, forged.rows)


@dataclass
class Forged:
    """How many stored row versions failed their seal (and were skipped)."""

    rows: int = 0


def _newest_sealed(
    connection: Connection,
    sealer: Sealer,
    name: str,
    below: int | None,
    prefixes: Sequence[tuple[object, ...]] | None,
    forged: Forged,
) -> Iterator[tuple[tuple[object, ...], int]]:
    """(fields, version) of the newest version of each row of projection ``name`` whose
    seal verifies, written before seq ``below`` (None: any), of every key or of the keys
    under ``prefixes`` (each the first columns of the key), in descending key order.
    Read through the driver's own cursor (plain tuples, fetched in C): at a start of a
    log without paging this loop runs for every stored row version."""
    keys = TABLES[name][1]
    width = len(FIELD_NAMES[name])
    key_of = operator.itemgetter(*[FIELD_NAMES[name].index(key) for key in keys])
    ok = sealer.checker(name)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        current: object = None
        for values in _versions(connection, cursor, name, below, prefixes):
            key = key_of(values)
            if key == current:
                continue  # an older version of a row already taken
            fields, version = tuple(values[:width]), values[width]
            if not ok(fields, version, bytes(values[width + 1])):
                forged.rows += 1
                continue  # not ours: an older version of this key may still be
            current = key
            yield fields, version
    finally:
        cursor.close()


def _versions(
    connection: Connection,
    cursor: typing.Any,
    name: str,
    below: int | None,
    prefixes: Sequence[tuple[object, ...]] | None,
) -> Iterator[typing.Any]:
    """Every stored version (values…, version, seal) of the rows asked for, each key's
    versions together, newest first: every column descending, the (keys…, version)
    index read backwards, no sort."""
    table = PROJECTION_TABLES[name]
    keys = TABLES[name][1]
    order = [*[table.c[key].desc() for key in keys], table.c[VERSION].desc()]
    if prefixes is None:
        query = select(table).order_by(*order)
        if below is not None:
            query = query.where(table.c[VERSION] < below)
        dialect = connection.dialect
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        cursor.execute(sql)
        yield from cursor
        return
    invariant(below is not None, "a keyed read is of a state's size")
    if not prefixes:
        return
    length = len(prefixes[0])
    invariant(all(len(p) == length for p in prefixes), "prefixes of one length per read")
    # The prefixes go as one JSON array parameter (orjson writes it in C), joined on the
    # (keys…, version) index. SQLite: a third of the time of one look-up per prefix
    # (each a round of sqlite3's statement machinery); PostgreSQL: a tenth of the time
    # psycopg takes to write the same keys as one array per column.
    keys_json = orjson.dumps(prefixes).decode()
    if connection.dialect.name == "postgresql":
        cursor.execute(_pg_keyed_rows(name, length), [keys_json, below])
        yield from cursor
        return
    cursor.execute(_sqlite_keyed_rows(name, length), (keys_json, below))
    yield from cursor.fetchall()


@functools.cache
def _pg_keyed_rows(name: str, length: int) -> str:
    """One statement per (table, prefix length) whatever the keys: the prefixes come as
    one JSON array (each prefix an array of its key columns' values), each element cast
    to its column's type and joined on the (keys…, version) index (psycopg prepares
    it; tests/ledger/test_paging.py reads the plan back)."""
    table = PROJECTION_TABLES[name]
    keys = TABLES[name][1]
    joined = " AND ".join(
        f't."{key}" = CAST(k.value ->> {index} AS '
        f"{'bigint' if isinstance(table.c[key].type, BigInteger) else 'text'})"
        for index, key in enumerate(keys[:length])
    )
    return (
        f"SELECT {_columns(name, 't.')} FROM json_array_elements(CAST(%s AS json)) AS k(value) "
        f"JOIN {name} AS t ON {joined} "
        f"WHERE t.{VERSION} < %s ORDER BY {_order(name, 't.')}"
    )


@functools.cache
def _sqlite_keyed_rows(name: str, length: int) -> str:
    """The rows under any of the prefixes in the JSON array parameter (each prefix an
    array of its key columns' values), json_each as the outer loop and the table's
    (keys…, version) index as the inner one (tests/ledger/test_paging.py checks the
    plan)."""
    keys = TABLES[name][1]
    joined = " AND ".join(
        f"t.\"{key}\" = json_extract(k.value, '$[{index}]')"
        for index, key in enumerate(keys[:length])
    )
    return (
        f"SELECT {_columns(name, 't.')} FROM json_each(?) AS k JOIN {name} AS t "
        f"ON {joined} WHERE t.{VERSION} < ? ORDER BY {_order(name, 't.')}"
    )


def _columns(name: str, alias: str) -> str:
    """Every stored column of ``name``, quoted (a field may be a reserved word)."""
    return ", ".join(f'{alias}"{column}"' for column in (*FIELD_NAMES[name], VERSION, SEAL))


def _order(name: str, alias: str) -> str:
    """Each key's versions together, newest first (the key-version index backwards)."""
    keys = TABLES[name][1]
    return ", ".join([*[f'{alias}"{key}" DESC' for key in keys], f"{alias}{VERSION} DESC"])


class SealedRows:
    """The writer's RowSource (ledger.state): the paged projections' rows from their
    sealed tables, only versions whose seal verifies, the newest of each key below the
    state's size.

    It reads on a connection of its own, never the batch's: the batch streams its rows
    (a COPY on PostgreSQL, a helper thread on SQLite) while entries are still being
    judged, and the rows a batch reads were all committed by earlier batches (its own
    are in memory; the log lock keeps other writers out). While the writer's batch runs
    (bound()) that connection is kept and what it reads joins the working set; any
    other thread reads on a fresh connection and nothing it reads is kept."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.sealer = sealer
        self.forged = Forged()
        self._bound: tuple[Connection, int] | None = None

    @contextlib.contextmanager
    def bound(self) -> Iterator[None]:
        """Serve the writer's batch (this thread) until the block ends."""
        invariant(self._bound is None, "a source serves one batch at a time")
        with self.engine.connect() as connection:
            self._bound = (connection, threading.get_ident())
            try:
                yield
            finally:
                self._bound = None

    def caches_here(self) -> bool:
        return self._bound is not None and self._bound[1] == threading.get_ident()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection]:
        if self.caches_here():
            assert self._bound is not None
            yield self._bound[0]
        else:
            with self.engine.connect() as connection:
                yield connection

    def _read(
        self, name: str, prefixes: Sequence[tuple[object, ...]] | None, below: int
    ) -> list[tuple[Row, int]]:
        row_type = TABLES[name][0]
        with self._connection() as connection:
            found = _newest_sealed(connection, self.sealer, name, below, prefixes, self.forged)
            return [(row_type(*fields), version) for fields, version in found]

    def fetch(
        self, name: str, prefixes: Sequence[tuple[object, ...]], below: int
    ) -> list[tuple[Row, int]]:
        found: list[tuple[Row, int]] = []
        by_length: dict[int, list[tuple[object, ...]]] = {}
        for prefix in prefixes:
            by_length.setdefault(len(prefix), []).append(prefix)
        for group in by_length.values():
            for start in range(0, len(group), PAGE_READ_KEYS_MAX):
                found += self._read(name, group[start : start + PAGE_READ_KEYS_MAX], below)
        return found

    def scan(self, name: str, below: int) -> list[tuple[Row, int]]:
        return self._read(name, None, below)


def current(name: str) -> Select[typing.Any]:
    """SELECT of the newest version of each row of projection ``name`` (no seal check:
    for readers, which decide nothing)."""
    table = PROJECTION_TABLES[name]
    newer = table.alias("newer")
    keys = TABLES[name][1]
    newest = (
        select(func.max(newer.c[VERSION]))
        .where(and_(*[newer.c[key] == table.c[key] for key in keys]))
        .scalar_subquery()
    )
    return select(*[table.c[field] for field in FIELD_NAMES[name]], table.c[VERSION]).where(
        table.c[VERSION] == newest
    )


def read_all(connection: Connection) -> dict[str, list[tuple[object, ...]]]:
    """The newest version of every projection row, as sorted (values…, version) tuples,
    for byte-for-byte comparison with state_rows()."""
    return {
        name: sorted((tuple(row) for row in connection.execute(current(name))), key=repr)
        for name in PROJECTION_TABLES
    }


def state_rows(state: State) -> dict[str, list[tuple[object, ...]]]:
    """The same shape as read_all(), from an in-memory State."""
    result: dict[str, list[tuple[object, ...]]] = {}
    for table in state.all_tables():
        result[table.name] = sorted(
            ((*row, table.versions[key]) for key, row in table.rows_by_key.items()),
            key=repr,
        )
    return result


def read_sealed(connection: Connection, sealer: Sealer) -> dict[str, list[tuple[object, ...]]]:
    """Like read_all(), from the newest version of each key whose seal verifies (what a
    starting writer would load, every version included)."""
    state = State()
    forged = Forged()
    for name in PROJECTION_TABLES:
        row_type = TABLES[name][0]
        for fields, version in _newest_sealed(connection, sealer, name, None, None, forged):
            state.put(row_type(*fields), version, changed=False)
    return state_rows(state)


def count_forged(connection: Connection, sealer: Sealer) -> dict[str, int]:
    """Per table, the stored row versions (and head markers) whose seal fails."""
    forged: dict[str, int] = {}
    for name, table in PROJECTION_TABLES.items():
        width = len(FIELD_NAMES[name])
        count = 0
        for values in connection.execute(select(table)):
            fields, version, seal = tuple(values[:width]), int(values[width]), values[width + 1]
            count += not sealer.row_ok(name, fields, version, bytes(seal))
        if count:
            forged[name] = count
    heads = connection.execute(select(PROJECTION_HEADS.c.size, PROJECTION_HEADS.c.seal))
    bad_heads = sum(not sealer.head_ok(int(size), bytes(seal)) for size, seal in heads)
    if bad_heads:
        forged[PROJECTION_HEADS.name] = bad_heads
    return forged


def clear(connection: Connection) -> None:
    """Empty every projection table and head marker (inside ledger.maintenance.unguarded:
    they are caches; the log is untouched)."""
    for table in [*PROJECTION_TABLES.values(), PROJECTION_HEADS]:
        connection.execute(delete(table))


def stored_row_count(connection: Connection) -> int:
    return sum(
        int(connection.execute(select(func.count()).select_from(table)).scalar() or 0)
        for table in PROJECTION_TABLES.values()
    )
