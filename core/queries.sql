-- Every SQL statement of the service, each under a `-- name:` line with a one-line description
-- (loaded by core/sql.py). Parameters are SQLAlchemy binds (:name). Only the data layer in core/
-- runs them (tests/unit/test_data_layer.py); the load tests' own SQL is loadtest/queries.sql.

-- ===================================================================== ingredient queue

-- name: set_max_attempts
-- QUEUE_MAX_ATTEMPTS for the queue's SQL functions, for this transaction only.
SELECT set_config('sous.queue_max_attempts', CAST(:max_attempts AS text), true);

-- name: claim_rows
-- Claims up to :limit pending rows (SKIP LOCKED), leased for :lease_seconds; attempt_count + 1.
SELECT * FROM claim_ingredient_match_queue(
  CAST(:limit AS integer), CAST(:resolver AS text), CAST(:lease_seconds AS integer),
  CAST(:review_mode AS text), CAST(:source AS text));

-- name: requeue_expired
-- Expired leases back to pending (or failed once attempts are used up); how many.
SELECT requeue_expired_ingredient_match_queue(CAST(:limit AS integer), CAST(:error AS text));

-- name: complete_rows
-- Fenced: a row is written only while it is still the claim that computed the result. Rows are
-- read as the queue's own row type, so ids and result columns take whatever types the table has.
UPDATE ingredient_match_queue q
   SET status = 'resolved',
       canonical_name = r.canonical_name,
       resolved_unit = r.resolved_unit,
       resolved_quantity = r.resolved_quantity,
       confidence = r.confidence,
       provider = r.provider,
       resolved_at = now(),
       last_error = NULL,
       processing_lease_expires_at = NULL,
       needs_ingredient_review = false,
       needs_unit_review = coalesce(q.needs_unit_review, false) AND r.resolved_unit IS NULL
  FROM jsonb_populate_recordset(NULL::ingredient_match_queue, CAST(:rows AS jsonb)) AS r
 WHERE q.id = r.id AND q.status = 'processing' AND q.attempt_count = r.attempt_count
RETURNING q.id;

-- name: reject_rows
-- Terminal `rejected` with the reason, fenced like complete_rows.
UPDATE ingredient_match_queue q
   SET status = 'rejected',
       last_error = r.last_error,
       provider = r.provider,
       processing_lease_expires_at = NULL
  FROM jsonb_populate_recordset(NULL::ingredient_match_queue, CAST(:rows AS jsonb)) AS r
 WHERE q.id = r.id AND q.status = 'processing' AND q.attempt_count = r.attempt_count
RETURNING q.id;

-- name: fail_rows
-- Back to pending for another attempt, or failed once the attempts are used up.
UPDATE ingredient_match_queue q
   SET status = CASE WHEN q.attempt_count >= CAST(:max_attempts AS integer)
                     THEN 'failed' ELSE 'pending' END,
       last_error = r.last_error,
       processing_lease_expires_at = NULL
  FROM jsonb_populate_recordset(NULL::ingredient_match_queue, CAST(:rows AS jsonb)) AS r
 WHERE q.id = r.id AND q.status = 'processing' AND q.attempt_count = r.attempt_count
RETURNING q.id, q.status;

-- name: release_rows
-- A worker shutting down hands its rows back at once instead of waiting for the lease.
UPDATE ingredient_match_queue q
   SET status = 'pending',
       last_error = CAST(:reason AS text),
       processing_lease_expires_at = NULL
  FROM jsonb_populate_recordset(NULL::ingredient_match_queue, CAST(:rows AS jsonb)) AS r
 WHERE q.id = r.id AND q.status = 'processing' AND q.attempt_count = r.attempt_count
RETURNING q.id;

-- name: extend_lease
-- Renews the lease of the rows this claim still owns (fenced); the ids kept.
UPDATE ingredient_match_queue q
   SET processing_lease_expires_at = now() + make_interval(secs => CAST(:lease_seconds AS integer))
  FROM jsonb_populate_recordset(NULL::ingredient_match_queue, CAST(:rows AS jsonb)) AS r
 WHERE q.id = r.id AND q.status = 'processing' AND q.attempt_count = r.attempt_count
RETURNING q.id;

-- name: insert_rows
-- The scraper's and the API's rows, read as the queue's row type: recipe_ingredient_id (text,
-- integer or uuid) and the id take the table's types; ids come back in input order.
INSERT INTO ingredient_match_queue
       (raw_name, cleaned_name, raw_unit, source, recipe_ingredient_id,
        needs_ingredient_review, needs_unit_review, status)
