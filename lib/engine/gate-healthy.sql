WITH f AS (SELECT gap, again, CASE WHEN again THEN now() ELSE soak_from END AS since
           FROM (SELECT soak_from, gap, gap > $5 * interval '1 millisecond' AS again
                 FROM (SELECT soak_from, now() - $4 * interval '1 millisecond' - coalesce(last_reading_at, soak_from) AS gap
                       FROM operation_waves WHERE operation_id = $1 AND wave = $2) r) x)
UPDATE operation_waves w
SET soak_from = f.since,
    gate_note = 'healthy since ' || to_char(f.since, 'HH24:MI:SS')
                || CASE WHEN f.again THEN ' (soak started again: no reading for ' || round(extract(epoch FROM f.gap)) || ' s)' ELSE '' END,
    last_reading_at = now(), updated_at = now()
FROM f WHERE w.operation_id = $1 AND w.wave = $2 AND w.status = 'soaking'
RETURNING now() - w.soak_from >= $3 * interval '1 second' AS soaked
