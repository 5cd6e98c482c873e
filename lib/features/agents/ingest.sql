WITH batch AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS b(server_id int, hostname text, interval_seconds int, observed_at timestamptz, ports int[], load1 real, memory_mb int, cpus int)
), srv AS (
  UPDATE servers s SET last_seen_at = now(), (agent_interval_seconds, load_average, load_average_at) = (
    SELECT b.interval_seconds, b.load1, CASE WHEN b.load1 IS NULL THEN NULL ELSE least(b.observed_at, now()) END FROM batch b WHERE b.server_id = s.id),
    -- An older agent says nothing of them: what is on record stays.
    (memory_mb, cpus) = (SELECT coalesce(b.memory_mb, s.memory_mb), coalesce(b.cpus, s.cpus) FROM batch b WHERE b.server_id = s.id)
  WHERE s.id = ANY ($3::int[]) RETURNING s.id
), rep AS (
  SELECT * FROM jsonb_to_recordset($2::jsonb) AS r(server_id int, server_env int, port int, data_directory text, pg_version int, sysid text, is_primary boolean, timeline int, lsn bigint, pending boolean, up_host text, up_port int, vnum int, bin_dir text, conf_at timestamptz)
), placed AS (
  -- Lateral with LIMIT (never flattened into a join): each herd by its index, where a join would hash
  -- the whole herds table for the few rows of a report. A herd in another environment than the
  -- reporting server's (the unassigned placeholder is nobody's) is a conflict: held, never merged.
  -- A restored copy shares its source's system identifier: a member of a restored herd, or one a team
  -- adopted into another herd (a copy's claim at its place), stays in its herd (k), never re-homed into the
  -- source. A copy no instance row holds (its herd deleted by hand) is placed nowhere: held as a conflict
  -- (cp), never filed into its source as a second primary, nor by a late report once it was removed. A cluster a restore or a drill is laying down (its
  -- claim still open) is not the inventory's yet: left out.
  SELECT rep.*, coalesce(k.herd_id, h.id) AS herd_id, coalesce(k.environment_id, h.environment_id) AS environment_id,
         k.herd_id IS NULL
         AND (cp.copy IS NOT NULL
              OR coalesce(h.environment_id <> coalesce(rep.server_env, (SELECT environment_id FROM servers WHERE id = rep.server_id))
                          AND h.environment_id IS DISTINCT FROM (SELECT id FROM environments WHERE name = $4), false)) AS conflict
  FROM rep LEFT JOIN LATERAL (SELECT id, environment_id FROM herds WHERE system_identifier = rep.sysid LIMIT 1) h ON true
  LEFT JOIN LATERAL (SELECT true AS copy FROM restore_claims c
                     WHERE c.server_id = rep.server_id AND c.data_directory = rep.data_directory AND c.is_copy
                       -- Removed a moment ago: a report made before the removal may still arrive.
                       AND (c.removed_at IS NULL OR c.removed_at > now() - interval '15 minutes') LIMIT 1) cp ON true
  LEFT JOIN LATERAL (SELECT i.herd_id, rh.environment_id FROM instances i JOIN herds rh ON rh.id = i.herd_id
                     WHERE i.server_id = rep.server_id AND i.port = rep.port AND (rh.restored_from_herd_id IS NOT NULL OR cp.copy) LIMIT 1) k ON true
  WHERE NOT EXISTS (SELECT 1 FROM restore_claims c WHERE c.server_id = rep.server_id AND c.data_directory = rep.data_directory AND c.settled_at IS NULL)
), unknown AS (
  SELECT DISTINCT sysid FROM placed WHERE herd_id IS NULL
), fact AS (
  SELECT f.*, b.observed_at, b.hostname, (CASE WHEN f.is_primary THEN 'primary' ELSE 'replica' END)::instance_role AS role,
    CASE WHEN f.is_primary THEN NULL ELSE (
      SELECT CASE WHEN count(*) = 1 THEN min(i.id) END FROM instances i JOIN servers s ON s.id = i.server_id
      WHERE i.port = f.up_port AND (s.address = f.up_host OR s.hostname = f.up_host)) END AS upstream_id,
    CASE WHEN f.is_primary THEN 0 ELSE (
      SELECT greatest(max(p.lsn) - f.lsn, 0) FROM instances p
      WHERE p.herd_id = f.herd_id AND p.role = 'primary' AND p.state = 'running' HAVING count(*) = 1) END AS lag -- instances_running_primary_idx
  FROM placed f JOIN batch b USING (server_id) WHERE NOT EXISTS (SELECT 1 FROM unknown) AND NOT f.conflict
), changed AS (
  -- The known instances whose facts differ from the report's, locked in (server, port) order (so that
  -- two batches never wait on each other in opposite orders). Known ones are updated, never upserted:
  -- INSERT ... ON CONFLICT takes a value of the id sequence for every row it is given, even one that
  -- only updates, and a fleet reporting every minute would use up any sequence (a report that changes
  -- nothing still came at the same cost).
  SELECT i.id, f.server_id, f.port FROM fact f JOIN instances i ON i.server_id = f.server_id AND i.port = f.port
  WHERE (i.herd_id, i.data_directory, i.pg_version, i.role, i.observed_role, i.upstream_instance_id, i.timeline, i.lsn, i.lag_bytes, i.pending_restart, i.last_observed_at, i.server_version_num, i.bin_dir, i.conf_loaded_at)
        IS DISTINCT FROM (f.herd_id, f.data_directory, f.pg_version, f.role, f.role, f.upstream_id, f.timeline, f.lsn, coalesce(f.lag, i.lag_bytes), f.pending, f.observed_at,
                          coalesce(f.vnum, i.server_version_num), coalesce(f.bin_dir, i.bin_dir), greatest(f.conf_at, i.conf_loaded_at))
     OR i.state NOT IN ('running', 'fenced', 'needs_rebuild')
  ORDER BY f.server_id, f.port
  FOR NO KEY UPDATE OF i
), updated AS (
  UPDATE instances i SET
    herd_id = f.herd_id, data_directory = f.data_directory, pg_version = f.pg_version, role = f.role, observed_role = f.role,
    upstream_instance_id = f.upstream_id,
    state = CASE WHEN i.state IN ('fenced', 'needs_rebuild') THEN i.state ELSE 'running'::instance_state END,
    timeline = f.timeline, lsn = f.lsn, lag_bytes = coalesce(f.lag, i.lag_bytes),
    pending_restart = f.pending, last_observed_at = f.observed_at,
    -- The build it runs (the postmaster's executable, as its host resolved it) and the version it answers with.
    server_version_num = coalesce(f.vnum, i.server_version_num), bin_dir = coalesce(f.bin_dir, i.bin_dir),
    -- When it loaded its configuration last: the settings pass reads its settings again when this moves.
    conf_loaded_at = greatest(f.conf_at, i.conf_loaded_at), updated_at = now()
  FROM changed c JOIN fact f USING (server_id, port)
  WHERE i.id = c.id
  RETURNING i.id, i.server_id, i.port, i.role, i.data_directory, false AS created
), inserted AS (
  -- Only the instances the statement's snapshot does not know take an id. One that a concurrent report
  -- inserted meanwhile is updated with this report's facts instead (its value of the sequence is lost:
  -- only in that race).
  INSERT INTO instances AS i (herd_id, server_id, port, data_directory, pg_version, role, observed_role, upstream_instance_id, state, timeline, lsn, lag_bytes, pending_restart, last_observed_at, server_version_num, bin_dir, conf_loaded_at)
  SELECT herd_id, server_id, port, data_directory, pg_version, role, role, upstream_id, 'running', timeline, lsn, lag, pending, observed_at, vnum, coalesce(bin_dir, ''), conf_at
  FROM fact f WHERE NOT EXISTS (SELECT 1 FROM instances x WHERE x.server_id = f.server_id AND x.port = f.port)
  ORDER BY server_id, port
  ON CONFLICT (server_id, port) DO UPDATE SET
    herd_id = excluded.herd_id, data_directory = excluded.data_directory, pg_version = excluded.pg_version, role = excluded.role, observed_role = excluded.observed_role,
    upstream_instance_id = excluded.upstream_instance_id,
    state = CASE WHEN i.state IN ('fenced', 'needs_rebuild') THEN i.state ELSE 'running'::instance_state END,
    timeline = excluded.timeline, lsn = excluded.lsn, lag_bytes = coalesce(excluded.lag_bytes, i.lag_bytes),
    pending_restart = excluded.pending_restart, last_observed_at = excluded.last_observed_at,
    server_version_num = coalesce(excluded.server_version_num, i.server_version_num), bin_dir = CASE WHEN excluded.bin_dir = '' THEN i.bin_dir ELSE excluded.bin_dir END,
    conf_loaded_at = greatest(excluded.conf_loaded_at, i.conf_loaded_at), updated_at = now()
  RETURNING i.id, i.server_id, i.port, i.role, i.data_directory, (xmax = 0) AS created
), up AS (
  SELECT * FROM updated UNION ALL SELECT * FROM inserted
), silent AS (
  -- What a report does not list is not proven stopped: the agent may not see every cluster on its host
  -- (a socket directory it does not look in). These are observed over Postgres next, and that decides.
  -- By the (server, port) index: state is compared as text so that no plan reads the state index (all
  -- running instances) on a stale estimate.
  SELECT i.id, i.server_id FROM instances i
  WHERE i.server_id = ANY ($3::int[]) AND i.state::text IN ('running', 'unreachable') AND NOT EXISTS (SELECT 1 FROM unknown)
    AND i.port <> ALL (coalesce((SELECT b.ports FROM batch b WHERE b.server_id = i.server_id), '{}'::int[]))
), audited AS (
  INSERT INTO audit_entries (user_id, username, remote_addr, action, object_type, object_id, object_label, environment_id, changes)
  SELECT NULL, 'agent:' || fact.hostname, '', 'agent.create', 'instances', up.id::text, fact.hostname || ':' || up.port, fact.environment_id,
         jsonb_build_object('role', jsonb_build_array(NULL, up.role), 'dataDirectory', jsonb_build_array(NULL, up.data_directory))
  FROM up JOIN fact USING (server_id, port) WHERE up.created
  RETURNING 1
)
SELECT b.server_id AS "serverId",
       (SELECT coalesce(array_agg(sysid), '{}') FROM unknown) AS unknown,
       (SELECT count(*) FILTER (WHERE created) FROM up WHERE up.server_id = b.server_id)::int AS created,
       (SELECT count(*) FILTER (WHERE NOT created) FROM up WHERE up.server_id = b.server_id)::int AS updated,
       (SELECT coalesce(array_agg(silent.id::text ORDER BY silent.id), '{}') FROM silent WHERE silent.server_id = b.server_id) AS silent,
       (SELECT coalesce(json_agg(json_build_object('server_id', p.server_id, 'port', p.port, 'sysid', p.sysid, 'herd_id', p.herd_id)), '[]')
          FROM placed p WHERE p.conflict AND p.server_id = b.server_id AND NOT EXISTS (SELECT 1 FROM unknown)) AS held,
       -- The data directories pgherd has on record on the server (as the statement began: the instances it
       -- just created are the report's own), for its agent to look for their lock files too. By the
       -- (server, port) index, at most 64.
       (SELECT coalesce(array_agg(DISTINCT d.data_directory), '{}') FROM
          (SELECT i.data_directory FROM instances i WHERE i.server_id = b.server_id AND i.data_directory LIKE '/%'
           ORDER BY i.port LIMIT 64) d) AS "dataDirectories"
FROM batch b
