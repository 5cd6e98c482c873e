SELECT h.id AS herd_id, h.name AS herd, e.id AS environment_id, e.name AS environment, h.control_driver,
       json_agg(json_build_object('version', i.server_version_num, 'state', i.state, 'role', i.role,
         'builds', (SELECT coalesce(json_agg(b.version_num), '[]') FROM postgres_builds b WHERE b.server_id = i.server_id))
         ORDER BY i.id) AS members
FROM herds h JOIN environments e ON e.id = h.environment_id JOIN instances i ON i.herd_id = h.id
WHERE ($1::int[] IS NULL OR h.environment_id = ANY($1::int[]))
GROUP BY h.id, e.id ORDER BY e.name, h.name
