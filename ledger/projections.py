"""Projection tables: the State's rows, stored as sealed versions.

Every change to a projection row is stored as a new *version* of it (the seq of the entry
that wrote it) with a seal (ledger.seal); rows are never updated or deleted (triggers
refuse it), so the current row of a key is its newest version. The writer reads only
versions whose seal verifies; readers that hold no operator key (API, reconciliation)
read the newest version, and `alliance doctor` reports any version whose seal fails.

Writes are plain inserts: one COPY per table on PostgreSQL, one executemany on SQLite.
"""

from __future__ import annotations

import dataclasses
import operator
import typing
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
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
from ledger.rows import TABLES, Row
from ledger.seal import Sealer
from ledger.state import State
from ledger.tables import LogEntry
from schemas.errors import invariant

metadata = MetaData()
VERSION = "version"
SEAL = "seal"


# Indexes beyond the key, for the readers' joins (ledger.reads).
READ_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "obligations": (("debtor", VERSION), ("creditor", VERSION)),
    "penalties": (("member", VERSION),),
    "endorsement_dues": (("region", VERSION),),
}


def _table(name: str, row_type: type, keys: tuple[str, ...]) -> Table:
    hints = typing.get_type_hints(row_type)
    columns = []
    for field in dataclasses.fields(row_type):
        hint = hints[field.name]
        is_int = hint is int or int in typing.get_args(hint)
        columns.append(
            Column(
                field.name,
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
# Field names per table, in column order (without version and seal).
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    name: tuple(field.name for field in dataclasses.fields(row_type))
    for name, (row_type, _) in TABLES.items()
}
invariant(all(len(names) > 1 for names in FIELD_NAMES.values()), "a one-column projection")
# A row's values as a tuple in FIELD_NAMES order (attrgetter of two or more names).
ROW_VALUES: dict[str, Callable[[Row], tuple[object, ...]]] = {
    name: operator.attrgetter(*names) for name, names in FIELD_NAMES.items()
}


@dataclass(frozen=True, slots=True)
class Loaded:
    """The state the sealed projections hold, and how many stored rows failed their seal."""

    state: State
    forged_rows: int


def _sealed(sealer: Sealer, name: str, changed: list[tuple[Row, int]]) -> list[tuple[object, ...]]:
    """Sealer.rows() in one pass: (values…, version, seal) per changed row of ``name``."""
    values, seal = ROW_VALUES[name], sealer.sealer(name)
    rows = []
    for row, version in changed:
        fields = values(row)
        rows.append((*fields, version, seal(fields, version)))
    return rows


def write_changes(connection: Connection, state: State, sealer: Sealer) -> int:
    """Insert a sealed version of every row the state changed since the last write, and
    the sealed head marker of ``state.size``; returns the row count.

    PostgreSQL: one COPY per table, each sent before the next table's rows are sealed
    and waited for only after, so the server stores one table while the writer seals
    the next. SQLite: multi-row INSERTs on a helper thread (store.SqliteStream), each
    table's sent before the next table is sealed, all waited for before the marker."""
    changed = [(table.name, table.take_changed()) for table in state.all_tables()]
    changed = [(name, rows) for name, rows in changed if rows]
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
    connection.execute(
        PROJECTION_HEADS.insert(), {"size": state.size, SEAL: sealer.head(state.size)}
    )
    return written


def write_all(connection: Connection, state: State, sealer: Sealer) -> None:
    """Store every row of ``state`` (into emptied tables: rebuild and doctor)."""
    for table in state.all_tables():
        table.changed.update(table.rows_by_key)
    write_changes(connection, state, sealer)


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


def load_state(connection: Connection, sealer: Sealer, log_size: int) -> Loaded:
    """The state as of the newest sealed head at most ``log_size``, from the newest
    version of each row whose seal verifies (an older version is never checked once a
    newer one verified); the derived indexes come out as a replay builds them. The
    caller replays the log from ``state.size`` on (verifying every signature): rows and
    markers it cannot verify are never built upon."""
    head = sealed_head(connection, sealer, log_size)
    state = State()
    forged = 0
    if head == 0:
        return Loaded(state, 0)
    for name, table in PROJECTION_TABLES.items():
        forged += _load_table(connection, state, sealer, name, table, head)
    # Replay appends each member's penalties in seq order; keys were read descending.
    for seqs in state.member_penalties.values():
        seqs.sort()
    state.size = head
    logged = connection.execute(select(LogEntry.logged).where(LogEntry.seq == head - 1)).scalar()
    state.last_logged = None if logged is None else str(logged)
    return Loaded(state, forged)


def _load_table(
    connection: Connection,
    state: State,
    sealer: Sealer,
    name: str,
    table: Table,
    head: int | None,
) -> int:
    """Load projection ``name`` into ``state`` (the versions written before ``head``, or
    all of them); returns how many rows failed their seal.
    Read through the driver's own cursor (plain tuples, fetched in C): at a million
    entries this loop runs for every stored row version."""
    row_type, keys = TABLES[name]
    width = len(FIELD_NAMES[name])
    key_of = operator.itemgetter(*[FIELD_NAMES[name].index(key) for key in keys])
    ok = sealer.checker(name)
    # Every column descending: the (keys…, version) index read backwards, no sort. The
    # only bound value is an int, so the statement is compiled with it inline.
    query = select(table).order_by(*[table.c[key].desc() for key in keys], table.c[VERSION].desc())
    if head is not None:
        query = query.where(table.c[VERSION] < head)
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    forged = 0
    try:
        cursor.execute(sql)
        current: object = None
        put = state.put
        for values in cursor:
            key = key_of(values)
            if key == current:
                continue  # an older version of a row already loaded
            fields, version = tuple(values[:width]), values[width]
            if not ok(fields, version, bytes(values[width + 1])):
                forged += 1
                continue  # not ours: an older version of this key may still be
            current = key
            put(row_type(*fields), version, changed=False)
    finally:
        cursor.close()
    return forged


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
        values = ROW_VALUES[table.name]
        result[table.name] = sorted(
            ((*values(row), table.versions[key]) for key, row in table.rows_by_key.items()),
            key=repr,
        )
    return result


def read_sealed(connection: Connection, sealer: Sealer) -> dict[str, list[tuple[object, ...]]]:
    """Like read_all(), from the newest version of each key whose seal verifies (what a
    starting writer would load, every version included)."""
    state = State()
    for name, table in PROJECTION_TABLES.items():
        _load_table(connection, state, sealer, name, table, None)
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
