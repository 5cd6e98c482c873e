SELECT h.id AS "herdId", e.name || '/' || h.name AS herd, h.no_primary_since AS since, h.no_primary_detail AS detail,
       coalesce((SELECT json_agg(json_build_object('id', i.id, 'label', s.hostname || ':' || i.port, 'state', i.state) ORDER BY s.hostname, i.port)
                 FROM instances i JOIN servers s ON s.id = i.server_id WHERE i.herd_id = h.id AND i.role = 'primary'), '[]') AS primaries,
       (count(*) OVER ())::int AS total
FROM herds h JOIN environments e ON e.id = h.environment_id
WHERE h.no_primary_since IS NOT NULL AND ($1::int[] IS NULL OR h.environment_id = ANY($1::int[])) AND ($2::int IS NULL OR h.id = $2::int)
ORDER BY h.no_primary_since, e.name, h.name
LIMIT $3
