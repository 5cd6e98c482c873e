-- $1 the targets' ids, $2-$5 each one's status, error, outcome, refusal (in $1's order); $6-$15 the last
-- steps' ends, a column an array (the target's id, then db-recorder.ts's STEP_END_COLUMNS: its insert and
-- its ON CONFLICT are that file's, word for word; finish-targets.test.ts holds them to it).
WITH s AS (INSERT INTO operation_steps (target_id, seq, name, status, command, exit_code, stdout_tail, stderr_tail, started_at, finished_at)
           SELECT * FROM unnest($6::bigint[], $7::int[], $8::text[], $9::step_status[], $10::text[], $11::int[], $12::text[],
                                $13::text[], $14::timestamptz[], $15::timestamptz[])
           ON CONFLICT (target_id, seq) DO UPDATE SET name = excluded.name, status = excluded.status, command = excluded.command,
           exit_code = excluded.exit_code, stdout_tail = excluded.stdout_tail, stderr_tail = excluded.stderr_tail,
           started_at = excluded.started_at, finished_at = excluded.finished_at),
     t AS (UPDATE operation_targets x
           SET status = ($2::operation_status[])[array_position($1::bigint[], x.id)], error = ($3::text[])[array_position($1::bigint[], x.id)],
               outcome = coalesce(($4::text[])[array_position($1::bigint[], x.id)], x.outcome),
               refusal = ($5::text[])[array_position($1::bigint[], x.id)], updated_at = now()
           WHERE x.id = ANY ($1::bigint[]) AND x.status::text = 'running' RETURNING x.id)
DELETE FROM herd_leases WHERE target_id = ANY ($1::bigint[])
