WITH r AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(server_id int, port int, url text, scope text, hostname text)
), prop AS (
  UPDATE instances i SET patroni_proposed_url = r.url, patroni_proposed_scope = r.scope, updated_at = now()
  FROM r, instances old, herds h
  WHERE i.server_id = r.server_id AND i.port = r.port AND old.id = i.id AND h.id = i.herd_id
    AND (i.patroni_proposed_url, i.patroni_proposed_scope) IS DISTINCT FROM (r.url, r.scope)
    AND NOT (i.patroni_url = r.url AND h.control_driver = 'patroni' AND h.patroni_scope = r.scope)
  RETURNING i.id, i.herd_id, i.port, r.hostname, old.patroni_proposed_url AS was_url, old.patroni_proposed_scope AS was_scope, r.url, r.scope
)
INSERT INTO audit_entries (user_id, username, remote_addr, action, object_type, object_id, object_label, environment_id, changes)
SELECT NULL::int, 'agent:' || prop.hostname, '', 'agent.patroni_proposal', 'instances', prop.id::text, prop.hostname || ':' || prop.port,
       (SELECT environment_id FROM herds WHERE id = prop.herd_id),
       jsonb_build_object('patroniProposedUrl', jsonb_build_array(nullif(prop.was_url, ''), prop.url),
                          'patroniProposedScope', jsonb_build_array(nullif(prop.was_scope, ''), prop.scope))
FROM prop
