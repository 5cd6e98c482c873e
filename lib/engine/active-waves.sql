SELECT o.id, o.waves, o.window_bound, o.current_wave AS wave, w.status,
       (SELECT max(x.wave) FROM operation_waves x WHERE x.operation_id = o.id) AS last,
       coalesce((SELECT t.operation_id = o.id AND t.wave = o.current_wave FROM operation_targets t
                 WHERE (t.operation_id, t.wave) >= (o.id, o.current_wave) AND t.status IN ('queued', 'running')
                 ORDER BY t.operation_id, t.wave, t.id LIMIT 1), false) AS open
FROM operations o JOIN operation_waves w ON w.operation_id = o.id AND w.wave = o.current_wave
WHERE o.finished_at IS NULL AND o.waves IS NOT NULL AND o.paused_at IS NULL AND NOT o.cancel_requested
  AND w.status IN ('running', 'soaking')