SELECT r.raw_name, coalesce(r.cleaned_name, r.raw_name), r.raw_unit,
       coalesce(r.source, 'scraper'), r.recipe_ingredient_id,
       coalesce(r.needs_ingredient_review, true), coalesce(r.needs_unit_review, false), 'pending'
  FROM ROWS FROM (jsonb_populate_recordset(NULL::ingredient_match_queue, CAST(:rows AS jsonb)))
       WITH ORDINALITY AS r
 ORDER BY r.ordinality
RETURNING id;

-- name: get_row
-- The id arrives as text and is read as the table's id type (bigint or uuid).
SELECT * FROM ingredient_match_queue
 WHERE id = (jsonb_populate_record(NULL::ingredient_match_queue,
                                   jsonb_build_object('id', CAST(:id AS text)))).id;

-- ===================================================================== dispatcher and chunk workers (worker/)

-- name: dispatch_try_lock
-- Transaction-level advisory lock, held by the leader's open transaction until it ends or the
-- connection dies. Unlike a session lock it cannot be left behind on a pooled server connection
-- (PgBouncer in transaction mode): the open transaction pins one server connection to the leader.
SELECT set_config('idle_in_transaction_session_timeout', '0', true) IS NOT NULL
       AND pg_try_advisory_xact_lock(CAST(:key AS bigint));

-- name: dispatch_ping
-- The leader connection's liveness check (its lock dies with it).
SELECT 1;

-- name: dispatch_listen
-- The leader connection wakes on the queue's insert notifications.
LISTEN ingredient_match_queue;

-- name: dispatch_pending_count
-- Pending rows of one source ('any': all), after a cycle.
SELECT count(*) FROM ingredient_match_queue
 WHERE status = 'pending'
   AND (CAST(:source AS text) = 'any' OR coalesce(source, 'scraper') = CAST(:source AS text));

-- name: dispatch_run_insert
-- One dispatch cycle's summary.
INSERT INTO queue_runs
       (started_at, finished_at, box_id, resolver, trigger, dry_run, requeued, claimed, chunks,
        resolved, failed, rejected, pending_after, lag_p50_ms, lag_p95_ms,
        latency_p50_ms, latency_p95_ms, details)
VALUES (CAST(:started_at AS timestamptz), now(), :box_id, :resolver, :trigger, :dry_run, :requeued,
        :claimed, :chunks, :resolved, :failed, :rejected, :pending_after, :lag_p50_ms, :lag_p95_ms,
        :latency_p50_ms, :latency_p95_ms, CAST(:details AS jsonb))
RETURNING id;

-- name: dispatch_cache_store
-- Upserts settled answers into the canonical-name cache.
INSERT INTO ingredient_canonical_cache
       (normalized_name, model, prompt_version, status, canonical_name, resolved_unit,
        resolved_quantity, confidence, provider, reason)
SELECT r.normalized_name, CAST(:model AS text), CAST(:prompt_version AS text), r.status,
       r.canonical_name, r.resolved_unit, r.resolved_quantity, r.confidence, r.provider, r.reason
  FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
       normalized_name text, status text, canonical_name text, resolved_unit text,
       resolved_quantity numeric, confidence real, provider text, reason text)
ON CONFLICT (normalized_name, model, prompt_version) DO UPDATE
   SET status = EXCLUDED.status, canonical_name = EXCLUDED.canonical_name,
       resolved_unit = EXCLUDED.resolved_unit, resolved_quantity = EXCLUDED.resolved_quantity,
       confidence = EXCLUDED.confidence, provider = EXCLUDED.provider, reason = EXCLUDED.reason,
       updated_at = now();

-- name: dispatch_shadow_select
-- DRY_RUN reads pending rows without locking or touching them; rows already shadowed for this
-- model and prompt version are skipped, so the shadow table is the memory of what was done.
SELECT q.* FROM ingredient_match_queue q
 WHERE q.status = 'pending'
   AND (CAST(:source AS text) = 'any' OR coalesce(q.source, 'scraper') = CAST(:source AS text))
   AND (CAST(:review_mode AS text) = 'any'
        OR (CAST(:review_mode AS text) = 'ingredient' AND coalesce(q.needs_ingredient_review, true))
        OR (CAST(:review_mode AS text) = 'unit' AND coalesce(q.needs_unit_review, false)))
   AND NOT EXISTS (SELECT 1 FROM ingredient_match_shadow s
                    WHERE s.queue_id = q.id AND s.model = CAST(:model AS text)
                      AND s.prompt_version = CAST(:prompt_version AS text))
 ORDER BY q.created_at, q.id
 LIMIT CAST(:limit AS integer);

-- name: dispatch_shadow_insert
-- DRY_RUN answers, one row per queue row and attempt.
INSERT INTO ingredient_match_shadow
       (queue_id, attempt, status, canonical_name, resolved_unit, resolved_quantity, confidence,
        provider, model, prompt_version, reason, latency_ms)
