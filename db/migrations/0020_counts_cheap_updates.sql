-- The agents' reports upsert every instance they see, every interval: almost none of those updates
-- changes a counted cell or moves an instance. What 0019 ran for each of them, this skips:
-- A row trigger whose WHEN is tested without calling a function replaces the statement trigger on
-- UPDATE (which copied every updated row into two transition tables and ran a grouped query over
-- them), and the copies of the environment and site are looked up again only when the herd, the
-- server or a copy was written with another value.
DROP TRIGGER instances_count_update ON instances;--> statement-breakpoint
CREATE FUNCTION pgherd_count_instance_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO instance_counts VALUES
    (OLD.environment_id, OLD.role, OLD.state, OLD.pg_version, OLD.site, -1),
    (NEW.environment_id, NEW.role, NEW.state, NEW.pg_version, NEW.site, 1);
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER instances_count_update AFTER UPDATE ON instances FOR EACH ROW
  WHEN ((OLD.environment_id, OLD.role, OLD.state, OLD.pg_version, OLD.site) IS DISTINCT FROM (NEW.environment_id, NEW.role, NEW.state, NEW.pg_version, NEW.site))
  EXECUTE FUNCTION pgherd_count_instance_moved();--> statement-breakpoint
DROP TRIGGER instances_place ON instances;--> statement-breakpoint
CREATE TRIGGER instances_place BEFORE INSERT ON instances
  FOR EACH ROW EXECUTE FUNCTION pgherd_instance_place();--> statement-breakpoint
CREATE TRIGGER instances_replace BEFORE UPDATE OF herd_id, server_id, environment_id, site ON instances
  FOR EACH ROW WHEN ((OLD.herd_id, OLD.server_id, OLD.environment_id, OLD.site) IS DISTINCT FROM (NEW.herd_id, NEW.server_id, NEW.environment_id, NEW.site))
  EXECUTE FUNCTION pgherd_instance_place();
