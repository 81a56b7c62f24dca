"""Trust only what was verified: the log's columns must match its leaves, tiles must
match the log's size, and projections become sealed, append-only row versions.

The projection tables are caches (`alliance rebuild` refills them from the log), so this
revision drops them and creates their sealed form from ledger.projections, which derives
the columns from ledger.rows: a later change to the rows ships a revision that does the
same again (dropping the ``postings`` view first: PostgreSQL refuses to drop a table a
view reads).

Postings are no projection table: the old table of that name is dropped with the others
and the ``postings`` view over the sealed obligations (ledger.reads.POSTINGS) takes its
place. The view needs no append-only trigger: it takes no writes on either backend.

Revision ID: 0003_sealed_projections
Revises: 0002_projections
"""

from __future__ import annotations

from alembic import op

from ledger import triggers
from ledger.projections import PROJECTION_HEADS, PROJECTION_TABLES
from ledger.reads import create_postings_view

revision = "0003_sealed_projections"
down_revision = "0002_projections"
branch_labels = None
depends_on = None

OLD_PROJECTIONS = (
    "meta",
    "regions",
    "principal_keys",
    "members",
    "stores",
    "receipts",
    "endorsables",
    "endorsements",
    "obligations",
    "postings",
    "cases",
    "disputes",
    "penalties",
    "credit",
)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for statement in triggers.log_guards(dialect):
        op.execute(statement)
    for name in reversed(OLD_PROJECTIONS):
        op.drop_table(name)
    tables = [*PROJECTION_TABLES.values(), PROJECTION_HEADS]
    for table in tables:
        table.create(bind)
    if dialect == "postgresql":
        op.execute(triggers.PG_REFUSE_FUNCTION)
    for table in tables:
        for statement in triggers.append_only(dialect, table.name):
            op.execute(statement)
    op.execute(create_postings_view(bind.dialect))


def downgrade() -> None:
    raise RuntimeError("the log is append-only: there is no downgrade")
