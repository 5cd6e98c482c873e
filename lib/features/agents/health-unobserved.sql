SELECT i.id, s.hostname || ':' || i.port AS label, h.id AS "herdId", e.name || '/' || h.name AS herd,
       i.last_observed_at AS "lastObservedAt", (count(*) OVER ())::int AS total
FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id JOIN servers s ON s.id = i.server_id
WHERE coalesce(i.last_observed_at, i.created_at) < $1::timestamptz - make_interval(secs => $2)
  AND ($3::int[] IS NULL OR i.environment_id = ANY($3::int[])) AND ($4::int IS NULL OR h.id = $4::int)
ORDER BY coalesce(i.last_observed_at, i.created_at), s.hostname, i.port
LIMIT $5
