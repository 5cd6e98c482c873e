SELECT h.id, h.name, h.system_identifier, h.automation, e.name AS environment, e.id AS environment_id,
       coalesce((SELECT json_agg(json_build_object('id', d.id, 'name', d.name, 'type', d.type, 'zone', d.zone, 'provider', d.provider,
           'ttl', d.ttl, 'match', d.match, 'matchRole', d.match_role, 'matchInstanceId', d.match_instance_id) ORDER BY d.id)
         FROM dns_records d WHERE d.herd_id = h.id), '[]') AS dns,
       coalesce((SELECT json_agg(json_build_object('id', p.id, 'herdId', p.herd_id, 'label', s.hostname || ':' || p.port,
           'host', coalesce(nullif(s.address, ''), s.hostname), 'port', p.port, 'adminUser', p.admin_user,
           'configFile', p.config_file, 'databases', p.databases, 'serverEnvironmentId', s.environment_id, 'serverEnvironment', (SELECT name FROM environments WHERE id = s.environment_id),
           'ssh', json_build_object('host', coalesce(nullif(s.address, ''), s.hostname), 'port', s.ssh_port,
                                    'username', s.ssh_user, 'hostKeyFingerprint', s.ssh_host_key_fingerprint, 'serverId', s.id,
                                    'environment', (SELECT name FROM environments WHERE id = s.environment_id))) ORDER BY p.id)
         FROM poolers p JOIN servers s ON s.id = p.server_id WHERE p.herd_id = h.id), '[]') AS poolers
FROM herds h JOIN environments e ON e.id = h.environment_id
WHERE h.id = ANY($1::int[]) ORDER BY h.id
