SELECT h.id AS herd_id, p.id, p.herd_id IS NOT NULL AS herd_scoped, p.repo_kind, p.repo_path, p.s3_bucket, p.s3_endpoint,
       p.s3_region, p.s3_connect_host, p.s3_port, p.s3_ca_file, p.retention_full, p.compress_type, p.encrypt, p.from_standby, p.archive_timeout_seconds,
       CASE WHEN s.id IS NOT NULL THEN json_build_object('id', s.id, 'hostname', s.hostname, 'address', s.address,
         'sshPort', s.ssh_port, 'sshUser', s.ssh_user, 'fingerprint', s.ssh_host_key_fingerprint,
         'environmentId', s.environment_id, 'environment', se.name, 'approval', s.approval) END AS server
FROM herds h
JOIN LATERAL (SELECT * FROM backup_policies bp
              WHERE bp.herd_id = h.id OR (bp.herd_id IS NULL AND bp.environment_id = h.environment_id)
              ORDER BY bp.herd_id IS NULL LIMIT 1) p ON true
LEFT JOIN servers s ON s.id = p.repo_server_id
LEFT JOIN environments se ON se.id = s.environment_id
WHERE h.id = ANY($1::int[])
