"""Projections: caches derived from the log, rebuilt by `alliance rebuild`.

Revision ID: 0002_projections
Revises: 0001_log
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_projections"
down_revision = "0001_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("name", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "regions",
        sa.Column("code", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("witness_name", sa.Text, nullable=False),
        sa.Column("witness_pub", sa.Text, nullable=False),
        sa.Column("joined_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "principal_keys",
        sa.Column("key_id", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("principal", sa.Text, nullable=False),
        sa.Column("pub", sa.Text, nullable=False),
        sa.Column("from_seq", sa.BigInteger, nullable=False),
        sa.Column("until_seq", sa.BigInteger),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("return_days", sa.BigInteger, nullable=False),
        sa.Column("excluded", sa.Text, nullable=False),
        sa.Column("enrolled_seq", sa.BigInteger, nullable=False),
        sa.Column("changed_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "stores",
        sa.Column("member", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("store_id", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("division", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
    )
    op.create_table(
        "receipts",
        sa.Column("merchant", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("store", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("number", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("purchased", sa.Text, nullable=False),
        sa.Column("refunded_fen", sa.BigInteger, nullable=False),
        sa.Column("returns", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "endorsables",
        sa.Column("target", sa.BigInteger, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("regions", sa.Text, nullable=False),
        sa.Column("approved", sa.Text, nullable=False),
        sa.Column("rejected", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
    )
    op.create_table(
        "endorsements",
        sa.Column("target", sa.BigInteger, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("region", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "obligations",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("debtor", sa.Text, nullable=False),
        sa.Column("creditor", sa.Text, nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("dispute_seq", sa.BigInteger),
        sa.Column("logged", sa.Text, nullable=False),
    )
    op.create_table(
        "postings",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("account", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "cases",
        sa.Column("fund", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("case", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "disputes",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("target", sa.BigInteger, nullable=False),
        sa.Column("debtor", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("resolved_seq", sa.BigInteger),
    )
    op.create_table(
        "penalties",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("member", sa.Text, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("listing", sa.Text, nullable=False),
        sa.Column("issued", sa.Text, nullable=False),
        sa.Column("until", sa.Text, nullable=False),
        sa.Column("restored_seq", sa.BigInteger),
    )
    op.create_table(
        "credit",
        sa.Column("member", sa.Text, primary_key=True, autoincrement=False, nullable=False),
        sa.Column("as_of", sa.Text, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("listing", sa.Text, nullable=False),
        sa.Column("grade", sa.Text, nullable=False),
        sa.Column("returns_honoured", sa.BigInteger, nullable=False),
        sa.Column("overdue_settlements", sa.BigInteger, nullable=False),
    )
    op.create_index("obligations_debtor", "obligations", ["debtor", "status"])
    op.create_index("obligations_creditor", "obligations", ["creditor", "status"])
    op.create_index("obligations_status", "obligations", ["status", "seq"])
    op.create_index("endorsables_status", "endorsables", ["status", "target"])
    op.create_index("penalties_member", "penalties", ["member"])
    op.create_index("members_region", "members", ["region", "status"])


def downgrade() -> None:
    for table in reversed(
        [
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
        ]
    ):
        op.drop_table(table)
