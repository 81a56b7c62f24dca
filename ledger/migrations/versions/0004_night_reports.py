"""Night reports: each business day's reconciliation report (its JCS bytes), stored
beside the log in the transaction of the `reconciliation.closed` entry that commits to
it by three RFC 6962 roots. Append-only like the log; readers check the bytes against
the entry's roots before they serve or export them (a table anyone can write decides
nothing).

Revision ID: 0004_night_reports
Revises: 0003_sealed_projections
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger import triggers

revision = "0004_night_reports"
down_revision = "0003_sealed_projections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "night_reports",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("report", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("seq >= 0", name="night_reports_seq_natural"),
    )
    dialect = op.get_bind().dialect.name
    for statement in triggers.append_only(dialect, "night_reports"):
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the log is append-only: there is no downgrade")
