-- An operation settles (succeeded, partial, failed or cancelled) in the statement that ends its last
-- open target, whatever ended it: a worker, a cancel, the reconciler. Finishers of one operation are
-- serialized on its row, and each of the function's statements reads a fresh snapshot, so of two
-- targets ending at once the later one sees both ended.
CREATE OR REPLACE FUNCTION pgherd_settle_operation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM operations WHERE id = NEW.operation_id AND finished_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
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
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER operation_targets_settle AFTER UPDATE OF status ON operation_targets FOR EACH ROW
  WHEN (OLD.status IN ('queued', 'running') AND NEW.status NOT IN ('queued', 'running'))
  EXECUTE FUNCTION pgherd_settle_operation();
