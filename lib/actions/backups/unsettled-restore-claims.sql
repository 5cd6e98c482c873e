SELECT c.id, c.target_id, t.status::text AS status, c.data_directory, c.pg_version, s.hostname, c.kept_herd_id,
       coalesce(nullif(s.address, ''), s.hostname) AS host, s.ssh_port AS port, s.ssh_user AS username,
       s.ssh_host_key_fingerprint AS fingerprint, s.id AS server_id, e.name AS environment, c.settled_at IS NOT NULL AS orphaned
FROM restore_claims c JOIN operation_targets t ON t.id = c.target_id
  JOIN servers s ON s.id = c.server_id JOIN environments e ON e.id = s.environment_id
WHERE (c.settled_at IS NULL AND t.status::text NOT IN ('queued', 'running'))
   -- Kept for a herd that is gone (deleted by hand from the inventory, or with its environment): nothing
   -- tracks the restored cluster any more.
   OR (c.kept_herd_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM herds h WHERE h.id = c.kept_herd_id))
ORDER BY c.id LIMIT $1
