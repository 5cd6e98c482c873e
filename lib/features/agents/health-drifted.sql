SELECT i.id, s.hostname || ':' || i.port AS label, h.id AS "herdId", e.name || '/' || h.name AS herd,
       i.settings_drift AS settings, i.settings_drift_since AS since, (count(*) OVER ())::int AS total
FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id JOIN servers s ON s.id = i.server_id
WHERE i.settings_drift > 0 AND ($1::int[] IS NULL OR i.environment_id = ANY($1::int[])) AND ($2::int IS NULL OR h.id = $2::int)
ORDER BY i.settings_drift_since, s.hostname, i.port
LIMIT $3
