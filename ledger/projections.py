"""Projection tables: written from the State's changed rows in the append transaction,
read back for queries, and compared with a fresh replay by `alliance rebuild`."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping

from sqlalchemy import BigInteger, Column, Connection, MetaData, Table, Text, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from ledger.rows import TABLES, Row
from ledger.state import State

metadata = MetaData()


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


def _upsert(connection: Connection, name: str, rows: list[Row]) -> None:
    table = PROJECTION_TABLES[name]
    keys = list(TABLES[name][1])
    values = [dataclasses.asdict(row) for row in rows]
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), values)


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
