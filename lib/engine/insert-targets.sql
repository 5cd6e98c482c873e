-- Every target of a batch of operations, a column an array ($1-$11, in u's order below: one element a target).
INSERT INTO operation_targets (operation_id, instance_id, herd_id, label, site, wave, held, status, error, refusal, confirmed_steps)
SELECT u.operation_id, u.instance_id, u.herd_id, u.label, u.site, u.wave, u.held, u.status, u.error, u.refusal, u.confirmed::jsonb
FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::int[], $7::bool[], $8::operation_status[], $9::text[],
  $10::text[], $11::text[])
  WITH ORDINALITY AS u(operation_id, instance_id, herd_id, label, site, wave, held, status, error, refusal, confirmed, n) ORDER BY u.n
RETURNING id, status, held
