WITH due AS (
  SELECT id FROM herds
  WHERE observe_due_at <= now()
    AND (observed_by IS NULL OR observed_by = $1 OR observe_due_at <= now() - make_interval(secs => $2))
  -- Oldest due first: a worker that cannot keep up observes every herd less often, never some not at all.
  ORDER BY observe_due_at
  LIMIT $3
  FOR UPDATE SKIP LOCKED)
UPDATE herds h SET observe_due_at = now() + make_interval(secs => $4), observed_by = $1
FROM due WHERE h.id = due.id
RETURNING h.id, now() AS at
