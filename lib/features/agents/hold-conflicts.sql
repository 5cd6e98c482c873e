WITH held AS (
  INSERT INTO agent_conflicts AS c (server_id, port, system_identifier, herd_id)
  SELECT server_id, port, sysid, herd_id FROM jsonb_to_recordset($1::jsonb) AS r(server_id int, port int, sysid text, herd_id int)
  ORDER BY server_id, port
  ON CONFLICT (server_id, port, system_identifier) DO UPDATE SET last_seen_at = now(), herd_id = excluded.herd_id
  RETURNING c.server_id, c.port, c.system_identifier, c.herd_id, (xmax = 0) AS created)
INSERT INTO audit_entries (user_id, username, remote_addr, action, object_type, object_id, object_label, environment_id, changes)
SELECT NULL, 'agent:' || s.hostname, '', 'agent.conflict', 'herds', held.herd_id::text, s.hostname || ':' || held.port, h.environment_id,
       jsonb_build_object('systemIdentifier', jsonb_build_array(NULL, held.system_identifier),
                          'heldFrom', jsonb_build_array(NULL, e.name || '/' || h.name || ' (reported by ' || s.hostname || ', in ' || se.name || ')'))
FROM held JOIN servers s ON s.id = held.server_id JOIN environments se ON se.id = s.environment_id
JOIN herds h ON h.id = held.herd_id JOIN environments e ON e.id = h.environment_id
WHERE held.created
