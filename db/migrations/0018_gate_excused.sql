ALTER TABLE "operations" ADD COLUMN "gate_excused" integer[] DEFAULT '{}'::integer[] NOT NULL;--> statement-breakpoint
-- Settling as in 0017, and: a settled operation is no longer paused (the reason stays, as why it
-- last stopped); its waves that never started are skipped, the others ended.
CREATE OR REPLACE FUNCTION pgherd_settle_operation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rolling boolean;
BEGIN
  SELECT waves IS NOT NULL INTO rolling FROM operations WHERE id = NEW.operation_id AND finished_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF rolling AND NOT EXISTS (SELECT 1 FROM operation_targets
                             WHERE operation_id = NEW.operation_id AND wave = NEW.wave AND status IN ('queued', 'running')) THEN
    PERFORM pg_notify('pgherd_waves', NEW.operation_id::text);
  END IF;
  IF EXISTS (SELECT 1 FROM operation_targets WHERE operation_id = NEW.operation_id AND status IN ('queued', 'running')) THEN
    RETURN NULL;
  END IF;
  UPDATE operations o SET finished_at = now(), updated_at = now(), paused_at = NULL, status = (
    SELECT CASE WHEN count(*) FILTER (WHERE t.status = 'succeeded') = count(*) THEN 'succeeded'
                WHEN count(*) FILTER (WHERE t.status = 'succeeded') > 0 THEN 'partial'
                WHEN count(*) FILTER (WHERE t.status = 'cancelled') = count(*) THEN 'cancelled'
                ELSE 'failed' END::operation_status
    FROM operation_targets t WHERE t.operation_id = o.id)
  WHERE o.id = NEW.operation_id;
  IF rolling THEN
    UPDATE operation_waves SET status = CASE WHEN status = 'pending' THEN 'skipped' ELSE 'ended' END,
                               ended_at = CASE WHEN status = 'pending' THEN NULL ELSE coalesce(ended_at, now()) END, updated_at = now()
      WHERE operation_id = NEW.operation_id AND status IN ('pending', 'running', 'soaking', 'held');
  END IF;
  RETURN NULL;
END
$$;
