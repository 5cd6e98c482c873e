SELECT s.id AS "serverId", s.hostname, s.cloud_instance_id AS "cloudInstanceId",
       coalesce(s.cloud_tags ->> $1, '?') || '/' || coalesce(s.cloud_herd_tag, '?') AS "taggedHerd",
       i.id, s.hostname || ':' || i.port AS label, h.id AS "herdId", e.name || '/' || h.name AS herd, (count(*) OVER ())::int AS total
FROM servers s JOIN instances i ON i.server_id = s.id JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id
WHERE s.cloud_gone_at IS NULL AND s.cloud_tags IS NOT NULL
  AND (h.name <> s.cloud_herd_tag OR e.name <> s.cloud_tags ->> $1
    OR ((s.cloud_herd_tag IS NULL OR s.cloud_tags ->> $1 IS NULL) AND EXISTS (
      SELECT 1 FROM instances o JOIN servers os ON os.id = o.server_id
      WHERE o.herd_id = h.id AND os.id <> s.id AND os.cloud_gone_at IS NULL
        AND ((s.cloud_herd_tag IS NULL AND os.cloud_herd_tag IS NOT NULL)
          OR (s.cloud_tags ->> $1 IS NULL AND os.cloud_tags ->> $1 IS NOT NULL)))))
  AND ($2::int[] IS NULL OR i.environment_id = ANY($2::int[])) AND ($3::int IS NULL OR h.id = $3::int)
ORDER BY s.hostname, i.port
LIMIT $4
