"""The SQL functions sous installs. The claim and requeue RPCs keep the signatures the existing
app calls, and work with whatever the queue table holds: they return the table's own row type
and compare ids with ids, so bigint, uuid or text keys all work. Rows an old writer inserted
without source or review flags (NULL) count as a scraper row that needs its ingredient named."""

from __future__ import annotations

from core.adoption.spec import Function

TOUCH = Function(
    "sous_touch_updated_at",
    "",
    "trigger",
    "LANGUAGE plpgsql",
    """
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
""",
)

QUEUE_NOTIFY = Function(
    "ingredient_match_queue_notify",
    "",
    "trigger",
    "LANGUAGE plpgsql",
    """
DECLARE
  n bigint;
BEGIN
  SELECT count(*) INTO n FROM new_rows;
  IF n > 0 THEN
    PERFORM pg_notify('ingredient_match_queue', json_build_object('count', n)::text);
  END IF;
  RETURN NULL;
END
""",
)

# The maximum number of attempts. A database-wide default can be set with
# ALTER DATABASE ... SET sous.queue_max_attempts = N; sous sets it per transaction.
MAX_ATTEMPTS = Function(
    "sous_queue_max_attempts",
    "",
    "integer",
    "LANGUAGE sql STABLE",
    """
  SELECT coalesce(nullif(current_setting('sous.queue_max_attempts', true), '')::integer, 3)
""",
)

CLAIM = Function(
    "claim_ingredient_match_queue",
    "p_limit integer, p_resolver text, p_lease_seconds integer, p_review_mode text, p_source text",
    "SETOF ingredient_match_queue",
    "LANGUAGE plpgsql",
    """
DECLARE
  v_max integer := sous_queue_max_attempts();
BEGIN
  IF p_review_mode NOT IN ('ingredient', 'unit', 'any') THEN
    RAISE EXCEPTION 'p_review_mode must be ingredient, unit or any, not %', p_review_mode
      USING ERRCODE = '22023';
  END IF;
  IF p_source NOT IN ('scraper', 'recipe', 'any') THEN
    RAISE EXCEPTION 'p_source must be scraper, recipe or any, not %', p_source
      USING ERRCODE = '22023';
  END IF;
  RETURN QUERY
  WITH candidates AS (
    SELECT q.id
    FROM ingredient_match_queue q
    WHERE q.status IN ('pending', 'processing')
      AND (q.status = 'pending'
           OR (q.status = 'processing'
               AND q.processing_lease_expires_at < now()
               AND coalesce(q.attempt_count, 0) < v_max))
      AND (p_source = 'any' OR coalesce(q.source, 'scraper') = p_source)
      AND (p_review_mode = 'any'
           OR (p_review_mode = 'ingredient' AND coalesce(q.needs_ingredient_review, true))
           OR (p_review_mode = 'unit' AND coalesce(q.needs_unit_review, false)))
    ORDER BY q.created_at, q.id
    LIMIT greatest(p_limit, 0)
    FOR UPDATE SKIP LOCKED
  )
  UPDATE ingredient_match_queue q
     SET status = 'processing',
         resolver = p_resolver,
         processing_started_at = now(),
         processing_lease_expires_at = now() + make_interval(secs => coalesce(p_lease_seconds, 180)),
         attempt_count = coalesce(q.attempt_count, 0) + 1
    FROM candidates c
   WHERE q.id = c.id
  RETURNING q.*;
END
""",
)

REQUEUE = Function(
    "requeue_expired_ingredient_match_queue",
    "p_limit integer, p_error text",
    "integer",
    "LANGUAGE plpgsql",
    """
DECLARE
  v_max integer := sous_queue_max_attempts();
  v_count integer;
BEGIN
  WITH expired AS (
    SELECT id
    FROM ingredient_match_queue
    WHERE status = 'processing' AND processing_lease_expires_at < now()
    ORDER BY processing_lease_expires_at
    LIMIT greatest(p_limit, 0)
    FOR UPDATE SKIP LOCKED
  )
  UPDATE ingredient_match_queue q
     SET status = CASE WHEN coalesce(q.attempt_count, 0) >= v_max THEN 'failed' ELSE 'pending' END,
         last_error = coalesce(p_error, 'lease expired'),
         processing_lease_expires_at = NULL
    FROM expired e
   WHERE q.id = e.id;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
""",
)

MENU_NOTIFY = Function(
    "menu_extraction_jobs_notify",
    "",
    "trigger",
    "LANGUAGE plpgsql",
    """
BEGIN
  PERFORM pg_notify('menu_extraction_jobs', json_build_object(
    'id', NEW.id, 'status', NEW.status, 'user_id', NEW.user_id, 'confidence', NEW.confidence
  )::text);
  RETURN NULL;
END
""",
)

# In dependency order: the triggers' functions before the tables, the RPCs after the queue.
BEFORE_TABLES = (TOUCH, QUEUE_NOTIFY, MAX_ATTEMPTS, MENU_NOTIFY)
AFTER_QUEUE = (CLAIM, REQUEUE)
ALL = BEFORE_TABLES + AFTER_QUEUE
