-- The load tests' own SQL (loadtest/slo_gate.py, loadtest/soak.py, loadtest/chaos.py), each
-- under a `-- name:` line; run with core.db's functions and package="loadtest". Production
-- code never reads these: they stay out of core/queries.sql.

-- name: slo_rows
-- Every queue row created in the run's window, with the timestamps the SLO gate measures.
SELECT id, source, status, created_at, processing_started_at, resolved_at, updated_at,
       attempt_count, provider, last_error
  FROM ingredient_match_queue
 WHERE created_at >= CAST(:since AS timestamptz) AND created_at < CAST(:until AS timestamptz)
 ORDER BY created_at;

-- name: slo_resolved_twice
-- Rows the soak audit trigger (loadtest/audit.sql) saw resolved more than once.
SELECT queue_id, count(*) AS n
  FROM soak_transitions
 WHERE new_status = 'resolved'
 GROUP BY queue_id
HAVING count(*) > 1;

-- name: slo_live_count
-- Rows of the run not finished yet: the soak drains until this is 0.
SELECT count(*) FROM ingredient_match_queue
 WHERE created_at >= CAST(:since AS timestamptz) AND status IN ('pending', 'processing');

-- name: chaos_terminate_backends
-- Chaos runs: every other session on this database goes, as in a Postgres failover.
SELECT count(pg_terminate_backend(pid)) AS n
  FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend';
