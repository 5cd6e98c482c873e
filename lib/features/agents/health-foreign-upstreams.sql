SELECT r.id, rs.hostname || ':' || r.port AS label, rh.id AS "herdId", re.name || '/' || rh.name AS herd,
       u.id AS "upstreamId", us.hostname || ':' || u.port AS upstream,
       CASE WHEN ($1::int[] IS NULL OR uh.environment_id = ANY($1::int[])) THEN ue.name || '/' || uh.name END AS "upstreamHerd",
       (count(*) OVER ())::int AS total
FROM instances r
  JOIN herds rh ON rh.id = r.herd_id JOIN environments re ON re.id = rh.environment_id JOIN servers rs ON rs.id = r.server_id
  JOIN instances u ON u.id = r.upstream_instance_id
  JOIN herds uh ON uh.id = u.herd_id JOIN environments ue ON ue.id = uh.environment_id JOIN servers us ON us.id = u.server_id
WHERE r.role = 'replica' AND u.herd_id <> r.herd_id AND ($1::int[] IS NULL OR rh.environment_id = ANY($1::int[])) AND ($2::int IS NULL OR rh.id = $2::int)
ORDER BY re.name, rh.name, rs.hostname, r.port
LIMIT $3
