WITH due AS (
  SELECT id FROM herds
  WHERE observe_due_at <= now()
    AND (observed_by IS NULL OR observed_by = $1 OR observe_due_at <= now() - make_interval(secs => $2))
  -- Its own herds and those nobody observes first (its sessions are open there), oldest due first: a
  -- worker that cannot keep up observes every herd less often, never some not at all. Another worker's
  -- herds last, once they are overdue by half an interval (that worker is gone, or behind): taking them
  -- while its own wait would open sessions for them, which is what a worker behind has no time for.
  ORDER BY (observed_by IS NOT NULL AND observed_by <> $1), observe_due_at
  LIMIT $3
  FOR UPDATE SKIP LOCKED)
UPDATE herds h SET observe_due_at = now() + make_interval(secs => $4), observed_by = $1
FROM due WHERE h.id = due.id
RETURNING h.id, now() AS at
