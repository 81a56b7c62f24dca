"""Lifting the append-only guards of derived tables, for one transaction.

`alliance doctor --repair` and `alliance rebuild` rewrite tables that are derived from the
leaves (tiles, inner nodes, projections) and drop rows nobody can verify (forged
checkpoints and cosignatures). Triggers refuse that to everyone else; these commands run
as the schema's owner and lift the triggers inside their own transaction, so the guards
are back at commit and nobody else ever sees the tables unguarded. Leaves are never
touched: `log_entries` is not a table this module will open.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, text

from schemas.errors import invariant

NEVER_OPENED = frozenset({"log_entries"})


@contextmanager
def unguarded(connection: Connection, tables: Sequence[str]) -> Iterator[None]:
    """Within the caller's transaction, let ``tables`` be changed freely; restore every
    trigger before returning."""
    invariant(not NEVER_OPENED & set(tables), "the leaves are never unguarded")
    if connection.dialect.name == "postgresql":
        for table in tables:
            connection.exec_driver_sql(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
        yield
        for table in tables:
            connection.exec_driver_sql(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')
        return
    saved = _sqlite_triggers(connection, tables)
    for name, _ in saved:
        connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
    yield
    for _, sql in saved:
        connection.exec_driver_sql(sql)


def _sqlite_triggers(connection: Connection, tables: Sequence[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for table in tables:
        rows = connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": table},
        )
        found += [(str(name), str(sql)) for name, sql in rows]
    return found
