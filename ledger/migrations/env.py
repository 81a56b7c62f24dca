"""Alembic environment. The connection is handed in by ledger.schema.migrate()."""

from __future__ import annotations

from alembic import context

from ledger.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through ledger.schema.migrate()
    raise RuntimeError("run migrations through `alliance init` / ledger.schema.migrate()")

context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
