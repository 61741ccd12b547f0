"""A database shaped like the food app's Supabase project, before sous: Supabase's auth schema
(auth.users, auth.uid() reading request.jwt.claim.sub or request.jwt.claims), the roles anon,
authenticated and service_role with Supabase's default privileges, the supabase_realtime
publication, and the app's own tables with rows in every state, columns sous does not know,
foreign keys, the nightly job's claim RPC, and RLS with policies on the old ocr_jobs.

Two shapes: `uuid` (uuid queue ids, text recipe ids, profiles keyed by id as Supabase does, the
app's claim RPC returning the table's rows) and `bigint` (bigint ids, integer recipe ids,
profiles keyed by user_id without plan_limits, a claim RPC returning its own column list).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import psycopg

from core.db import libpq_url
from devtools.services import _pg_bin

USER_A = "11111111-1111-4111-8111-111111111111"
USER_B = "22222222-2222-4222-8222-222222222222"

SUPABASE_BASE = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF;
END $$;
CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY, email text, created_at timestamptz DEFAULT now());
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
CREATE PUBLICATION supabase_realtime;
INSERT INTO auth.users (id, email) VALUES
  ('11111111-1111-4111-8111-111111111111', 'a@example.com'),
  ('22222222-2222-4222-8222-222222222222', 'b@example.com');
CREATE TABLE ingredients (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text UNIQUE);
INSERT INTO ingredients (name) VALUES ('onion'), ('flour');
"""

QUEUE = """
CREATE TABLE ingredient_match_queue (
  {id_decl},
  created_at timestamptz NOT NULL DEFAULT now(),
  source text NOT NULL DEFAULT 'scraper',
  recipe_ingredient_id {recipe_type},
  raw_name text,
  cleaned_name text,
  needs_ingredient_review boolean NOT NULL DEFAULT true,
  needs_unit_review boolean NOT NULL DEFAULT false,
  status text NOT NULL DEFAULT 'pending'
    CONSTRAINT imq_status_check CHECK (status IN ('pending', 'processing', 'resolved', 'failed', 'rejected'))
    CONSTRAINT imq_status_format CHECK (status NOT LIKE '%%!%%'),
  resolver text,
  processing_started_at timestamptz,
  canonical_name text,
  resolved_unit text,
  resolved_at timestamptz,
  -- the nightly job's own columns, unknown to sous
  matched_name text,
  matched_unit text,
  ingredient_id bigint REFERENCES ingredients (id),
  notes text
);
CREATE INDEX imq_status_idx ON ingredient_match_queue (status);
INSERT INTO ingredient_match_queue
  (source, recipe_ingredient_id, raw_name, cleaned_name, status, resolver, processing_started_at,
   canonical_name, resolved_unit, resolved_at, matched_name, matched_unit, ingredient_id, notes,
   created_at)
SELECT CASE WHEN g % 5 = 0 THEN 'recipe' ELSE 'scraper' END,
       {recipe_value},
       '2 cups ' || name, name, st,
       CASE WHEN st <> 'pending' THEN 'nightly' END,
       CASE WHEN st <> 'pending' THEN now() - interval '1 day' END,
       CASE WHEN st = 'resolved' THEN name END, CASE WHEN st = 'resolved' THEN 'cup' END,
       CASE WHEN st = 'resolved' THEN now() - interval '1 day' END,
       CASE WHEN st = 'resolved' THEN name END, CASE WHEN st = 'resolved' THEN 'cup' END,
       CASE WHEN st = 'resolved' AND name = 'onion' THEN 1 END,
       CASE WHEN st = 'failed' THEN 'nightly gave up' END,
       now() - interval '2 days' + g * interval '1 second'
  FROM generate_series(1, 40) g,
       LATERAL (SELECT (ARRAY['onion', 'flour', 'butter', 'garlic', 'sugar', 'rice', 'basil',
                              'salt'])[1 + g % 8] AS name,
                       (ARRAY['pending', 'pending', 'pending', 'processing', 'resolved', 'failed',
                              'rejected', 'resolved'])[1 + g % 8] AS st) v;
"""

