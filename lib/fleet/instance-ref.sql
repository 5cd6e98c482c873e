-- One row a member of a herd (RefRow's columns), as every loader of InstanceRefs reads it; the worker's
-- claim and the conductor read a target's herd with it too.
SELECT i.id, s.hostname || ':' || i.port AS label, h.id AS herd_id, h.name AS herd, e.name AS environment,
       e.id AS environment_id, s.id AS server_id, s.environment_id AS server_environment_id, se.name AS server_environment, s.approval AS server_approval, s.hostname, s.address, s.site, i.port,
       coalesce(nullif(i.data_directory, ''), h.default_data_directory) AS data_directory,
       i.pg_version, i.bin_dir, i.server_version_num, h.control_driver, i.role, i.observed_role, i.state, s.cloud_provider, s.cloud_region, s.cloud_instance_id, i.upstream_instance_id, i.lsn, i.lag_bytes, i.timeline, h.system_identifier, h.automation, i.patroni_url, h.patroni_scope, s.ssh_port, s.ssh_user, s.ssh_host_key_fingerprint
FROM instances i
JOIN herds h ON h.id = i.herd_id
JOIN environments e ON e.id = h.environment_id
JOIN servers s ON s.id = i.server_id
JOIN environments se ON se.id = s.environment_id
