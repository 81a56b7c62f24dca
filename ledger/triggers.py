"""The database's own guards: DDL for the triggers that keep tables append-only, shared by
the migrations (which install them) and ledger.maintenance (which lifts them, inside one
transaction, for `alliance doctor --repair` and `alliance rebuild`, run by the schema's
owner; the application role cannot alter tables).

Kept as plain SQL strings per backend, so what the migrations create and what maintenance
restores are the same text.
"""

from __future__ import annotations

# Functions the PostgreSQL triggers call (created once by the migrations).
PG_REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION alliance_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
"""


def append_only(dialect: str, table: str) -> list[str]:
    """Statements that make ``table`` refuse UPDATE, DELETE (and TRUNCATE)."""
    if dialect == "postgresql":
        return [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION alliance_refuse_change()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION alliance_refuse_change()",
        ]
    return [
        f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
        for action in ("UPDATE", "DELETE")
    ]


def append_only_names(dialect: str, table: str) -> list[str]:
    """The names of the triggers append_only() creates."""
    if dialect == "postgresql":
        return [f"{table}_append_only", f"{table}_no_truncate"]
    return [f"{table}_no_update", f"{table}_no_delete"]


# log_entries: the columns the sequencer fills from a leaf must say what the leaf says,
# so nobody can log the same signed entry twice under another `entry_id` (the column is
# UNIQUE): `entry_id`, `seq`, `kind` and `signer` are read back from the leaf's JSON.
# PostgreSQL also checks the leaf hash (RFC 6962: SHA-256 of 0x00 ‖ leaf).
SQLITE_LOG_ENTRY_MATCHES_LEAF = """
CREATE TRIGGER log_entries_match_leaf BEFORE INSERT ON log_entries
WHEN NOT json_valid(CAST(NEW.leaf AS TEXT))
  OR json_extract(CAST(NEW.leaf AS TEXT), '$.entry.id') IS NOT NEW.entry_id
  OR json_extract(CAST(NEW.leaf AS TEXT), '$.seq') IS NOT NEW.seq
  OR json_extract(CAST(NEW.leaf AS TEXT), '$.entry.kind') IS NOT NEW.kind
  OR json_extract(CAST(NEW.leaf AS TEXT), '$.entry.signer') IS NOT NEW.signer
BEGIN SELECT RAISE(ABORT, 'log_entries: columns must match the leaf'); END
"""

PG_LOG_ENTRY_MATCHES_LEAF = """
CREATE OR REPLACE FUNCTION alliance_log_matches_leaf() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  record jsonb;
BEGIN
  BEGIN
    record := convert_from(NEW.leaf, 'UTF8')::jsonb;
  EXCEPTION WHEN others THEN
    RAISE EXCEPTION 'log_entries: the leaf is not a JSON record'
      USING ERRCODE = 'integrity_constraint_violation';
  END;
  IF jsonb_typeof(record) <> 'object'
     OR (record -> 'entry' ->> 'id') IS DISTINCT FROM NEW.entry_id
     OR (record ->> 'seq') IS DISTINCT FROM NEW.seq::text
     OR (record -> 'entry' ->> 'kind') IS DISTINCT FROM NEW.kind
     OR (record -> 'entry' ->> 'signer') IS DISTINCT FROM NEW.signer
     OR NEW.leaf_hash <> sha256('\\x00'::bytea || NEW.leaf) THEN
    RAISE EXCEPTION 'log_entries: columns must match the leaf (seq %)', NEW.seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER log_entries_match_leaf BEFORE INSERT ON log_entries
  FOR EACH ROW EXECUTE FUNCTION alliance_log_matches_leaf();
"""

# merkle_tiles: a tile holds exactly the hashes the log's size implies at its level, so
# nobody can append bytes to the frontier tile ahead of the log (which would wedge the
# writer: tiles may only grow, so it could never write the true hash there). Tile (L, N)
# at log size S holds min(256, floor(S / 256^L) - 256 N) hashes of 32 bytes.
SQLITE_TILE_WIDTH = """
CREATE TRIGGER merkle_tiles_width_{action} BEFORE {action} ON merkle_tiles
WHEN length(NEW.hashes) != 32 * min(256,
    ((COALESCE((SELECT max(seq) FROM log_entries), -1) + 1) >> (8 * NEW.level)) - 256 * NEW.idx)
BEGIN SELECT RAISE(ABORT, 'merkle_tiles: tile width must match the log size'); END
"""

PG_TILE_WIDTH = """
CREATE OR REPLACE FUNCTION alliance_tile_width() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  size bigint := COALESCE((SELECT max(seq) FROM log_entries), -1) + 1;
BEGIN
  IF length(NEW.hashes) <> 32 * LEAST(256, (size >> (8 * NEW.level)) - 256 * NEW.idx) THEN
    RAISE EXCEPTION 'merkle_tiles: tile width must match the log size (level %, index %)',
      NEW.level, NEW.idx USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER merkle_tiles_width BEFORE INSERT OR UPDATE ON merkle_tiles
  FOR EACH ROW EXECUTE FUNCTION alliance_tile_width();
"""


# merkle_tile_nodes: a tile's inner nodes exist once the tile is full, never before (a
# row planted for a tile still filling would stop the writer storing the true one).
SQLITE_NODES_AFTER_FULL = """
CREATE TRIGGER merkle_tile_nodes_full BEFORE INSERT ON merkle_tile_nodes
WHEN ((COALESCE((SELECT max(seq) FROM log_entries), -1) + 1) >> (8 * NEW.level))
    < 256 * (NEW.idx + 1)
BEGIN SELECT RAISE(ABORT, 'merkle_tile_nodes: the tile is not full'); END
"""

PG_NODES_AFTER_FULL = """
CREATE OR REPLACE FUNCTION alliance_nodes_after_full() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  size bigint := COALESCE((SELECT max(seq) FROM log_entries), -1) + 1;
BEGIN
  IF (size >> (8 * NEW.level)) < 256 * (NEW.idx + 1) THEN
    RAISE EXCEPTION 'merkle_tile_nodes: the tile is not full (level %, index %)',
      NEW.level, NEW.idx USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER merkle_tile_nodes_full BEFORE INSERT ON merkle_tile_nodes
  FOR EACH ROW EXECUTE FUNCTION alliance_nodes_after_full();
"""


def log_guards(dialect: str) -> list[str]:
    """The leaf-match and tile-width guards, for the migration that adds them."""
    if dialect == "postgresql":
        return [PG_LOG_ENTRY_MATCHES_LEAF, PG_TILE_WIDTH, PG_NODES_AFTER_FULL]
    return [
        SQLITE_NODES_AFTER_FULL,
        SQLITE_LOG_ENTRY_MATCHES_LEAF,
        SQLITE_TILE_WIDTH.format(action="INSERT"),
        SQLITE_TILE_WIDTH.format(action="UPDATE"),
    ]