APP_CLAIM_UUID = """
CREATE FUNCTION claim_ingredient_match_queue(p_limit integer, p_resolver text, p_lease_seconds integer,
    p_review_mode text, p_source text) RETURNS SETOF ingredient_match_queue LANGUAGE sql AS $$
  UPDATE ingredient_match_queue SET status = 'processing', resolver = p_resolver,
         processing_started_at = now()
   WHERE id IN (SELECT id FROM ingredient_match_queue WHERE status = 'pending'
                 ORDER BY created_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
  RETURNING *
$$;
"""

APP_CLAIM_BIGINT = """
CREATE FUNCTION claim_ingredient_match_queue(p_limit integer, p_resolver text, p_lease_seconds integer,
    p_review_mode text, p_source text) RETURNS TABLE (id bigint, raw_name text) LANGUAGE sql AS $$
  UPDATE ingredient_match_queue q SET status = 'processing', resolver = p_resolver
   WHERE q.id IN (SELECT q2.id FROM ingredient_match_queue q2 WHERE q2.status = 'pending'
                   ORDER BY q2.created_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
  RETURNING q.id, q.raw_name
$$;
REVOKE ALL ON FUNCTION claim_ingredient_match_queue(integer, text, integer, text, text) FROM anon;
"""

OCR_JOBS = """
CREATE TABLE ocr_jobs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL,
  image_url text,
  image_hash text,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
  result jsonb,
  error_message text,
  restaurant_name text,
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
);
ALTER TABLE ocr_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view their own OCR jobs" ON ocr_jobs FOR SELECT TO authenticated
  USING (auth.uid() = user_id);
CREATE POLICY "Users can create their own OCR jobs" ON ocr_jobs FOR INSERT TO authenticated
  WITH CHECK (auth.uid() = user_id);
INSERT INTO ocr_jobs (user_id, image_hash, status, result, restaurant_name)
SELECT CASE WHEN g % 2 = 0 THEN '11111111-1111-4111-8111-111111111111'::uuid
            ELSE '22222222-2222-4222-8222-222222222222'::uuid END,
       md5(g::text) || md5(g::text), st,
       CASE WHEN st = 'completed' THEN '{"menu": {"categories": []}}'::jsonb END, 'Diner ' || g
  FROM generate_series(1, 8) g,
       LATERAL (SELECT (ARRAY['queued', 'processing', 'completed', 'failed'])[1 + g % 4] AS st) v;
"""

PROFILES_BY_ID = """
CREATE TABLE profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  full_name text,
  plan text NOT NULL DEFAULT 'free',
  plan_limits jsonb DEFAULT '{}'::jsonb
);
ALTER TABLE profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Profiles are viewable by their owner" ON profiles FOR SELECT USING (auth.uid() = id);
INSERT INTO profiles (id, full_name, plan, plan_limits) VALUES
  ('11111111-1111-4111-8111-111111111111', 'A', 'premium', '{"ocr_jobs": 7, "monthly_uploads": 9}'),
  ('22222222-2222-4222-8222-222222222222', 'B', 'free', '{}');
ALTER PUBLICATION supabase_realtime ADD TABLE profiles;
"""

PROFILES_BY_USER_ID = """
CREATE TABLE profiles (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id uuid NOT NULL UNIQUE REFERENCES auth.users (id),
  display_name text,
  plan text NOT NULL DEFAULT 'free'
);
INSERT INTO profiles (user_id, display_name, plan) VALUES
  ('11111111-1111-4111-8111-111111111111', 'A', 'enterprise'),
  ('22222222-2222-4222-8222-222222222222', 'B', 'free');
"""


@dataclass(frozen=True)
class Shape:
    name: str
    id_type: str  # of ingredient_match_queue.id
    profiles_key: str


