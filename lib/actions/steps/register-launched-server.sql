INSERT INTO servers (hostname, environment_id, address, site, ssh_port, ssh_user, ssh_host_key_fingerprint, cloud_provider, cloud_region,
                     cloud_instance_id, cloud_instance_type, cloud_availability_zone, cloud_architecture, cloud_state,
                     cloud_private_address, cloud_tags, cloud_seen_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'aws', $8,
        $9, $10, $11, $12, 'running', $3,
        $13::jsonb, now())
RETURNING id
