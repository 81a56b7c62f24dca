-- Production roles for Alliance Ledger on PostgreSQL.
-- The owner runs migrations; the application may only read and append to the log.
-- Run as a superuser after `alliance init` (as alliance_owner) has created the schema.

CREATE ROLE alliance_owner LOGIN;
CREATE ROLE alliance_app LOGIN;
CREATE ROLE alliance_reader LOGIN;

GRANT USAGE ON SCHEMA public TO alliance_app, alliance_reader;

-- The log: SELECT and INSERT only. The triggers refuse UPDATE/DELETE/TRUNCATE anyway;
-- the grants make the refusal hold even if a trigger were dropped by mistake.
GRANT SELECT, INSERT ON log_entries, checkpoints, cosignatures, merkle_tile_nodes, night_reports
  TO alliance_app;
-- Tiles grow in place (a partial tile is extended), checked by the grow-only trigger.
GRANT SELECT, INSERT, UPDATE ON merkle_tiles TO alliance_app;
-- Projections are sealed, append-only row versions (a change is a new row): SELECT and
-- INSERT only. `alliance rebuild` and `alliance doctor --repair` rewrite them (and tiles,
-- nodes, and checkpoint/cosignature rows that do not verify) as alliance_owner, lifting
-- the triggers inside their own transaction; the application role never can.
GRANT SELECT, INSERT ON
  meta, regions, principal_keys, members, member_statuses, commitments, exclusions,
  networks, stores, receipts, receipt_lines,
  receipt_returns, return_lines,
  endorsables, endorsement_dues, endorsements, obligations, cases, disputes,
  penalties, credit, credit_notices, notice_evidence, credit_decisions,
  day_ends, nights, instructions, overdue_listings, settlements, projection_heads
  TO alliance_app;
-- postings is a view over obligations (DESIGN 5's double-entry view): read only.
GRANT SELECT ON postings TO alliance_app;

GRANT SELECT ON ALL TABLES IN SCHEMA public TO alliance_reader;
