-- A batch of operations, a column an array ($1-$14, in u's order below: one element an operation).
INSERT INTO operations (action, params, action_params, status, waves, gate_excused, plan_digest, requested_by, requested_by_name,
  requested_by_system, confirmation, idempotency_key, rule_id, window_bound, break_glass_reason)
SELECT u.action, u.params, u.action_params, 'queued', u.waves, u.excused::bigint[], u.digest, u.requested_by, u.requested_by_name,
  u.system, u.confirmation, u.key, u.rule_id, u.window_bound, u.break_glass
FROM unnest($1::text[], $2::jsonb[], $3::jsonb[], $4::jsonb[], $5::text[], $6::text[], $7::int[], $8::text[], $9::bool[],
  $10::text[], $11::text[], $12::int[], $13::bool[], $14::text[])
  WITH ORDINALITY AS u(action, params, action_params, waves, excused, digest, requested_by, requested_by_name, system, confirmation, key, rule_id, window_bound, break_glass, n)
ORDER BY u.n
ON CONFLICT DO NOTHING
RETURNING id, idempotency_key AS key, requested_by_name AS who
