-- The next events of the outbox (200 at most, skipping those another worker holds), with what a
-- webhook's message says of their operation, rule run, rule and herd.
WITH e AS (SELECT id, kind, operation_id, rule_run_id, herd_id, detail FROM notification_events ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED)
SELECT e.id, e.kind, e.herd_id, hd.name AS herd_name, he.name AS herd_environment, e.detail, o.id AS op_id, o.action AS op_action, o.status::text AS op_status, o.requested_by_name AS op_requested_by, o.rule_id AS op_rule_id,
       r.id AS run_id, r.kind AS run_kind, r.status AS run_status, r.reason AS run_reason, r.due_at AS run_due_at, ru.id AS rule_id, ru.name AS rule_name,
       ru.owner_id AS rule_owner_id, o.plan_digest AS op_digest, o.approval_expires_at AS op_expires_at, o.approvals_required AS op_required,
       ARRAY(SELECT x.name FROM environments x WHERE x.id = ANY(o.environment_ids) ORDER BY x.name) AS op_environments,
       jsonb_array_length(COALESCE(o.params -> 'instanceIds', o.params -> 'herdIds', '[]'::jsonb)) AS op_targets
FROM e
LEFT JOIN operations o ON o.id = e.operation_id
LEFT JOIN rule_runs r ON r.id = COALESCE(e.rule_run_id, (SELECT x.id FROM rule_runs x WHERE x.operation_id = e.operation_id LIMIT 1))
LEFT JOIN rules ru ON ru.id = r.rule_id
LEFT JOIN herds hd ON hd.id = e.herd_id
LEFT JOIN environments he ON he.id = hd.environment_id
ORDER BY e.id
