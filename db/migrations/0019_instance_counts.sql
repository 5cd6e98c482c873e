CREATE EXTENSION IF NOT EXISTS pg_trgm;--> statement-breakpoint
CREATE TABLE "instance_counts" (
	"environment_id" integer NOT NULL,
	"role" "instance_role" NOT NULL,
	"state" "instance_state" NOT NULL,
	"pg_version" smallint NOT NULL,
	"site" text NOT NULL,
	"n" integer NOT NULL
);
--> statement-breakpoint
DROP INDEX "instances_lag_idx";--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "environment_id" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "site" text DEFAULT '' NOT NULL;--> statement-breakpoint
CREATE INDEX "herds_name_trgm_idx" ON "herds" USING gin ("name" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "instances_environment_lag_idx" ON "instances" USING btree ("environment_id","lag_bytes" DESC NULLS LAST,"id");--> statement-breakpoint
CREATE INDEX "instances_site_idx" ON "instances" USING btree ("site");--> statement-breakpoint
CREATE INDEX "servers_hostname_trgm_idx" ON "servers" USING gin ("hostname" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "instances_lag_idx" ON "instances" USING btree ("lag_bytes" DESC NULLS LAST,"id");--> statement-breakpoint
UPDATE "instances" i SET "environment_id" = h."environment_id" FROM "herds" h WHERE h."id" = i."herd_id";--> statement-breakpoint
UPDATE "instances" i SET "site" = s."site" FROM "servers" s WHERE s."id" = i."server_id";--> statement-breakpoint
INSERT INTO "instance_counts" SELECT "environment_id", "role", "state", "pg_version", "site", count(*) FROM "instances" GROUP BY 1, 2, 3, 4, 5;--> statement-breakpoint
-- An instance's environment and site are its herd's and its server's, whatever the application writes.
-- Read without a lock: a herd or server that moves takes a table lock on instances first (below), so
-- it waits for every writer that may have read its old value, and then corrects what they wrote.
CREATE FUNCTION pgherd_instance_place() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  env int;
  place text;
BEGIN
  SELECT environment_id INTO env FROM herds WHERE id = NEW.herd_id;
  -- Not found: left as it is, for the foreign key to refuse the row with its own error.
  IF FOUND THEN
    NEW.environment_id := env;
  END IF;
  SELECT site INTO place FROM servers WHERE id = NEW.server_id;
  IF FOUND THEN
    NEW.site := place;
  END IF;
  RETURN NEW;
END
$$;--> statement-breakpoint
CREATE TRIGGER instances_place BEFORE INSERT OR UPDATE OF herd_id, server_id, environment_id, site ON instances
  FOR EACH ROW EXECUTE FUNCTION pgherd_instance_place();--> statement-breakpoint
-- SHARE ROW EXCLUSIVE: waits for every transaction that wrote instances (and may have read the old
-- environment or site) to end, keeps new writers out until this one ends, and two moves take turns.
-- (A herd's move already waits for a transaction that added an instance to it: environment_id is in a
-- unique index of herds, so the update locks the row against the foreign key's check. A server's site
-- is in none: without this lock, an instance added meanwhile keeps the old site.)
CREATE FUNCTION pgherd_herd_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  LOCK TABLE instances IN SHARE ROW EXCLUSIVE MODE;
  UPDATE instances SET environment_id = NEW.environment_id WHERE herd_id = NEW.id;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER herds_moved AFTER UPDATE OF environment_id ON herds
  FOR EACH ROW WHEN (OLD.environment_id IS DISTINCT FROM NEW.environment_id) EXECUTE FUNCTION pgherd_herd_moved();--> statement-breakpoint
CREATE FUNCTION pgherd_server_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  LOCK TABLE instances IN SHARE ROW EXCLUSIVE MODE;
  UPDATE instances SET site = NEW.site WHERE server_id = NEW.id;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER servers_moved AFTER UPDATE OF site ON servers
  FOR EACH ROW WHEN (OLD.site IS DISTINCT FROM NEW.site) EXECUTE FUNCTION pgherd_server_moved();--> statement-breakpoint
-- The journal: one statement's changes, summed by cell; an update that changes no cell adds nothing.
CREATE FUNCTION pgherd_count_instances() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO instance_counts
      SELECT environment_id, role, state, pg_version, site, count(*) FROM new_rows GROUP BY 1, 2, 3, 4, 5;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO instance_counts
      SELECT environment_id, role, state, pg_version, site, -count(*) FROM old_rows GROUP BY 1, 2, 3, 4, 5;
  ELSE
    INSERT INTO instance_counts
      SELECT environment_id, role, state, pg_version, site, sum(d)
      FROM (SELECT environment_id, role, state, pg_version, site, 1 AS d FROM new_rows
            UNION ALL
            SELECT environment_id, role, state, pg_version, site, -1 FROM old_rows) x
      GROUP BY 1, 2, 3, 4, 5 HAVING sum(d) <> 0;
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER instances_count_insert AFTER INSERT ON instances
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pgherd_count_instances();--> statement-breakpoint
CREATE TRIGGER instances_count_update AFTER UPDATE ON instances
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pgherd_count_instances();--> statement-breakpoint
CREATE TRIGGER instances_count_delete AFTER DELETE ON instances
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION pgherd_count_instances();--> statement-breakpoint
CREATE FUNCTION pgherd_count_instances_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM instance_counts;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER instances_count_truncate AFTER TRUNCATE ON instances
  FOR EACH STATEMENT EXECUTE FUNCTION pgherd_count_instances_truncated();--> statement-breakpoint
-- Folds the journal to one row a cell (cells that sum to 0 dropped). The rows it deletes are summed
-- back in the same statement, and rows added meanwhile are not touched: any snapshot's sums are the
-- same before and after. One compaction at a time; returns the rows left, or null when another runs.
CREATE FUNCTION pgherd_compact_instance_counts() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  kept int;
BEGIN
  IF NOT pg_try_advisory_xact_lock(72842003) THEN
    RETURN NULL;
  END IF;
  WITH gone AS (DELETE FROM instance_counts RETURNING *), folded AS (
    INSERT INTO instance_counts
      SELECT environment_id, role, state, pg_version, site, sum(n)::int FROM gone GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0
      RETURNING 1)
  SELECT count(*) INTO kept FROM folded;
  RETURN kept;
END
$$;
