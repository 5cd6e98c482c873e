CREATE TABLE "parameter_group_versions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"group_id" integer NOT NULL,
	"version" integer NOT NULL,
	"name" text NOT NULL,
	"settings" text NOT NULL,
	"author" text NOT NULL,
	"note" text DEFAULT '' NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "parameter_groups" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"settings" text DEFAULT '' NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "setting_catalog" (
	"major" smallint NOT NULL,
	"name" text NOT NULL,
	"vartype" text NOT NULL,
	"unit" text,
	"context" text NOT NULL,
	"min_val" text,
	"max_val" text,
	"enum_vals" jsonb,
	"boot_val" text,
	CONSTRAINT "setting_catalog_major_name_pk" PRIMARY KEY("major","name")
);
--> statement-breakpoint
CREATE TABLE "setting_snapshots" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"instance_id" bigint NOT NULL,
	"herd_id" integer NOT NULL,
	"server_version_num" integer NOT NULL,
	"settings" jsonb NOT NULL,
	"changed" jsonb NOT NULL,
	"effective_at" timestamp with time zone NOT NULL,
	"read_at" timestamp with time zone DEFAULT now() NOT NULL,
	"operation_id" bigint
);
--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "parameter_group_id" integer;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "parameter_group_id" integer;--> statement-breakpoint
ALTER TABLE "herds" ADD COLUMN "setting_overrides" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "instance_counts" ADD COLUMN "settings_status" text DEFAULT 'no group' NOT NULL;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "parameter_group_id" integer;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "conf_loaded_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "settings_snapshot_id" bigint;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "settings_loaded_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "settings_drift" integer;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "settings_drift_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "settings_wanted_digest" text;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "settings_status" text GENERATED ALWAYS AS (CASE WHEN settings_drift > 0 THEN 'drifted' WHEN settings_drift = 0 THEN 'in line' ELSE 'no group' END) STORED NOT NULL;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "memory_mb" integer;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "cpus" integer;--> statement-breakpoint
CREATE UNIQUE INDEX "parameter_group_versions_key" ON "parameter_group_versions" USING btree ("group_id","version");--> statement-breakpoint
CREATE UNIQUE INDEX "parameter_groups_name_key" ON "parameter_groups" USING btree ("name");--> statement-breakpoint
CREATE INDEX "setting_snapshots_instance_idx" ON "setting_snapshots" USING btree ("instance_id","effective_at");--> statement-breakpoint
ALTER TABLE "environments" ADD CONSTRAINT "environments_parameter_group_id_parameter_groups_id_fk" FOREIGN KEY ("parameter_group_id") REFERENCES "public"."parameter_groups"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "herds" ADD CONSTRAINT "herds_parameter_group_id_parameter_groups_id_fk" FOREIGN KEY ("parameter_group_id") REFERENCES "public"."parameter_groups"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "instances" ADD CONSTRAINT "instances_parameter_group_id_parameter_groups_id_fk" FOREIGN KEY ("parameter_group_id") REFERENCES "public"."parameter_groups"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
-- instance_counts gets the settings facet (drifted / in line / no group): each function and the update
-- trigger as in 0026, with settings_status beside the other cells.
CREATE OR REPLACE FUNCTION pgherd_count_instances() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO instance_counts (environment_id, role, state, pg_version, site, instance_type, zone, settings_status, n)
      SELECT environment_id, role, state, pg_version, site, instance_type, zone, settings_status, count(*) FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO instance_counts (environment_id, role, state, pg_version, site, instance_type, zone, settings_status, n)
      SELECT environment_id, role, state, pg_version, site, instance_type, zone, settings_status, -count(*) FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE OR REPLACE FUNCTION pgherd_count_instance_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO instance_counts (environment_id, role, state, pg_version, site, instance_type, zone, settings_status, n) VALUES
    (OLD.environment_id, OLD.role, OLD.state, OLD.pg_version, OLD.site, OLD.instance_type, OLD.zone, OLD.settings_status, -1),
    (NEW.environment_id, NEW.role, NEW.state, NEW.pg_version, NEW.site, NEW.instance_type, NEW.zone, NEW.settings_status, 1);
  RETURN NULL;
