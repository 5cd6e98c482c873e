SELECT h.id AS herd_id, h.name AS herd, e.name AS environment,
  ARRAY(SELECT DISTINCT s.site FROM instances i JOIN servers s ON s.id = i.server_id WHERE i.herd_id = h.id AND s.site <> '' ORDER BY 1) AS sites,
  p.site AS primary_site, p.n AS primaries,
  (SELECT count(*)::int FROM instances i JOIN servers s ON s.id = i.server_id
    WHERE i.herd_id = h.id AND s.site <> '' AND s.site <> p.site AND i.role = 'replica' AND i.state = 'running') AS dr_running,
  (SELECT count(*)::int FROM instances i JOIN servers s ON s.id = i.server_id
    WHERE i.herd_id = h.id AND s.site <> '' AND s.site <> p.site) AS dr_any,
  last.op_id, last.op_status, last.finished_at,
  d.candidate_label, d.candidate_site, d.first_write_ms, d.longest_gap_ms, d.acknowledged, d.lost
FROM herds h JOIN environments e ON e.id = h.environment_id
-- What the drill plans from: the herd's one running primary and its site (as the action reads them).
LEFT JOIN LATERAL (
  SELECT min(s.site) AS site, count(*)::int AS n FROM instances i JOIN servers s ON s.id = i.server_id
  WHERE i.herd_id = h.id AND i.role = 'primary' AND i.state = 'running'
) p ON true
LEFT JOIN LATERAL (
  SELECT o.id AS op_id, ot.status::text AS op_status, o.finished_at
  FROM operation_targets ot JOIN operations o ON o.id = ot.operation_id
  WHERE ot.herd_id = h.id AND o.action = 'dr-drill' AND o.finished_at IS NOT NULL
  ORDER BY o.id DESC LIMIT 1
) last ON true
LEFT JOIN dr_drills d ON d.operation_id = last.op_id
WHERE ($1::int IS NULL OR h.environment_id = $1::int)
ORDER BY e.name, h.name
