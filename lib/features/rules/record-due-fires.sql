WITH want AS (
  SELECT DISTINCT ON (rule_id) rule_id, version, due_at, grp FROM unnest($1::int[], $2::int[], $3::timestamptz[], $4::text[])
    AS w(rule_id, version, due_at, grp)
  ORDER BY rule_id, due_at DESC
), moved AS (
  UPDATE rules r SET last_due_at = w.due_at FROM want w
  WHERE r.id = w.rule_id AND r.enabled AND (w.version IS NULL OR r.version = w.version) AND (w.grp IS NULL OR r.fire_groups @> ARRAY[w.grp])
    AND w.due_at >= r.fires_from AND (r.last_due_at IS NULL OR r.last_due_at < w.due_at)
  RETURNING r.id, r.grace_seconds, w.due_at, (extract(epoch FROM ($5::timestamptz - w.due_at)) * 1000)::bigint AS late_ms
)
INSERT INTO rule_runs (rule_id, kind, fire_key, due_at, status, reason)
SELECT id, $6, 'at:' || (extract(epoch FROM due_at) * 1000)::bigint, due_at,
  CASE WHEN late_ms >= grace_seconds * 1000 + $7 THEN 'missed' ELSE 'deciding' END,
  CASE WHEN late_ms >= grace_seconds * 1000 + $7
    THEN 'missed: no worker fired it in time (' || round(late_ms / 1000.0) || ' s late, beyond the rule''s grace of ' || grace_seconds || ' s)' END
FROM moved
ON CONFLICT DO NOTHING
RETURNING id, status
