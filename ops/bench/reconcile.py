"""`alliance bench reconcile --db URL`: the night read from a database table.

The rows of ``reconciliation.bench.synthetic_night`` are loaded (untimed) into a bare
table ``bench_obligations (seq primary key, kind, debtor, creditor, amount_fen)`` of a
fresh SQLite file or PostgreSQL schema (``ops.bench.append``'s, removed after), by COPY
on PostgreSQL and executemany on SQLite. Then, timed on one driver connection:

* raw: one SQL ``GROUP BY`` of the net positions (each obligation counted as +amount for
  its creditor and -amount for its debtor) and the heap greedy over its result;
* ours: every row streamed in seq order (``fetchmany`` in chunks) and reconciled by
  ``reconciliation.bench.reconcile_rows`` (checks, report, three roots, bytes).

Both see a warm table: it was just written, and neither side reads it first.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from sqlalchemy import BigInteger, Column, Engine, MetaData, Table, Text

from ops.bench.append import POSTGRESQL, _fresh_database
from reconciliation.bench import (
    Row,
    Transfer,
    compare,
    figures,
    raw_greedy,
    reconcile_rows,
    synthetic_rows,
)
from schemas.bodies import CalendarModel
from schemas.errors import ConfigError
from schemas.limits import READ_CHUNK_ENTRIES

TABLE = "bench_obligations"
COLUMNS = "seq, kind, debtor, creditor, amount_fen"
NET_POSITIONS = (
    f"SELECT member, SUM(amount) FROM ("
    f"SELECT creditor AS member, amount_fen AS amount FROM {TABLE}"
    f" UNION ALL SELECT debtor AS member, -amount_fen AS amount FROM {TABLE}"
    f") AS legs GROUP BY member"
)
IN_SEQ_ORDER = f"SELECT {COLUMNS} FROM {TABLE} ORDER BY seq"
INSERT_CHUNK_ROWS = 10_000  # rows per executemany on SQLite: one transaction, bounded lists


def _table() -> Table:
    return Table(
        TABLE,
        MetaData(),
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("kind", Text, nullable=False),
        Column("debtor", Text, nullable=False),
        Column("creditor", Text, nullable=False),
        Column("amount_fen", BigInteger, nullable=False),
    )


def _load(connection: Any, backend: str, rows: Iterator[Row]) -> None:
    """Write the rows through the driver (untimed): COPY on PostgreSQL, one explicit
    transaction of executemany on SQLite (the project's engines put sqlite3 in autocommit
    mode, so BEGIN is explicit)."""
    cursor = connection.cursor()
    try:
        if backend == POSTGRESQL:
            with cursor.copy(f"COPY {TABLE} ({COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            connection.commit()
        else:
            insert = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?)"
            cursor.execute("BEGIN IMMEDIATE")
            while chunk := list(islice(rows, INSERT_CHUNK_ROWS)):
                cursor.executemany(insert, chunk)
            cursor.execute("COMMIT")
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()


def _rows_in_seq_order(connection: Any, backend: str) -> Iterator[Row]:
    """Every row by seq, streamed: a server-side cursor on PostgreSQL (a plain psycopg
    cursor would hold the whole result in the client), sqlite3's own cursor steps."""
    if backend == POSTGRESQL:
        cursor = connection.cursor(name="bench_night")
        cursor.itersize = READ_CHUNK_ENTRIES
    else:
        cursor = connection.cursor()
    try:
        cursor.execute(IN_SEQ_ORDER)
        while chunk := cursor.fetchmany(READ_CHUNK_ENTRIES):
            yield from chunk
    finally:
        cursor.close()


def _raw(connection: Any) -> list[Transfer]:
    cursor = connection.cursor()
    try:
        cursor.execute(NET_POSITIONS)
        # SUM of BIGINT is NUMERIC on PostgreSQL: int() as the raw loop's only extra.
        return raw_greedy((member, int(net)) for member, net in cursor.fetchall())
    finally:
        cursor.close()


Timings = tuple[float, float, int]


def _run(
    engine: Engine, backend: str, obligations: int, members: int, calendar: CalendarModel | None
) -> Timings:
    table = _table()
    table.metadata.create_all(engine)
    pooled = engine.raw_connection()
    try:
        connection = pooled.driver_connection
        if connection is None:
            raise ConfigError("the database engine gave no driver connection")
        # Loaded as drawn, so the process's peak RSS is the reading sides', not the rows'.
        _load(connection, backend, synthetic_rows(obligations, members))
        cutoff_size = 2 * obligations + 1
        timings = compare(
            lambda: _raw(connection),
            lambda: reconcile_rows(_rows_in_seq_order(connection, backend), cutoff_size, calendar),
        )
        connection.rollback()  # psycopg opened a transaction for the reads
        return timings
    finally:
        pooled.close()


def bench_reconcile_db(
    db: str,
    obligations: int = 1_000_000,
    members: int = 100_000,
    calendar: CalendarModel | None = None,
) -> dict[str, object]:
    """The night in a table of ``db``'s backend (a fresh file or schema, dropped after)."""
    with _fresh_database(db) as (backend, engine):
        timings = _run(engine, backend, obligations, members, calendar)
    return figures(backend, obligations, members, timings)
