SELECT s.id, s.hostname, e.name AS environment, s.last_seen_at AS "lastSeenAt", s.agent_interval_seconds AS "intervalSeconds",
       floor(extract(epoch FROM $1::timestamptz - s.last_seen_at))::int AS "silentSeconds", (count(*) OVER ())::int AS total
FROM servers s JOIN environments e ON e.id = s.environment_id
WHERE s.agent_token_hash IS NOT NULL AND s.last_seen_at IS NOT NULL
  AND s.last_seen_at < $1::timestamptz - make_interval(secs => $2 * CASE WHEN s.agent_interval_seconds > 0 THEN s.agent_interval_seconds ELSE $3 END)
  AND ($4::int[] IS NULL OR s.environment_id = ANY($4::int[]))
  AND ($5::int IS NULL OR EXISTS (SELECT 1 FROM instances i WHERE i.server_id = s.id AND i.herd_id = $5::int))
ORDER BY s.last_seen_at, s.hostname
LIMIT $6
