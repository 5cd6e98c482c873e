WITH found AS (
  SELECT h.id, 'no member answers as a primary; recorded as primary: ' ||
         (SELECT string_agg(s.hostname || ':' || i.port || ' (' || i.state || ')', ', ' ORDER BY s.hostname, i.port)
          FROM instances i JOIN servers s ON s.id = i.server_id WHERE i.herd_id = h.id AND i.role = 'primary') AS detail
  FROM herds h
  WHERE h.id = ANY($1::int[]) AND h.no_primary_since IS NULL
    AND EXISTS (SELECT 1 FROM instances i WHERE i.herd_id = h.id AND i.role = 'primary')
    AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.herd_id = h.id AND i.role = 'primary' AND i.state = 'running')
    AND NOT EXISTS (SELECT 1 FROM herd_leases l WHERE l.herd_id = h.id AND l.expires_at > now())),
-- Checked again on the locked row: of two passes at once, one raises it.
raised AS (
  UPDATE herds h SET no_primary_since = now(), no_primary_detail = f.detail FROM found f
  WHERE h.id = f.id AND h.no_primary_since IS NULL RETURNING h.id, f.detail)
INSERT INTO notification_events (kind, herd_id, detail) SELECT 'herd.no_primary', id, detail FROM raised RETURNING herd_id
