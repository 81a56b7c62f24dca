"""The log: entries, tiles, checkpoints, cosignatures, and the triggers that keep them
append-only on both backends.

Revision ID: 0001_log
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_log"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("log_entries", "checkpoints", "cosignatures", "merkle_tile_nodes")
NODES_BYTES = 254 * 32  # ledger.merkle.NODES_BYTES: inner levels 1..7 of a full tile


def _tables() -> None:
    op.create_table(
        "log_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.String(36), nullable=False, unique=True),
        sa.Column("entry_hash", sa.LargeBinary, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("signer", sa.String(32), nullable=False, index=True),
        sa.Column("logged", sa.String(40), nullable=False),
        sa.Column("leaf", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("seq >= 0", name="log_entries_seq_natural"),
    )
    op.create_table(
        "merkle_tiles",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
        sa.CheckConstraint(
            "length(hashes) > 0 AND length(hashes) <= 8192 AND length(hashes) % 32 = 0",
            name="merkle_tiles_width",
        ),
    )
    op.create_table(
        "merkle_tile_nodes",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("nodes", sa.LargeBinary, nullable=False),
        sa.CheckConstraint(f"length(nodes) = {NODES_BYTES}", name="merkle_tile_nodes_size"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("signed", sa.String(40), nullable=False),
    )
    op.create_table(
        "cosignatures",
        sa.Column(
            "size",
            sa.BigInteger,
            sa.ForeignKey("checkpoints.size"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("witness", sa.String(128), primary_key=True),
        sa.Column("timestamp_s", sa.BigInteger, nullable=False),
        # The line is part of the key: a planted row for (size, witness) must not keep
        # the witness's real cosignature out (readers keep only lines that verify).
        sa.Column("line", sa.Text, primary_key=True),
    )


def _sqlite_triggers() -> None:
    for table in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
            )
    op.execute(
        "CREATE TRIGGER log_entries_gapless BEFORE INSERT ON log_entries "
        "WHEN NEW.seq != COALESCE((SELECT max(seq) FROM log_entries), -1) + 1 "
        "BEGIN SELECT RAISE(ABORT, 'log_entries: seq must be gapless'); END"
    )
    op.execute(
        "CREATE TRIGGER checkpoints_grow BEFORE INSERT ON checkpoints "
        "WHEN NEW.size < COALESCE((SELECT max(size) FROM checkpoints), 0) "
        "OR NEW.size > COALESCE((SELECT max(seq) FROM log_entries), -1) + 1 "
        "BEGIN SELECT RAISE(ABORT, 'checkpoints: size must grow and stay within the log'); END"
    )
    op.execute(
        "CREATE TRIGGER merkle_tiles_no_delete BEFORE DELETE ON merkle_tiles "
        "BEGIN SELECT RAISE(ABORT, 'merkle_tiles may only grow: DELETE refused'); END"
    )
    op.execute(
        "CREATE TRIGGER merkle_tiles_grow BEFORE UPDATE ON merkle_tiles "
        "WHEN NEW.level != OLD.level OR NEW.idx != OLD.idx "
        "OR length(NEW.hashes) < length(OLD.hashes) "
        "OR substr(NEW.hashes, 1, length(OLD.hashes)) != OLD.hashes "
        "BEGIN SELECT RAISE(ABORT, 'merkle_tiles may only grow: UPDATE refused'); END"
    )


_PG_FUNCTIONS = """
CREATE FUNCTION alliance_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE FUNCTION alliance_log_gapless() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq <> COALESCE((SELECT max(seq) FROM log_entries), -1) + 1 THEN
    RAISE EXCEPTION 'log_entries: seq must be gapless (got %)', NEW.seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION alliance_checkpoints_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.size < COALESCE((SELECT max(size) FROM checkpoints), 0)
     OR NEW.size > COALESCE((SELECT max(seq) FROM log_entries), -1) + 1 THEN
    RAISE EXCEPTION 'checkpoints: size must grow and stay within the log'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION alliance_tiles_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.level <> OLD.level OR NEW.idx <> OLD.idx
     OR length(NEW.hashes) < length(OLD.hashes)
     OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes THEN
    RAISE EXCEPTION 'merkle_tiles may only grow: UPDATE refused'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
"""


def _postgres_triggers() -> None:
    op.execute(_PG_FUNCTIONS)
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION alliance_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION alliance_refuse_change()"
        )
    op.execute(
        "CREATE TRIGGER log_entries_gapless BEFORE INSERT ON log_entries "
        "FOR EACH ROW EXECUTE FUNCTION alliance_log_gapless()"
    )
    op.execute(
        "CREATE TRIGGER checkpoints_grow BEFORE INSERT ON checkpoints "
        "FOR EACH ROW EXECUTE FUNCTION alliance_checkpoints_grow()"
    )
    op.execute(
        "CREATE TRIGGER merkle_tiles_grow BEFORE UPDATE ON merkle_tiles "
        "FOR EACH ROW EXECUTE FUNCTION alliance_tiles_grow()"
    )
    for statement in ("DELETE", "TRUNCATE"):
        scope = "ROW" if statement == "DELETE" else "STATEMENT"
        op.execute(
            f"CREATE TRIGGER merkle_tiles_no_{statement.lower()} BEFORE {statement} "
            f"ON merkle_tiles FOR EACH {scope} EXECUTE FUNCTION alliance_refuse_change()"
        )


def upgrade() -> None:
    _tables()
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    raise RuntimeError("the log is append-only: there is no downgrade")
