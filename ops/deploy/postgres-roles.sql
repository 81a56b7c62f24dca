-- Production roles for Alliance Ledger on PostgreSQL.
-- The owner runs migrations; the application may only read and append to the log.
-- Run as a superuser after `alliance init` (as alliance_owner) has created the schema.

CREATE ROLE alliance_owner LOGIN;
CREATE ROLE alliance_app LOGIN;
CREATE ROLE alliance_reader LOGIN;

GRANT USAGE ON SCHEMA public TO alliance_app, alliance_reader;

-- The log: SELECT and INSERT only. The triggers refuse UPDATE/DELETE/TRUNCATE anyway;
-- the grants make the refusal hold even if a trigger were dropped by mistake.
GRANT SELECT, INSERT ON log_entries, checkpoints, cosignatures, merkle_tile_nodes TO alliance_app;
-- Tiles grow in place (a partial tile is extended), checked by the grow-only trigger.
GRANT SELECT, INSERT, UPDATE ON merkle_tiles TO alliance_app;
-- Projections are caches rebuilt from the log.
GRANT SELECT, INSERT, UPDATE, DELETE ON
  meta, regions, principal_keys, members, stores, receipts, endorsables, endorsements,
  obligations, postings, cases, disputes, penalties, credit
  TO alliance_app;

GRANT SELECT ON ALL TABLES IN SCHEMA public TO alliance_reader;

-- Projection upserts stage rows in a temporary table (ledger/projections.py); PostgreSQL
-- grants TEMPORARY to PUBLIC by default. If your database revokes it, grant it back:
-- GRANT TEMPORARY ON DATABASE alliance TO alliance_app;
