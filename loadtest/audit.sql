-- Installed by the soak and chaos runs (never by migrations): one row per transition of a queue
-- row into a terminal state, so the SLO gate can prove that no row was resolved twice.
CREATE TABLE IF NOT EXISTS soak_transitions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue_id bigint NOT NULL,
  attempt integer NOT NULL,
  old_status text,
  new_status text NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS soak_transitions_queue_idx ON soak_transitions (queue_id);

CREATE OR REPLACE FUNCTION soak_record_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('resolved', 'failed', 'rejected') THEN
    INSERT INTO soak_transitions (queue_id, attempt, old_status, new_status)
    VALUES (NEW.id, NEW.attempt_count, OLD.status, NEW.status);
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS soak_record_transition ON ingredient_match_queue;
CREATE TRIGGER soak_record_transition AFTER UPDATE ON ingredient_match_queue
  FOR EACH ROW EXECUTE FUNCTION soak_record_transition();
