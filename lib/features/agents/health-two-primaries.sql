SELECT h.id AS "herdId", e.name || '/' || h.name AS herd,
       json_agg(json_build_object('id', i.id, 'label', s.hostname || ':' || i.port) ORDER BY s.hostname, i.port) AS primaries,
       (count(*) OVER ())::int AS total
FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id JOIN servers s ON s.id = i.server_id
WHERE i.role = 'primary' AND i.state = 'running' AND ($1::int[] IS NULL OR h.environment_id = ANY($1::int[])) AND ($2::int IS NULL OR h.id = $2::int)
GROUP BY h.id, e.name, h.name
HAVING count(*) > 1
ORDER BY e.name, h.name
LIMIT $3
