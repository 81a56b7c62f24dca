"""Schema management through Alembic, with the connection handed in (no alembic.ini)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config() -> Config:
    # Alembic is imported here, when a schema is migrated, not by every process that
    # opens a ledger: about a tenth of a one-entry `alliance submit`'s start.
    from alembic.config import Config  # noqa: PLC0415 - loaded only to migrate

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision. Idempotent."""
    with engine.begin() as connection:
        migrate_in(connection)


def migrate_in(connection: Connection) -> None:
    """Bring the schema to the newest revision inside the caller's transaction: it is
    committed or rolled back with the rest (both backends' DDL is transactional; on
    SQLite the engine's BEGIN IMMEDIATE opens it). Idempotent."""
    from alembic import command  # noqa: PLC0415 - loaded only to migrate

    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def is_initialized(engine: Engine) -> bool:
    return inspect(engine).has_table("log_entries")
