-- The instances changelist filters and counts by EC2 instance type and availability zone, as it does
-- by site: an instance carries copies of its server's (kept by the same triggers), and instance_counts
-- gains the two as cells. The counts are rebuilt from the instances in this transaction.
LOCK TABLE instances IN SHARE ROW EXCLUSIVE MODE;--> statement-breakpoint
DELETE FROM "instance_counts";--> statement-breakpoint
ALTER TABLE "instance_counts" ADD COLUMN "instance_type" text NOT NULL;--> statement-breakpoint
ALTER TABLE "instance_counts" ADD COLUMN "zone" text NOT NULL;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "instance_type" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "zone" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "cloud_herd_tag" text;--> statement-breakpoint
CREATE INDEX "instances_instance_type_idx" ON "instances" USING btree ("instance_type");--> statement-breakpoint
CREATE INDEX "instances_zone_idx" ON "instances" USING btree ("zone");--> statement-breakpoint
CREATE OR REPLACE FUNCTION pgherd_instance_place() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  env int;
  s record;
BEGIN
  SELECT environment_id INTO env FROM herds WHERE id = NEW.herd_id;
  -- Not found: left as it is, for the foreign key to refuse the row with its own error.
  IF FOUND THEN
    NEW.environment_id := env;
  END IF;
  SELECT site, coalesce(cloud_instance_type, '') AS instance_type, coalesce(cloud_availability_zone, '') AS zone
    INTO s FROM servers WHERE id = NEW.server_id;
  IF FOUND THEN
    NEW.site := s.site;
    NEW.instance_type := s.instance_type;
    NEW.zone := s.zone;
  END IF;
  RETURN NEW;
END
$$;--> statement-breakpoint
DROP TRIGGER instances_replace ON instances;--> statement-breakpoint
CREATE TRIGGER instances_replace BEFORE UPDATE OF herd_id, server_id, environment_id, site, instance_type, zone ON instances
  FOR EACH ROW WHEN ((OLD.herd_id, OLD.server_id, OLD.environment_id, OLD.site, OLD.instance_type, OLD.zone)
    IS DISTINCT FROM (NEW.herd_id, NEW.server_id, NEW.environment_id, NEW.site, NEW.instance_type, NEW.zone))
  EXECUTE FUNCTION pgherd_instance_place();--> statement-breakpoint
CREATE OR REPLACE FUNCTION pgherd_server_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  LOCK TABLE instances IN SHARE ROW EXCLUSIVE MODE;
  UPDATE instances SET site = NEW.site, instance_type = coalesce(NEW.cloud_instance_type, ''), zone = coalesce(NEW.cloud_availability_zone, '')
    WHERE server_id = NEW.id;
  RETURN NULL;
END
$$;--> statement-breakpoint
DROP TRIGGER servers_moved ON servers;--> statement-breakpoint
CREATE TRIGGER servers_moved AFTER UPDATE OF site, cloud_instance_type, cloud_availability_zone ON servers
  FOR EACH ROW WHEN ((OLD.site, OLD.cloud_instance_type, OLD.cloud_availability_zone) IS DISTINCT FROM (NEW.site, NEW.cloud_instance_type, NEW.cloud_availability_zone))
  EXECUTE FUNCTION pgherd_server_moved();--> statement-breakpoint
CREATE OR REPLACE FUNCTION pgherd_count_instances() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO instance_counts (environment_id, role, state, pg_version, site, instance_type, zone, n)
      SELECT environment_id, role, state, pg_version, site, instance_type, zone, count(*) FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6, 7;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO instance_counts (environment_id, role, state, pg_version, site, instance_type, zone, n)
      SELECT environment_id, role, state, pg_version, site, instance_type, zone, -count(*) FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6, 7;
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE OR REPLACE FUNCTION pgherd_count_instance_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO instance_counts (environment_id, role, state, pg_version, site, instance_type, zone, n) VALUES
    (OLD.environment_id, OLD.role, OLD.state, OLD.pg_version, OLD.site, OLD.instance_type, OLD.zone, -1),
    (NEW.environment_id, NEW.role, NEW.state, NEW.pg_version, NEW.site, NEW.instance_type, NEW.zone, 1);
  RETURN NULL;
END
$$;--> statement-breakpoint
DROP TRIGGER instances_count_update ON instances;--> statement-breakpoint
CREATE TRIGGER instances_count_update AFTER UPDATE ON instances FOR EACH ROW
  WHEN ((OLD.environment_id, OLD.role, OLD.state, OLD.pg_version, OLD.site, OLD.instance_type, OLD.zone)
    IS DISTINCT FROM (NEW.environment_id, NEW.role, NEW.state, NEW.pg_version, NEW.site, NEW.instance_type, NEW.zone))
  EXECUTE FUNCTION pgherd_count_instance_moved();--> statement-breakpoint
CREATE OR REPLACE FUNCTION pgherd_compact_instance_counts() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  kept int;
BEGIN
  IF NOT pg_try_advisory_xact_lock(72842003) THEN
    RETURN NULL;
  END IF;
  WITH gone AS (DELETE FROM instance_counts RETURNING *), folded AS (
    INSERT INTO instance_counts (environment_id, role, state, pg_version, site, instance_type, zone, n)
      SELECT environment_id, role, state, pg_version, site, instance_type, zone, sum(n)::int FROM gone GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(n) <> 0
      RETURNING 1)
  SELECT count(*) INTO kept FROM folded;
  RETURN kept;
END
$$;--> statement-breakpoint
UPDATE "instances" i SET "instance_type" = coalesce(s."cloud_instance_type", ''), "zone" = coalesce(s."cloud_availability_zone", '')
  FROM "servers" s WHERE s."id" = i."server_id" AND (s."cloud_instance_type" IS NOT NULL OR s."cloud_availability_zone" IS NOT NULL);--> statement-breakpoint
DELETE FROM "instance_counts";--> statement-breakpoint
INSERT INTO "instance_counts" (environment_id, role, state, pg_version, site, instance_type, zone, n)
  SELECT "environment_id", "role", "state", "pg_version", "site", "instance_type", "zone", count(*) FROM "instances" GROUP BY 1, 2, 3, 4, 5, 6, 7;