SHAPES = {
    "uuid": Shape("uuid", "uuid", "id"),
    "bigint": Shape("bigint", "bigint", "user_id"),
}


def build(url: str, shape: Shape) -> None:
    if shape.id_type == "uuid":
        queue = QUEUE.format(
            id_decl="id uuid PRIMARY KEY DEFAULT gen_random_uuid()",
            recipe_type="text",
            recipe_value="CASE WHEN g % 5 = 0 THEN 'ri-' || g END",
        )
        extra = APP_CLAIM_UUID + PROFILES_BY_ID
    else:
        queue = QUEUE.format(
            id_decl="id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            recipe_type="integer",
            recipe_value="CASE WHEN g % 5 = 0 THEN g END",
        )
        extra = APP_CLAIM_BIGINT + PROFILES_BY_USER_ID
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(SUPABASE_BASE)
        conn.execute(queue)
        conn.execute(OCR_JOBS)
        conn.execute(extra)


def schema_dump(url: str) -> str:
    """pg_dump --schema-only of the database (the server's own version), minus the random
    \\restrict key lines newer pg_dump releases print."""
    out = subprocess.run(
        [_pg_bin("pg_dump"), "--schema-only", "--no-owner", libpq_url(url)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "\n".join(line for line in out.splitlines() if not re.match(r"^\\(un)?restrict ", line))


def columns(url: str, table: str) -> list[tuple[str, str]]:
    """(name, type) of a table's columns in order."""
    with psycopg.connect(libpq_url(url)) as conn:
        return [
            (str(r[0]), str(r[1]))
            for r in conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (table,),
            ).fetchall()
        ]


def rows(url: str, table: str, cols: list[str]) -> list[str]:
    """The given columns of every row as text, in id order (the exact values)."""
    listed = ", ".join(f'"{c}"' for c in cols)
    with psycopg.connect(libpq_url(url)) as conn:
        return [
            str(r[0])
            for r in conn.execute(f"SELECT row({listed})::text FROM {table} ORDER BY id::text").fetchall()
        ]


# A third shape, without Supabase: serial integer ids, uuid recipe ids, a varchar status with no
# CHECK, NULL review flags from an old writer, menu_extraction_jobs already there (no ocr_jobs),
# profiles keyed by user_id with an enum plan and json plan_limits.
PLAIN = """
CREATE TYPE plan_tier AS ENUM ('free', 'premium', 'enterprise');
CREATE TABLE ingredient_match_queue (
  id serial PRIMARY KEY,
  created_at timestamp NOT NULL DEFAULT now(),
  recipe_ingredient_id uuid,
  raw_name varchar(500),
  cleaned_name varchar(500),
  needs_ingredient_review boolean,
  status varchar(16) NOT NULL DEFAULT 'pending',
  attempt_count integer,
  confidence numeric(4, 3),
  reviewer_note text
);
INSERT INTO ingredient_match_queue (recipe_ingredient_id, raw_name, cleaned_name, status, attempt_count)
SELECT CASE WHEN g % 2 = 0 THEN gen_random_uuid() END, '1 tsp salt ' || g, 'salt ' || g,
       (ARRAY['pending', 'resolved', 'failed'])[1 + g % 3], CASE WHEN g % 3 = 1 THEN 1 END
  FROM generate_series(1, 30) g;
CREATE TABLE menu_extraction_jobs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL,
  image_url text,
  status text NOT NULL DEFAULT 'queued',
  result json,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO menu_extraction_jobs (user_id, status) VALUES
  ('11111111-1111-4111-8111-111111111111', 'completed'), ('11111111-1111-4111-8111-111111111111', 'queued');
CREATE TABLE profiles (user_id uuid PRIMARY KEY, plan plan_tier NOT NULL DEFAULT 'free', plan_limits json);
INSERT INTO profiles VALUES ('11111111-1111-4111-8111-111111111111', 'premium', '{"ocr_jobs": 3}');
"""


def build_plain(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(PLAIN)
