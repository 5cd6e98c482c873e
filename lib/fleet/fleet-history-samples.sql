WITH last AS (
  SELECT date_bin('30 minutes'::interval, at, '2000-01-01'::timestamptz) AS b, max(at) AS at
  FROM fleet_samples WHERE at > $1::timestamptz AND at <= $2::timestamptz GROUP BY 1)
SELECT l.b AS t, f.state::text AS state, f.role::text AS role, sum(f.instances)::int AS n
FROM last l JOIN fleet_samples f ON f.at = l.at
WHERE ($3::int[] IS NULL OR f.environment_id = ANY($3::int[]))
GROUP BY 1, 2, 3 ORDER BY 1
