"""Database engines: SQLite (WAL, BEGIN IMMEDIATE) by default, PostgreSQL via psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from schemas.errors import ConfigError
from schemas.limits import (
    POSTGRES_POOL_SIZE,
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_WAL_AUTOCHECKPOINT_PAGES,
    SQLITE_WAL_SIZE_LIMIT_BYTES,
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's `begin` event issue BEGIN IMMEDIATE instead of pysqlite's own
    # deferred BEGIN, so a writer takes the lock before it reads the head.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: in WAL mode NORMAL may lose the last commits on power loss, and a caller
    # returns only once its entry is durable.
    cursor.execute("PRAGMA synchronous=FULL")
    # Commits leave the copy of the WAL into the database file to a background job
    # (ledger.walcheckpoint) unless the WAL has grown past this bound.
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT_BYTES}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite ``url`` names (None: another backend, or an in-memory or URI
    database, which names no path)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url}") from exc
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:") or "uri" in parsed.query:
        return None
    return Path(database)


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the project's connection settings."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot make the folder of SQLite file {database}: {exc.strerror}"
                ) from exc
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_size=POSTGRES_POOL_SIZE, pool_pre_ping=True)
    raise ConfigError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
