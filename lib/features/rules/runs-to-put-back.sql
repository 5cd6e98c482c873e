SELECT * FROM (
  SELECT rr.id, rr.rule_id, rr.targets, o.id AS operation_id, o.status AS op_status,
    (SELECT jsonb_object_agg(ot.instance_id, CASE WHEN ot.refusal IS NOT NULL THEN 'refused'
                                                  WHEN ot.status IN ('cancelled', 'preempted') AND ot.attempts > 0 THEN 'attempted'
                                                  ELSE ot.status::text END)
       FROM operation_targets ot WHERE ot.operation_id = o.id AND ot.instance_id IS NOT NULL) AS statuses
  FROM rule_runs rr JOIN operations o ON o.id = rr.operation_id
  WHERE rr.status = 'started'
    AND (rr.rule_id = $1 OR (rr.rule_id = $2 AND o.action = $3 AND rr.fired_at >= $4))
  ORDER BY rr.id DESC LIMIT $5
) latest ORDER BY id
