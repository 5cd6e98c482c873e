SELECT l.id, l.target_id, t.status::text AS status, l.instance_id, l.kept_herd_id IS NOT NULL AS orphaned
FROM launched_instances l JOIN operation_targets t ON t.id = l.target_id
WHERE l.terminated_at IS NULL
  -- A replica added (kept as a member) is its herd's: only Retire member terminates it.
  AND l.kept_instance_id IS NULL
  AND ((l.kept_herd_id IS NULL AND t.status::text NOT IN ('queued', 'running'))
       OR (l.kept_herd_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM herds h WHERE h.id = l.kept_herd_id)))
  -- What was laid down on it is removed first.
  -- (A claim left as found, its folder adopted or another's, keeps its server.)
  AND NOT EXISTS (SELECT 1 FROM restore_claims c WHERE c.server_id = l.server_id AND c.removed_at IS NULL)
ORDER BY l.id LIMIT $1
