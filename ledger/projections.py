"""Projection tables: written from the State's changed rows in the append transaction,
read back for queries, and compared with a fresh replay by `alliance rebuild`."""

from __future__ import annotations

import dataclasses
import operator
import typing
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    Table,
    Text,
    delete,
    select,
)
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.dialects import postgresql, sqlite

from ledger import store
from ledger.rows import TABLES, Row
from ledger.state import State
from ledger.tables import LogEntry
from schemas.errors import invariant

metadata = MetaData()
# Temporary tables a PostgreSQL bulk upsert stages its rows in (see _postgres_write).
STAGE_PREFIX = "alliance_stage_"


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
                primary_key=field.name in keys,
                autoincrement=False,
                nullable=type(None) in typing.get_args(hint),
            )
        )
    return Table(name, metadata, *columns)


PROJECTION_TABLES: dict[str, Table] = {
    name: _table(name, row_type, keys) for name, (row_type, keys) in TABLES.items()
}
# Field names per table, in column order. Row values are str, int or None, so reading
# the attributes gives what dataclasses.asdict() would, without its per-value deepcopy.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    name: tuple(field.name for field in dataclasses.fields(row_type))
    for name, (row_type, _) in TABLES.items()
}
# A row's values as a tuple in FIELD_NAMES order. attrgetter of two or more names
# returns a tuple; every projection has a key and at least one other column.
invariant(all(len(names) > 1 for names in FIELD_NAMES.values()), "a one-column projection")
ROW_VALUES: dict[str, Callable[[Row], tuple[object, ...]]] = {
    name: operator.attrgetter(*names) for name, names in FIELD_NAMES.items()
}


def _sqlite_upsert(table: Table, keys: tuple[str, ...]) -> sqlite.Insert:
    """INSERT … VALUES (one row) ON CONFLICT (keys) DO UPDATE the other columns."""
    statement = sqlite.insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)


def _postgres_upsert(table: Table, keys: tuple[str, ...]) -> postgresql.Insert:
    """INSERT … SELECT * FROM the table's staging copy ON CONFLICT (keys) DO UPDATE the
    other columns: a whole batch of rows in one statement. Rows must have distinct keys
    (a statement may not update one row twice); the state's changed rows always do."""
    names = [column.name for column in table.columns]
    stage = sql_table(STAGE_PREFIX + table.name, *[sql_column(name) for name in names])
    statement = postgresql.insert(table).from_select(names, select(*[stage.c[n] for n in names]))
    updates = {name: statement.excluded[name] for name in names if name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)


def _postgres_write(connection: Connection, name: str, values: list[tuple[object, ...]]) -> None:
    """COPY the rows into a temporary table shaped like projection ``name``, upsert them
    from there, drop it: the usual PostgreSQL bulk upsert, in the caller's transaction
    (ON COMMIT DROP removes the table on a rollback too)."""
    quote = connection.dialect.identifier_preparer.quote
    stage = STAGE_PREFIX + name
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {quote(stage)} (LIKE {quote(name)}) ON COMMIT DROP"
    )
    store.copy_rows(connection, stage, FIELD_NAMES[name], values)
    connection.execute(POSTGRES_UPSERTS[name])
    connection.exec_driver_sql(f"DROP TABLE {quote(stage)}")


SQLITE_UPSERTS = {name: _sqlite_upsert(t, TABLES[name][1]) for name, t in PROJECTION_TABLES.items()}
POSTGRES_UPSERTS = {
    name: _postgres_upsert(t, TABLES[name][1]) for name, t in PROJECTION_TABLES.items()
}


def _upsert(connection: Connection, name: str, rows: list[Row]) -> None:
    """Upsert ``rows`` (distinct keys) into projection table ``name``, without
    SQLAlchemy's per-row parameter processing (values are plain str, int or None)."""
    values = list(map(ROW_VALUES[name], rows))
    if connection.dialect.name == "postgresql":
        _postgres_write(connection, name, values)
    else:
        store.execute_many(connection, SQLITE_UPSERTS[name], FIELD_NAMES[name], values)


def write_changes(connection: Connection, state: State) -> int:
    """Upsert every row the state changed since the last write; returns the row count."""
    written = 0
    for name, rows in state.take_dirty():
        _upsert(connection, name, rows)
        written += len(rows)
    return written


def write_all(connection: Connection, tables: Mapping[str, Iterable[Row]]) -> None:
    for name, rows in tables.items():
        batch = list(rows)
        if batch:
            _upsert(connection, name, batch)


def clear(connection: Connection) -> None:
    """Empty every projection table (they are caches; the log is untouched)."""
    for table in reversed(list(PROJECTION_TABLES.values())):
        connection.execute(delete(table))


def read_all(connection: Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every projection row, as sorted tuples, for byte-for-byte comparison."""
    result: dict[str, list[tuple[object, ...]]] = {}
    for name, table in PROJECTION_TABLES.items():
        rows = connection.execute(select(table)).all()
        result[name] = sorted((tuple(row) for row in rows), key=repr)
    return result


def state_rows(state: State) -> dict[str, list[tuple[object, ...]]]:
    """The same shape as read_all(), from an in-memory State."""
    return {
        name: sorted(
            (dataclasses.astuple(row) for row in state.tables[name].values()),
            key=repr,
        )
        for name in TABLES
    }


def load_state(connection: Connection) -> State:
    """The state as of the log head, read from the projection tables instead of replaying
    the log. Sound because the projections are written in the same transaction as the
    entries they derive from (and `alliance rebuild` proves them equal to a replay);
    rows are loaded in key order so the derived indexes come out as a replay builds them."""
    state = State()
    for name, table in PROJECTION_TABLES.items():
        row_type = TABLES[name][0]
        order = [table.c[key] for key in TABLES[name][1]]
        for values in connection.execute(select(table).order_by(*order)):
            state.put(row_type(*values))
    state.forget_dirty()  # loaded rows are already stored
    head = connection.execute(
        select(LogEntry.seq, LogEntry.logged).order_by(LogEntry.seq.desc()).limit(1)
    ).first()
    if head is not None:
        state.size = int(head.seq) + 1
        state.last_logged = str(head.logged)
    return state
