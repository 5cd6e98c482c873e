CREATE TABLE "operation_waves" (
	"id" serial PRIMARY KEY NOT NULL,
	"operation_id" integer NOT NULL,
	"wave" integer NOT NULL,
	"targets" integer NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"started_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	"soak_from" timestamp with time zone,
	"passed_at" timestamp with time zone,
	"gate_note" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sites" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"max_running" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
DROP INDEX "operation_targets_operation_idx";--> statement-breakpoint
DROP INDEX "operation_targets_open_operation_idx";--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "max_running" integer;--> statement-breakpoint
ALTER TABLE "operation_targets" ADD COLUMN "wave" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "operation_targets" ADD COLUMN "held" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "operation_targets" ADD COLUMN "site" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "waves" jsonb;--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "current_wave" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "paused_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "paused_reason" text;--> statement-breakpoint
ALTER TABLE "operation_waves" ADD CONSTRAINT "operation_waves_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "operation_waves_key" ON "operation_waves" USING btree ("operation_id","wave");--> statement-breakpoint
CREATE UNIQUE INDEX "sites_name_key" ON "sites" USING btree ("name");--> statement-breakpoint
CREATE INDEX "operation_targets_running_site_idx" ON "operation_targets" USING btree ("site") WHERE status = 'running';--> statement-breakpoint
CREATE INDEX "operations_rolling_idx" ON "operations" USING btree ("id") WHERE finished_at IS NULL AND waves IS NOT NULL;--> statement-breakpoint
CREATE INDEX "operation_targets_operation_idx" ON "operation_targets" USING btree ("operation_id","wave");--> statement-breakpoint
CREATE INDEX "operation_targets_open_operation_idx" ON "operation_targets" USING btree ("operation_id","wave") WHERE status IN ('queued', 'running');--> statement-breakpoint
-- The failure budget (operations.waves -> 'budget'), kept by the database like settling: in the statement
-- that makes a target fail, whoever ends it (a worker, the reconciler). When the failed targets reach
-- the budget, the operation pauses with the reason and its queued targets are held: the running ones
-- finish, nothing new starts. Failures of one operation are serialized on its row.
CREATE OR REPLACE FUNCTION pgherd_failure_budget() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  b jsonb;
  failed int;
  started int;
  reason text;
BEGIN
  SELECT waves -> 'budget' INTO b FROM operations
    WHERE id = NEW.operation_id AND finished_at IS NULL AND paused_at IS NULL AND NOT cancel_requested FOR UPDATE;
  IF b IS NULL OR jsonb_typeof(b) <> 'object' THEN
    RETURN NULL;
  END IF;
  SELECT count(*) FILTER (WHERE status IN ('failed', 'interrupted')), count(*) FILTER (WHERE attempts > 0)
    INTO failed, started FROM operation_targets WHERE operation_id = NEW.operation_id;
  IF jsonb_typeof(b -> 'failures') = 'number' AND failed >= (b ->> 'failures')::numeric THEN
    reason := format('failure budget spent: %s of %s started targets failed (budget: %s)', failed, started, b ->> 'failures');
  ELSIF jsonb_typeof(b -> 'percent') = 'number' AND failed * 100 > (b ->> 'percent')::numeric * started THEN
    reason := format('failure budget spent: %s of %s started targets failed, more than %s%%', failed, started, b ->> 'percent');
  ELSE
    RETURN NULL;
  END IF;
  UPDATE operations SET paused_at = now(), paused_reason = reason, updated_at = now() WHERE id = NEW.operation_id;
  UPDATE operation_targets SET held = true, updated_at = now() WHERE operation_id = NEW.operation_id AND status = 'queued' AND NOT held;
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- Named to fire before operation_targets_settle (triggers fire in name order).
CREATE TRIGGER operation_targets_budget AFTER UPDATE OF status ON operation_targets FOR EACH ROW
  WHEN (OLD.status = 'running' AND NEW.status IN ('failed', 'interrupted'))
  EXECUTE FUNCTION pgherd_failure_budget();
--> statement-breakpoint
ALTER TABLE "environments" ADD CONSTRAINT "environments_max_running_positive" CHECK (max_running IS NULL OR max_running > 0);
--> statement-breakpoint
ALTER TABLE "sites" ADD CONSTRAINT "sites_max_running_positive" CHECK (max_running IS NULL OR max_running > 0);
--> statement-breakpoint
-- Settling as in 0004, and one thing more: when the target that ends is the last open one of its wave
-- in a rolling operation, the wave conductor is told at once (NOTIFY, delivered at commit), so that
-- the next wave does not wait for the conductor's next round. After the row lock, so that of two
-- targets ending at once the later one sees both ended.
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
  UPDATE operations o SET finished_at = now(), updated_at = now(), status = (
    SELECT CASE WHEN count(*) FILTER (WHERE t.status = 'succeeded') = count(*) THEN 'succeeded'
                WHEN count(*) FILTER (WHERE t.status = 'succeeded') > 0 THEN 'partial'
                WHEN count(*) FILTER (WHERE t.status = 'cancelled') = count(*) THEN 'cancelled'
                ELSE 'failed' END::operation_status
    FROM operation_targets t WHERE t.operation_id = o.id)
  WHERE o.id = NEW.operation_id;
  IF rolling THEN
    UPDATE operation_waves SET status = 'ended', ended_at = coalesce(ended_at, now()), updated_at = now()
      WHERE operation_id = NEW.operation_id AND status IN ('running', 'soaking', 'held');
  END IF;
  RETURN NULL;
END
$$;
