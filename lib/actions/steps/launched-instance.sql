SELECT l.region, l.instance_id, l.client_token, l.server_id, l.terminated_at, l.created_at, e.name AS environment,
       a.label AS adopted, a.id AS adopted_id
FROM launched_instances l JOIN environments e ON e.id = l.environment_id
LEFT JOIN LATERAL (
  SELECT i.id, e2.name || '/' || h.name || ' (instance ' || i.id || ')' AS label
  FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e2 ON e2.id = h.environment_id
  WHERE i.server_id = l.server_id AND i.herd_id IS DISTINCT FROM l.kept_herd_id AND i.id <> ALL($1::bigint[])
  ORDER BY i.id LIMIT 1) a ON true
WHERE l.id = $2
