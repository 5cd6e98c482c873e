-- The audit log is append-only: no code path in pgherd updates or deletes an entry, and the database
-- refuses it too, so a bug or a console/API request cannot rewrite history. (Pruning old entries is a
-- DBA's job: ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only, as the table owner.)
CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit entries cannot be changed or deleted' USING ERRCODE = 'insufficient_privilege';
END
$$;
--> statement-breakpoint
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
  FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();
