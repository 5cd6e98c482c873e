ALTER TYPE "public"."operation_status" ADD VALUE 'preempted';--> statement-breakpoint
ALTER TABLE "operation_targets" ADD COLUMN "urgent" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "operation_targets" ADD COLUMN "preempted_by" bigint;--> statement-breakpoint
ALTER TABLE "operation_targets" ADD CONSTRAINT "operation_targets_preempted_by_operation_targets_id_fk" FOREIGN KEY ("preempted_by") REFERENCES "public"."operation_targets"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "operation_targets_urgent_herd_idx" ON "operation_targets" USING btree ("herd_id") WHERE urgent AND status = 'queued';--> statement-breakpoint
-- An operation whose targets were preempted (and none succeeded or failed) ends preempted: it did
-- nothing wrong, and can be planned again once the urgent operation is done. Otherwise as in 0022.
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
                WHEN count(*) FILTER (WHERE t.status IN ('cancelled', 'preempted')) = count(*) THEN 'preempted'
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