END
$$;--> statement-breakpoint
DROP TRIGGER instances_count_update ON instances;--> statement-breakpoint
CREATE TRIGGER instances_count_update AFTER UPDATE ON instances FOR EACH ROW
  WHEN ((OLD.environment_id, OLD.role, OLD.state, OLD.pg_version, OLD.site, OLD.instance_type, OLD.zone, OLD.settings_status)
    IS DISTINCT FROM (NEW.environment_id, NEW.role, NEW.state, NEW.pg_version, NEW.site, NEW.instance_type, NEW.zone, NEW.settings_status))
  EXECUTE FUNCTION pgherd_count_instance_moved();--> statement-breakpoint
CREATE OR REPLACE FUNCTION pgherd_compact_instance_counts() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  kept int;
BEGIN
  IF NOT pg_try_advisory_xact_lock(72842003) THEN
    RETURN NULL;
  END IF;
  WITH gone AS (DELETE FROM instance_counts RETURNING *), folded AS (
    INSERT INTO instance_counts (environment_id, role, state, pg_version, site, instance_type, zone, settings_status, n)
      SELECT environment_id, role, state, pg_version, site, instance_type, zone, settings_status, sum(n)::int FROM gone GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING sum(n) <> 0
      RETURNING 1)
  SELECT count(*) INTO kept FROM folded;
  RETURN kept;
END
$$;--> statement-breakpoint
DELETE FROM "instance_counts";--> statement-breakpoint
INSERT INTO "instance_counts" (environment_id, role, state, pg_version, site, instance_type, zone, settings_status, n)
  SELECT "environment_id", "role", "state", "pg_version", "site", "instance_type", "zone", "settings_status", count(*) FROM "instances" GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
--> statement-breakpoint
-- The starting groups pgherd ships (docs/parameter-groups.md says where each formula comes from);
-- assigned to nothing: an admin assigns them, or copies and edits them.
INSERT INTO "parameter_groups" ("name", "description", "settings") VALUES
('oltp', 'Many short transactions: a quarter of memory for shared buffers, SSD costs, parallelism from the cores.', $$checkpoint_completion_target = '0.9'
effective_cache_size = '{memory_mb * 3 / 4}MB'
effective_io_concurrency = '200'
maintenance_work_mem = '{min(memory_mb / 16, 2048)}MB'
max_connections = '200'
max_parallel_maintenance_workers = '{max(cpus / 2, 1)}'
max_parallel_workers = '{cpus}'
max_parallel_workers_per_gather = '{max(cpus / 4, 1)}'
max_wal_size = '4GB'
max_worker_processes = '{max(cpus, 8)}'
min_wal_size = '1GB'
random_page_cost = '1.1'
shared_buffers = '{memory_mb / 4}MB'
wal_buffers = '16MB'
work_mem = '{max(memory_mb / 800, 4)}MB'$$),
('reporting', 'Few long queries: larger sorts and hashes, every core for one query, fuller statistics.', $$checkpoint_completion_target = '0.9'
default_statistics_target = '500'
effective_cache_size = '{memory_mb * 3 / 4}MB'
effective_io_concurrency = '200'
maintenance_work_mem = '{min(memory_mb / 8, 4096)}MB'
max_connections = '100'
max_parallel_workers = '{cpus}'
max_parallel_workers_per_gather = '{max(cpus / 2, 1)}'
max_wal_size = '8GB'
max_worker_processes = '{max(cpus, 8)}'
random_page_cost = '1.1'
shared_buffers = '{memory_mb / 4}MB'
work_mem = '{max(memory_mb / 100, 16)}MB'$$),
('small', 'Development and test hosts that share their memory with other things.', $$effective_cache_size = '{memory_mb / 2}MB'
maintenance_work_mem = '64MB'
max_connections = '50'
shared_buffers = '{memory_mb / 8}MB'
work_mem = '4MB'$$);
--> statement-breakpoint
INSERT INTO "parameter_group_versions" ("group_id", "version", "name", "settings", "author", "note")
SELECT "id", 1, "name", "settings", 'pgherd', 'shipped with pgherd' FROM "parameter_groups";
