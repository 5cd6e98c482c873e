WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(server_id int, bin_dir text, version_num int, version_text text, extensions jsonb)),
gone AS (
  DELETE FROM postgres_builds b
  WHERE b.server_id IN (SELECT jsonb_array_elements_text($2::jsonb)::int)
    AND NOT EXISTS (SELECT 1 FROM r WHERE r.server_id = b.server_id AND r.bin_dir = b.bin_dir))
INSERT INTO postgres_builds (server_id, bin_dir, version_num, version_text, extensions, reported_at)
SELECT server_id, bin_dir, version_num, version_text, coalesce(extensions, '{}'), now() FROM r
ON CONFLICT (server_id, bin_dir) DO UPDATE SET version_num = excluded.version_num, version_text = excluded.version_text,
  extensions = excluded.extensions, reported_at = now()
