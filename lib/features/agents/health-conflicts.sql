SELECT s.id AS "serverId", s.hostname || ':' || c.port AS label, se.name AS "serverEnvironment", c.system_identifier AS "systemIdentifier",
       c.herd_id AS "herdId", CASE WHEN ($1::int[] IS NULL OR h.environment_id = ANY($1::int[])) THEN he.name || '/' || h.name END AS herd,
       c.first_seen_at AS "firstSeenAt", (count(*) OVER ())::int AS total
FROM agent_conflicts c JOIN servers s ON s.id = c.server_id JOIN environments se ON se.id = s.environment_id
  JOIN herds h ON h.id = c.herd_id JOIN environments he ON he.id = h.environment_id
WHERE c.last_seen_at >= s.last_seen_at
  AND (($1::int[] IS NULL OR s.environment_id = ANY($1::int[])) OR ($1::int[] IS NULL OR h.environment_id = ANY($1::int[])))
  AND ($2::int IS NULL OR h.id = $2::int)
ORDER BY s.hostname, c.port
LIMIT $3
