DROP INDEX "operation_targets_open_operation_idx";--> statement-breakpoint
CREATE INDEX "operation_targets_open_operation_idx" ON "operation_targets" USING btree ("operation_id","wave","id") WHERE status IN ('queued', 'running');--> statement-breakpoint
-- Settling as in 0021, with its two "is anything still open?" probes asked as "the first open target
-- at or after this one's place, in the order of the open targets' index". min() in 0021 became, for
-- the planner, "any matching row, LIMIT 1": with statistics taken when every target was queued it
-- chose a sequential scan for the wave's probe (its first row would match), which walked past every
-- ended target of the table, for every target that ended (3 ms each at 20,000 targets, with the
-- operation's row locked: the waves benchmark ran at half speed). An ORDER BY that only this index
-- gives leaves the planner nothing cheaper than reading its first entry.
CREATE OR REPLACE FUNCTION pgherd_settle_operation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rolling boolean;
  still_open boolean;
BEGIN
  SELECT waves IS NOT NULL INTO rolling FROM operations WHERE id = NEW.operation_id AND finished_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF rolling THEN
    still_open := NULL;
    SELECT t.operation_id = NEW.operation_id AND t.wave = NEW.wave INTO still_open FROM operation_targets t
      WHERE (t.operation_id, t.wave) >= (NEW.operation_id, NEW.wave) AND t.status IN ('queued', 'running')
      ORDER BY t.operation_id, t.wave, t.id LIMIT 1;
    IF NOT coalesce(still_open, false) THEN
      PERFORM pg_notify('pgherd_waves', NEW.operation_id::text);
    END IF;
  END IF;
  still_open := NULL;
  SELECT t.operation_id = NEW.operation_id INTO still_open FROM operation_targets t
    WHERE t.operation_id >= NEW.operation_id AND t.status IN ('queued', 'running')
    ORDER BY t.operation_id, t.wave, t.id LIMIT 1;
  IF coalesce(still_open, false) THEN
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
