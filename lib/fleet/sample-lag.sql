WITH fleet AS (
  INSERT INTO fleet_samples (at, environment_id, role, state, instances)
  SELECT $1::timestamptz, i.environment_id, i.role, i.state, count(*)::int FROM instances i GROUP BY 2, 3, 4
  ON CONFLICT DO NOTHING)
INSERT INTO lag_samples (instance_id, herd_id, at, lag_bytes, lag_seconds, role, state)
SELECT i.id, i.herd_id, $1::timestamptz, CASE WHEN i.role = 'replica' THEN i.lag_bytes END,
       CASE WHEN i.role = 'replica' THEN i.lag_seconds END, i.role, i.state
FROM instances i
WHERE i.last_observed_at > $1::timestamptz - $2::interval
ON CONFLICT DO NOTHING