SELECT r.queue_id, r.attempt, r.status, r.canonical_name, r.resolved_unit, r.resolved_quantity,
       r.confidence, r.provider, CAST(:model AS text), CAST(:prompt_version AS text), r.reason,
       r.latency_ms
  FROM jsonb_populate_recordset(NULL::ingredient_match_shadow, CAST(:rows AS jsonb)) AS r;

-- name: status_expired_leases
-- Processing rows whose lease has run out (their worker is gone).
SELECT count(*) FROM ingredient_match_queue
 WHERE status = 'processing' AND processing_lease_expires_at < now();

-- name: shadow_report_rows
-- Each shadowed row's latest dry-run answer beside the live row as JSON, so the report can read
-- whichever of the app's columns hold the nightly job's answers (SHADOW_COMPARE_COLUMNS).
WITH latest AS (
  SELECT DISTINCT ON (s.queue_id) s.*
    FROM ingredient_match_shadow s
   ORDER BY s.queue_id, s.id DESC
)
SELECT l.queue_id, q.cleaned_name, l.status AS shadow_status, l.canonical_name AS shadow_canonical_name,
       l.resolved_unit AS shadow_resolved_unit, l.resolved_quantity AS shadow_resolved_quantity,
       l.provider AS shadow_provider, l.model AS shadow_model, to_jsonb(q) AS live
  FROM latest l JOIN ingredient_match_queue q ON q.id = l.queue_id
 ORDER BY l.queue_id;

-- ===================================================================== menu extraction jobs

-- name: menu_lock_user
-- Serializes one user's submissions (quota check + insert) for the rest of the transaction.
-- The two-key form keeps these locks apart from single-key advisory locks; 1835363957 = 'menu'.
SELECT pg_advisory_xact_lock(1835363957, hashtext(CAST(:user_id AS text)));

