UPDATE owed_cleanups o SET claimed_until = now() + make_interval(secs => $1), attempts = o.attempts + 1
WHERE o.id IN (
  SELECT c.id FROM owed_cleanups c JOIN operation_targets t ON t.id = c.target_id
  WHERE c.settled_at IS NULL AND (c.claimed_until IS NULL OR c.claimed_until < now())
    AND t.status <> 'running'
    AND NOT EXISTS (SELECT 1 FROM herd_leases l WHERE l.herd_id = c.herd_id AND l.expires_at > now())
  ORDER BY c.id LIMIT $2
  FOR UPDATE OF c SKIP LOCKED)
RETURNING o.id, o.herd_id, o.pooler_id, o.databases, o.resume_token, o.kind, o.instance_id, o.upgrade_id
