-- Every target of a batch of operations, a column an array ($1-$12, in u's order below: one element a target).
INSERT INTO operation_targets (operation_id, instance_id, herd_id, label, site, wave, held, status, error, refusal, confirmed_steps, urgent)
SELECT u.operation_id, u.instance_id, u.herd_id, u.label, u.site, u.wave, u.held, u.status, u.error, u.refusal, u.confirmed::jsonb, u.urgent
FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::int[], $7::bool[], $8::operation_status[], $9::text[],
  $10::text[], $11::text[], $12::bool[])
  WITH ORDINALITY AS u(operation_id, instance_id, herd_id, label, site, wave, held, status, error, refusal, confirmed, urgent, n) ORDER BY u.n
RETURNING id, status, held
