ALTER TABLE "operations" ADD COLUMN "action_params" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
CREATE INDEX "herd_leases_target_idx" ON "herd_leases" USING btree ("target_id");--> statement-breakpoint
-- The action's parameters move out of params (which keeps the target ids it was asked for): the
-- claim of every target read them with `params -> 'actionParams'`, decompressing the whole list of
-- an operation's ids each time.
UPDATE "operations" SET "action_params" = coalesce("params" -> 'actionParams', '{}'::jsonb), "params" = "params" - 'actionParams' WHERE "params" ? 'actionParams';

--> statement-breakpoint
-- Settling as in 0018, with its two "is anything still open?" probes asked as min() over the open
-- targets' partial index. As EXISTS, with statistics taken when every target of the operation was
-- queued (submit analyzes), the planner chose a sequential scan (its first row would match), which as
-- targets ended walked past every ended one: a scan of the operation for every target that ends,
-- quadratic in the operation's size. min() reads the first entry of the index, whatever the statistics.
CREATE OR REPLACE FUNCTION pgherd_settle_operation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rolling boolean;
BEGIN
  SELECT waves IS NOT NULL INTO rolling FROM operations WHERE id = NEW.operation_id AND finished_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF rolling AND (SELECT min(wave) FROM operation_targets
                  WHERE operation_id = NEW.operation_id AND wave = NEW.wave AND status IN ('queued', 'running')) IS NULL THEN
    PERFORM pg_notify('pgherd_waves', NEW.operation_id::text);
  END IF;
  IF (SELECT min(wave) FROM operation_targets WHERE operation_id = NEW.operation_id AND status IN ('queued', 'running')) IS NOT NULL THEN
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
