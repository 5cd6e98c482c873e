WITH t AS (
  SELECT t.id, t.status, t.held, t.instance_id, t.herd_id, t.site, t.confirmed_steps, t.urgent, o.id AS operation_id, o.action, o.action_params,
         o.cancel_requested, o.paused_at IS NOT NULL AS paused, o.requested_by, o.requested_by_name, o.requested_by_system,
         h.environment_id, e.max_running AS environment_cap, s.max_running AS site_cap
  FROM operation_targets t JOIN operations o ON o.id = t.operation_id
  LEFT JOIN herds h ON h.id = t.herd_id LEFT JOIN environments e ON e.id = h.environment_id
  LEFT JOIN sites s ON s.name = t.site AND t.site <> ''
  WHERE t.id = ANY ($1::bigint[])),
lease AS (
  INSERT INTO herd_leases (herd_id, target_id, holder, expires_at)
  SELECT t.herd_id, t.id, $2, now() + $3 * interval '1 millisecond' FROM t
  WHERE t.status = 'queued' AND NOT t.held AND NOT t.paused AND NOT t.cancel_requested AND t.herd_id IS NOT NULL
    AND ($4 OR (t.environment_cap IS NULL AND t.site_cap IS NULL))
    AND (t.environment_cap IS NULL OR (SELECT count(*) FROM operation_targets r JOIN herds rh ON rh.id = r.herd_id
                                       WHERE r.status = 'running' AND rh.environment_id = t.environment_id) < t.environment_cap)
    AND (t.site_cap IS NULL OR (SELECT count(*) FROM operation_targets r WHERE r.status = 'running' AND r.site = t.site) < t.site_cap)
    -- The herd's earlier open targets go first; an urgent target goes before those only queued (not
    -- before another urgent one), and a queued urgent target goes before any later one that is not.
    AND NOT EXISTS (SELECT 1 FROM operation_targets e WHERE e.herd_id = t.herd_id AND e.id < t.id AND e.status IN ('queued', 'running') AND NOT e.held
                    AND (NOT t.urgent OR e.urgent OR e.status = 'running'))
    AND (t.urgent OR NOT EXISTS (SELECT 1 FROM operation_targets e WHERE e.herd_id = t.herd_id AND e.id > t.id AND e.status = 'queued' AND NOT e.held
                                 AND e.urgent))
  ORDER BY t.herd_id
  ON CONFLICT (herd_id) DO UPDATE SET target_id = excluded.target_id, holder = excluded.holder, expires_at = excluded.expires_at,
    generation = nextval('herd_leases_generation_seq')
  WHERE herd_leases.expires_at < now()
  RETURNING target_id, generation),
run AS (
  UPDATE operation_targets SET status = 'running', attempts = attempts + 1, updated_at = now()
  WHERE id = ANY (ARRAY(SELECT target_id FROM lease)) AND status = 'queued' AND NOT held RETURNING id, attempts),
op AS (
  UPDATE operations o SET status = 'running', started_at = coalesce(o.started_at, now()), updated_at = now()
  FROM (SELECT id FROM operations WHERE id = ANY (ARRAY(SELECT t.operation_id FROM t JOIN lease l ON l.target_id = t.id)) AND status = 'queued'
        ORDER BY id FOR UPDATE) q
  WHERE o.id = q.id AND o.status = 'queued')
SELECT t.*, r.attempts, l.generation::float8 AS generation,
  CASE WHEN t.instance_id IS NOT NULL AND r.id IS NOT NULL THEN
    (SELECT json_agg(m ORDER BY m.id) FROM (
\ir ../fleet/instance-ref.sql
     WHERE i.herd_id = (SELECT herd_id FROM instances WHERE id = t.instance_id)) m)
  END AS members
FROM t LEFT JOIN run r ON r.id = t.id LEFT JOIN lease l ON l.target_id = t.id
