UPDATE rule_runs r SET status = u.status, reason = u.reason, operation_id = u.operation_id,
  targets = COALESCE(u.targets, r.targets), decided_at = clock_timestamp()
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::jsonb[]) AS u(id, status, reason, operation_id, targets)
WHERE r.id = u.id AND (r.status = 'deciding' OR u.status = 'started')
RETURNING r.id, r.status