-- name: menu_quota_usage
-- Monthly: jobs created this calendar month (UTC), retries excluded (a retry re-runs a failed
-- extraction), and every accepted upload this month (the app's `monthly_uploads` limit).
-- Hourly: every accepted submission in the last rolling hour (extraction_uploads). The plan
-- comes through sous_user_plans, a view over the app's profiles whichever column keys it.
SELECT now() AS now, CAST(p.plan AS text) AS plan, CAST(p.plan_limits AS jsonb) AS plan_limits,
       (SELECT count(*) FROM menu_extraction_jobs j
         WHERE j.user_id = CAST(:user_id AS uuid) AND j.retry_of IS NULL
           AND j.created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
       ) AS monthly_used,
       (SELECT count(*) FROM extraction_uploads u
         WHERE u.user_id = CAST(:user_id AS uuid)
           AND u.created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
       ) AS monthly_uploads_used,
       (SELECT count(*) FROM extraction_uploads u
         WHERE u.user_id = CAST(:user_id AS uuid) AND u.created_at > now() - interval '1 hour'
       ) AS hourly_used,
       (SELECT min(u.created_at) FROM extraction_uploads u
         WHERE u.user_id = CAST(:user_id AS uuid) AND u.created_at > now() - interval '1 hour'
       ) AS oldest_upload_in_hour
  FROM (SELECT 1) AS one
  LEFT JOIN sous_user_plans p ON p.user_id = CAST(:user_id AS uuid);

-- name: menu_find_same
-- The same user + image + versions: a live job first, else the newest completed one.
SELECT * FROM menu_extraction_jobs
 WHERE user_id = CAST(:user_id AS uuid) AND image_hash = :image_hash
   AND schema_version = :schema_version AND prompt_version = :prompt_version
   AND status IN ('queued', 'processing', 'completed')
 ORDER BY CASE WHEN status = 'completed' THEN 1 ELSE 0 END, created_at DESC
 LIMIT 1;

-- name: menu_store_image
-- Image bytes, stored once per content hash.
INSERT INTO menu_images (image_hash, content, content_type, byte_size)
VALUES (:image_hash, :content, :content_type, CAST(:byte_size AS integer))
ON CONFLICT (image_hash) DO NOTHING;

-- name: menu_load_image
-- A stored image by content hash.
SELECT content, content_type FROM menu_images WHERE image_hash = :image_hash;

-- name: menu_insert_job
-- The id and its RQ job id come from Python (core/jobs.py owns the job-id scheme).
INSERT INTO menu_extraction_jobs
       (id, user_id, image_url, image_hash, schema_version, prompt_version, retry_count, retry_of,
        rq_job_id)
VALUES (CAST(:id AS uuid), CAST(:user_id AS uuid), :image_url, :image_hash, :schema_version,
        :prompt_version, CAST(:retry_count AS integer), CAST(:retry_of AS uuid), :rq_job_id)
RETURNING *;

-- name: menu_record_upload
-- One accepted submission (counts toward the hourly limit).
INSERT INTO extraction_uploads (user_id, image_hash, job_id, cached)
VALUES (CAST(:user_id AS uuid), :image_hash, CAST(:job_id AS uuid), CAST(:cached AS boolean));

-- name: menu_get_user_job
-- A job of this user (another user's job is not found).
SELECT * FROM menu_extraction_jobs WHERE id = CAST(:job_id AS uuid) AND user_id = CAST(:user_id AS uuid);

-- name: menu_find_retry_of
-- The newest retry of a job, if any.
SELECT * FROM menu_extraction_jobs WHERE retry_of = CAST(:job_id AS uuid) ORDER BY created_at DESC LIMIT 1;

-- name: menu_claim_job
-- Eligible: queued, or processing with an expired lease (its worker died).
UPDATE menu_extraction_jobs
   SET status = 'processing',
       attempt_count = attempt_count + 1,
       resolver = :resolver,
       processing_started_at = now(),
       processing_lease_expires_at = now() + make_interval(secs => CAST(:lease_seconds AS integer))
 WHERE id = CAST(:job_id AS uuid)
   AND (status = 'queued' OR (status = 'processing' AND processing_lease_expires_at < now()))
RETURNING *;

-- name: menu_extend_lease
-- Renews a claimed job's lease, fenced on its attempt.
UPDATE menu_extraction_jobs
   SET processing_lease_expires_at = now() + make_interval(secs => CAST(:lease_seconds AS integer))
 WHERE id = CAST(:job_id AS uuid) AND status = 'processing' AND attempt_count = :attempt
RETURNING id;

-- name: menu_complete_job
-- Writes the result, fenced on the attempt (no row: the lease was lost).
UPDATE menu_extraction_jobs
   SET status = 'completed',
       result = CAST(:result AS jsonb),
       confidence = CAST(:confidence AS real),
       uncertain_items = CAST(:uncertain_items AS jsonb),
       superfluous_text = CAST(:superfluous_text AS jsonb),
       token_usage = CAST(:token_usage AS jsonb),
       processing_time = CAST(:processing_time AS integer),
       error_message = NULL,
       completed_at = now(),
       processing_lease_expires_at = NULL
 WHERE id = CAST(:job_id AS uuid) AND status = 'processing' AND attempt_count = :attempt
RETURNING id;

-- name: menu_fail_job
-- Fails a claimed job with the reason, fenced on the attempt.
UPDATE menu_extraction_jobs
   SET status = 'failed',
       error_message = :error,
       processing_time = CAST(:processing_time AS integer),
       completed_at = now(),
       processing_lease_expires_at = NULL
 WHERE id = CAST(:job_id AS uuid) AND status = 'processing' AND attempt_count = :attempt
RETURNING id;

-- name: menu_fail_exhausted
-- Jobs whose workers died on every attempt: give up instead of reclaiming them forever.
UPDATE menu_extraction_jobs
   SET status = 'failed',
       error_message = 'worker lost ' || attempt_count || ' times (lease expired); giving up',
       completed_at = now(),
       processing_lease_expires_at = NULL
 WHERE status = 'processing' AND processing_lease_expires_at < now()
   AND attempt_count >= CAST(:max_attempts AS integer)
RETURNING id;

-- name: menu_lost_candidates
-- Queued jobs older than a grace period, and processing jobs whose lease expired.
SELECT id, status, attempt_count, rq_job_id FROM menu_extraction_jobs
 WHERE (status = 'queued' AND created_at < now() - make_interval(secs => CAST(:grace_seconds AS integer)))
    OR (status = 'processing' AND processing_lease_expires_at < now())
 ORDER BY created_at
 LIMIT CAST(:limit AS integer);

-- name: menu_queue_depth
-- Queued and processing jobs (the wait estimate's queue ahead).
SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
       count(*) FILTER (WHERE status = 'processing') AS processing
  FROM menu_extraction_jobs WHERE status IN ('queued', 'processing');

-- name: menu_recent_processing_ms
-- Mean processing time of the last 50 completed jobs (NULL before the first one).
SELECT avg(processing_time)::float AS mean_ms, count(*) AS n FROM (
  SELECT processing_time FROM menu_extraction_jobs
   WHERE status = 'completed' AND processing_time IS NOT NULL
   ORDER BY completed_at DESC LIMIT 50) AS recent;

-- name: menu_count_by_status
-- Jobs by status.
SELECT status, count(*) AS n FROM menu_extraction_jobs GROUP BY status;

-- ===================================================================== demo (sous demo)

-- name: demo_status_counts
-- Rows among :ids (a JSON array, read as the queue's id type) by status (`sous demo` waits on its rows).
SELECT q.status, count(*) AS n
  FROM ingredient_match_queue q
  JOIN jsonb_populate_recordset(NULL::ingredient_match_queue,
         (SELECT jsonb_agg(jsonb_build_object('id', x)) FROM jsonb_array_elements(CAST(:ids AS jsonb)) x)) r
    ON q.id = r.id
 GROUP BY q.status;

-- name: menu_set_plan
-- Through sous_user_plans, so it works whether profiles is keyed by user_id or by id.
INSERT INTO sous_user_plans (user_id, plan) VALUES (CAST(:user_id AS uuid), :plan)
ON CONFLICT (user_id) DO UPDATE SET plan = EXCLUDED.plan;

-- name: dispatch_cache_read
-- Plain read (no row locks): concurrent chunks read the same popular names.
SELECT normalized_name, status, canonical_name, resolved_unit, resolved_quantity, confidence,
       provider, reason
  FROM ingredient_canonical_cache
 WHERE model = CAST(:model AS text) AND prompt_version = CAST(:prompt_version AS text)
   AND normalized_name IN (SELECT jsonb_array_elements_text(CAST(:names AS jsonb)));

-- name: dispatch_cache_touch
-- Best-effort hit counter: locks in key order and skips rows another chunk is counting, so
-- two chunks never wait on (or deadlock over) the same hot names.
WITH hit AS (
  SELECT normalized_name FROM ingredient_canonical_cache
   WHERE model = CAST(:model AS text) AND prompt_version = CAST(:prompt_version AS text)
     AND normalized_name IN (SELECT jsonb_array_elements_text(CAST(:names AS jsonb)))
   ORDER BY normalized_name
   FOR UPDATE SKIP LOCKED
)
UPDATE ingredient_canonical_cache c
   SET hit_count = c.hit_count + 1
  FROM hit
 WHERE c.normalized_name = hit.normalized_name
   AND c.model = CAST(:model AS text) AND c.prompt_version = CAST(:prompt_version AS text);

-- ===================================================================== observability (core/observability.py)

-- name: obs_live_depth
-- Live rows only: walks the claimable partial index, whatever the number of terminal rows.
SELECT status, source, count(*) AS n FROM ingredient_match_queue
 WHERE status IN ('pending', 'processing')
 GROUP BY status, source;

-- name: obs_totals
-- Terminal rows by outcome, source and provider: a full scan, so it runs in the shared
-- snapshot (at most once per OBS_SNAPSHOT_SECONDS for the whole fleet), never per scrape.
SELECT status, source, coalesce(provider, 'none') AS provider, count(*) AS n
  FROM ingredient_match_queue
 WHERE status IN ('resolved', 'rejected', 'failed')
 GROUP BY status, source, coalesce(provider, 'none');

-- name: obs_windows
-- Per window (:windows, label -> seconds; the longest is :longest_seconds): rows finished by
-- outcome, rows claimed, wait (created -> processing start of the latest claim) p50/p95; plus
-- the wait histogram of the last :histogram_seconds as bucket counts (width_bucket over
-- :bounds, seconds) and the sum of those waits.
WITH recent AS MATERIALIZED (
  SELECT status, updated_at, processing_started_at,
         extract(epoch FROM processing_started_at - created_at)::float8 AS wait
    FROM ingredient_match_queue
   WHERE (status IN ('resolved', 'rejected', 'failed')
          AND updated_at >= now() - make_interval(secs => CAST(:longest_seconds AS integer)))
      OR processing_started_at >= now() - make_interval(secs => CAST(:longest_seconds AS integer))
), spans AS (
  SELECT key AS label, CAST(value AS integer) AS seconds FROM jsonb_each_text(CAST(:windows AS jsonb))
), per_window AS (
  SELECT s.label, s.seconds,
         count(*) FILTER (WHERE r.status = 'resolved' AND r.updated_at >= now() - make_interval(secs => s.seconds)) AS resolved,
         count(*) FILTER (WHERE r.status = 'rejected' AND r.updated_at >= now() - make_interval(secs => s.seconds)) AS rejected,
         count(*) FILTER (WHERE r.status = 'failed' AND r.updated_at >= now() - make_interval(secs => s.seconds)) AS failed,
         count(*) FILTER (WHERE r.processing_started_at >= now() - make_interval(secs => s.seconds)) AS claimed,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r.wait)
           FILTER (WHERE r.processing_started_at >= now() - make_interval(secs => s.seconds)) AS wait_p50_s,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY r.wait)
           FILTER (WHERE r.processing_started_at >= now() - make_interval(secs => s.seconds)) AS wait_p95_s
    FROM spans s LEFT JOIN recent r ON true
   GROUP BY s.label, s.seconds
), hist AS (
  SELECT width_bucket(r.wait, CAST(:bounds AS float8[])) AS bucket, count(*) AS n, sum(r.wait) AS total
    FROM recent r
   WHERE r.processing_started_at >= now() - make_interval(secs => CAST(:histogram_seconds AS integer))
   GROUP BY 1
)
SELECT p.*,
       (SELECT coalesce(jsonb_object_agg(bucket, n), '{}'::jsonb) FROM hist) AS wait_buckets,
       (SELECT coalesce(sum(total), 0) FROM hist) AS wait_sum_s
  FROM per_window p
 ORDER BY p.seconds;

-- name: obs_cache
-- Cache entries and their hits.
SELECT count(*) AS entries, coalesce(sum(hit_count), 0) AS hits FROM ingredient_canonical_cache;

-- name: obs_run_window
-- The dispatcher's cycle summaries (queue_runs) over a window: sums, claim-weighted mean of the
-- cycles' p50 lag, and the worst cycle's p95 (an upper-side estimate of the window's p95).
SELECT count(*) AS cycles,
       coalesce(sum(requeued), 0) AS requeued,
       coalesce(sum(claimed), 0) AS claimed,
       coalesce(sum(chunks), 0) AS chunks,
       coalesce(sum(resolved), 0) AS resolved,
       coalesce(sum(failed), 0) AS failed,
       coalesce(sum(rejected), 0) AS rejected,
       sum(lag_p50_ms * claimed) / nullif(sum(claimed) FILTER (WHERE lag_p50_ms IS NOT NULL), 0) AS lag_p50_ms,
       max(lag_p95_ms) AS lag_p95_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_p50_ms) AS latency_p50_ms,
       max(latency_p95_ms) AS latency_p95_ms
  FROM queue_runs
 WHERE started_at >= now() - make_interval(secs => CAST(:seconds AS integer));

-- name: obs_run_series
-- Per minute of the window: cycles, rows claimed, depth after the minute's last cycle, worst p95 lag.
SELECT date_trunc('minute', started_at) AS minute,
       count(*) AS cycles,
       coalesce(sum(claimed), 0) AS claimed,
       (array_agg(pending_after ORDER BY started_at DESC))[1] AS pending_after,
       max(lag_p95_ms) AS lag_p95_ms
  FROM queue_runs
 WHERE started_at >= now() - make_interval(secs => CAST(:seconds AS integer))
 GROUP BY 1
 ORDER BY 1;

-- name: obs_resolved_series
-- Rows resolved per minute (the resolved_at partial index).
SELECT date_trunc('minute', resolved_at) AS minute, count(*) AS resolved
  FROM ingredient_match_queue
 WHERE resolved_at >= now() - make_interval(secs => CAST(:seconds AS integer))
 GROUP BY 1
 ORDER BY 1;

-- name: obs_recent_failures
-- Newest first by id (a backward walk of the primary key that stops at the limit), of one
-- terminal status: 'failed' (sous could not answer) or 'rejected' (the input is not food).
SELECT id, status, source, cleaned_name, last_error, attempt_count, provider, updated_at
  FROM ingredient_match_queue
 WHERE status = CAST(:status AS text)
 ORDER BY id DESC
 LIMIT CAST(:limit AS integer);

-- name: obs_recent_menu_failures
-- The newest failed menu jobs.
SELECT id, error_message, retry_count, completed_at
  FROM menu_extraction_jobs
 WHERE status = 'failed'
 ORDER BY created_at DESC
 LIMIT CAST(:limit AS integer);

-- name: dispatch_notify_probe
-- The dispatcher's start-up self-check: does a NOTIFY from another connection reach its LISTEN?
-- (It does not through PgBouncer in transaction mode.) Other boxes wake for one extra cycle.
SELECT pg_notify('ingredient_match_queue', CAST(:payload AS text));

-- ===================================================================== rollout stage (core/stage.py)

-- name: stage_fleet_latest
-- Each box's newest dispatcher cycle in the window: the stage it ran under (details.stage).
SELECT DISTINCT ON (box_id) box_id, finished_at, dry_run, details,
       extract(epoch FROM now() - coalesce(finished_at, started_at))::float8 AS age_s
  FROM queue_runs
 WHERE started_at >= now() - make_interval(secs => CAST(:seconds AS integer))
 ORDER BY box_id, started_at DESC;

-- name: stage_last_answer
-- The provider of the newest answer written, live (resolved_at index) or shadow (newest id).
SELECT provider, kind, at, greatest(extract(epoch FROM now() - at), 0)::float8 AS age_s FROM (
  (SELECT provider, 'live' AS kind, resolved_at AS at FROM ingredient_match_queue
    WHERE resolved_at IS NOT NULL ORDER BY resolved_at DESC LIMIT 1)
  UNION ALL
  (SELECT provider, 'shadow' AS kind, created_at AS at FROM ingredient_match_shadow
    ORDER BY id DESC LIMIT 1)
) a
 ORDER BY at DESC
 LIMIT 1;

-- name: obs_oldest_pending_by_scope
-- Age of the oldest pending row per source and QUEUE_REVIEW_MODE that would claim it (the claim's
-- own filter), so alerts can look only at rows the fleet is meant to take. One short walk of the
-- claimable index each.
SELECT s.source, m.mode,
       extract(epoch FROM now() - (
         SELECT min(q.created_at) FROM ingredient_match_queue q
          WHERE q.status = 'pending' AND q.source = s.source
            AND (m.mode = 'any'
                 OR (m.mode = 'ingredient' AND q.needs_ingredient_review)
                 OR (m.mode = 'unit' AND q.needs_unit_review))))::float8 AS age_s
  FROM (VALUES ('scraper'), ('recipe')) AS s(source)
 CROSS JOIN (VALUES ('any'), ('ingredient'), ('unit')) AS m(mode);

-- ===================================================================== operator actions (core/ops_actions.py)

-- name: ops_retry_failed
-- Failed rows back to pending with fresh attempts (the operator fixed the cause).
UPDATE ingredient_match_queue
   SET status = 'pending', attempt_count = 0, processing_lease_expires_at = NULL,
       last_error = 'retried by operator; was: ' || coalesce(last_error, '')
 WHERE id = ANY(ARRAY(SELECT (jsonb_populate_record(NULL::ingredient_match_queue, jsonb_build_object('id', x))).id
                    FROM unnest(CAST(:ids AS text[])) AS x)) AND status = 'failed'
RETURNING id;

-- name: ops_requeue_processing
-- A stuck processing row back to pending now. Its attempt_count stays, so the next claim
-- raises it and a late write by the old worker is fenced off.
UPDATE ingredient_match_queue
   SET status = 'pending', processing_lease_expires_at = NULL,
       last_error = 'lease requeued by operator'
 WHERE id = ANY(ARRAY(SELECT (jsonb_populate_record(NULL::ingredient_match_queue, jsonb_build_object('id', x))).id
                    FROM unnest(CAST(:ids AS text[])) AS x)) AND status = 'processing'
RETURNING id;

-- name: ops_discard
-- Rows an operator judges not worth processing become rejected (known-bad input, not a failure).
UPDATE ingredient_match_queue
   SET status = 'rejected', processing_lease_expires_at = NULL,
       last_error = 'discarded by operator: ' || CAST(:reason AS text)
 WHERE id = ANY(ARRAY(SELECT (jsonb_populate_record(NULL::ingredient_match_queue, jsonb_build_object('id', x))).id
                    FROM unnest(CAST(:ids AS text[])) AS x)) AND status IN ('pending', 'processing', 'failed')
RETURNING id;

-- name: ops_audit_insert
-- One operator action: who, what, on which rows, which of them changed.
INSERT INTO ops_audit_log (actor, action, row_ids, changed_ids, details)
VALUES (:actor, :action, CAST(:row_ids AS text[]), CAST(:changed_ids AS text[]),
        CAST(:details AS jsonb))
RETURNING id, at;

-- name: ops_audit_recent
-- The newest operator actions, newest first.
SELECT id, at, actor, action, row_ids, changed_ids, details
  FROM ops_audit_log
 ORDER BY id DESC
 LIMIT CAST(:limit AS integer);

-- name: obs_stuck_rows
-- Processing rows whose lease has run out, oldest lease first (the dashboard's requeue list).
SELECT id, source, cleaned_name, attempt_count, resolver, processing_lease_expires_at
  FROM ingredient_match_queue
 WHERE status = 'processing' AND processing_lease_expires_at < now()
 ORDER BY processing_lease_expires_at
 LIMIT CAST(:limit AS integer);
-- ===================================================================== schema adoption (core/adoption/)

-- name: adopt_lock
-- One `sous migrate` at a time per database (held until the migration's transaction ends).
SELECT pg_advisory_xact_lock(1936684402, 1835625831);

-- name: adopt_lock_timeout
-- On a live database an ALTER waiting for the nightly job's locks would queue every other query
-- behind it: give up after :seconds instead (the whole migration rolls back; run it again).
SELECT set_config('lock_timeout', CAST(:seconds AS text) || 's', true);

-- name: adopt_server_version
-- The server's version number (e.g. 150004): the planner's feature checks.
SELECT current_setting('server_version_num')::integer;

-- name: adopt_relations
-- Every relation in the current schema: name and kind (r table, p partitioned, v view, i index...).
SELECT c.relname AS name, c.relkind::text AS kind, c.relrowsecurity AS rls
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema();

-- name: adopt_columns
-- Columns of the named tables: type as written, base type name without modifiers, type kind.
SELECT c.relname AS table_name, a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS data_type,
       format_type(a.atttypid, NULL) AS base_type, t.typtype::text AS type_kind,
       a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default_expr,
       a.attidentity::text AS identity
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE n.nspname = current_schema() AND c.relname = ANY(CAST(:tables AS text[]))
 ORDER BY c.relname, a.attnum;

-- name: adopt_constraints
-- Constraints of the named tables with their columns; for foreign keys the referenced table.
SELECT c.relname AS table_name, con.conname AS name, con.contype::text AS kind,
       pg_get_constraintdef(con.oid) AS definition,
       pg_get_expr(con.conbin, con.conrelid) AS check_expr,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) k
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k) AS columns,
       CASE WHEN con.confrelid <> 0 THEN con.confrelid::regclass::text END AS ref_table
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relname = ANY(CAST(:tables AS text[]));

-- name: adopt_unique_columns
-- Single columns with a plain unique index (a primary key counts) on the named tables.
SELECT c.relname AS table_name, a.attname AS column_name
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
 WHERE n.nspname = current_schema() AND c.relname = ANY(CAST(:tables AS text[]))
   AND i.indisunique AND i.indnatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL;

-- name: adopt_triggers
-- The user triggers on the named tables (sous adds each of its triggers only when missing).
SELECT c.relname AS table_name, t.tgname AS name
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND NOT t.tgisinternal
   AND c.relname = ANY(CAST(:tables AS text[]));

-- name: adopt_policies
-- The row-level-security policies on the named tables.
SELECT tablename AS table_name, policyname AS name
  FROM pg_policies
 WHERE schemaname = current_schema() AND tablename = ANY(CAST(:tables AS text[]));

-- name: adopt_functions
-- The named functions: identity signature, result, source, full definition and ACL entries in
-- order (NULL acl: the default, EXECUTE for PUBLIC and the owner).
SELECT p.proname AS name, pg_get_function_identity_arguments(p.oid) AS args,
       pg_get_function_arguments(p.oid) AS full_args,
       pg_get_function_result(p.oid) AS result, p.prosrc AS source,
       pg_get_functiondef(p.oid) AS definition, pg_get_userbyid(p.proowner) AS owner,
       ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
               || ':' || a.privilege_type
               FROM aclexplode(p.proacl) WITH ORDINALITY AS a(grantor, grantee, privilege_type, is_grantable, ord)
              ORDER BY a.ord) AS acl,
       p.proacl IS NULL AS default_acl
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = current_schema() AND p.proname = ANY(CAST(:names AS text[]));

-- name: adopt_roles
-- Which of the named roles (Supabase's anon, authenticated, service_role) exist.
SELECT rolname AS name FROM pg_roles WHERE rolname = ANY(CAST(:names AS text[]));

-- name: adopt_supabase
-- What of Supabase's schema is there: auth.users, auth.uid(), the realtime publication.
SELECT to_regclass('auth.users') IS NOT NULL AS auth_users,
       to_regprocedure('auth.uid()') IS NOT NULL AS auth_uid,
       (SELECT puballtables FROM pg_publication WHERE pubname = 'supabase_realtime') AS all_tables,
       EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') AS publication,
       ARRAY(SELECT tablename::text FROM pg_publication_tables
              WHERE pubname = 'supabase_realtime' AND schemaname = current_schema()) AS published;

-- name: adopt_table_privileges
-- Which of the roles can read or write each named relation (directly or through PUBLIC).
SELECT c.relname AS table_name, r.rolname AS role,
       has_table_privilege(r.oid, c.oid, 'SELECT') AS can_select,
       has_table_privilege(r.oid, c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER') AS can_write
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN pg_roles r
 WHERE n.nspname = current_schema() AND c.relname = ANY(CAST(:tables AS text[]))
   AND r.rolname = ANY(CAST(:roles AS text[]));

-- name: adopt_log_read
-- The undo statements of what sous changed (all, or one revision's), newest first: the
-- downgrade runs them in this order.
SELECT seq, summary, undo FROM sous_schema_changes
 WHERE CAST(:revision AS text) IS NULL OR revision = CAST(:revision AS text)
 ORDER BY seq DESC;

-- name: adopt_log_forget
-- A downgraded revision's undo entries go once they have run.
DELETE FROM sous_schema_changes WHERE revision = CAST(:revision AS text);

-- name: adopt_log_insert
-- Records one applied step and the statement that undoes it.
INSERT INTO sous_schema_changes (revision, action, summary, undo)
VALUES (:revision, :action, :summary, :undo);

-- name: migrate_version_table_exists
-- Whether alembic's version table is there.
SELECT to_regclass('alembic_version') IS NOT NULL;

-- name: migrate_version_count
-- How many revisions alembic's version table still records.
SELECT count(*) FROM alembic_version;

-- name: migrate_drop_version_table
-- After a downgrade to base alembic's (empty) version table goes too: the app's schema had none.
DROP TABLE alembic_version;
