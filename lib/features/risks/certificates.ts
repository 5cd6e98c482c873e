// The certificates of what stands beside Postgres, for the certificate risk: each PgBouncer's client TLS
// (an SSLRequest, as for Postgres) and each Patroni member's REST API (an HTTPS handshake), read by a
// worker chore every PGHERD_RISKS_CERTIFICATES_MS into tls_readings; the judge makes findings of them
// (find.ts). A handshake each, nothing sent after it, nothing trusted: only the dates and subject kept.
// Postgres's own certificate is read by the refresh (lib/fleet/risks/read-risks.ts).
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { probeCertificate, probeTlsCertificate, type SeenCertificate } from '@/lib/fleet/risks/cert-probe';

interface Endpoint {
  key: string;
  kind: 'pgbouncer' | 'patroni';
  herdId: number;
  instanceId: number | null;
  host: string;
  port: number;
  endpoint: string;
}

/** Handshakes at once, at most. */
const AT_ONCE = 16;

async function endpoints(db: Db): Promise<Endpoint[]> {
  const poolers = await db.execute<{ id: number; herd_id: number; host: string; port: number; label: string }>(sql`
    SELECT p.id, p.herd_id, coalesce(nullif(s.address, ''), s.hostname) AS host, p.port,
      coalesce(nullif(s.hostname, ''), s.address) || ':' || p.port AS label
    FROM poolers p JOIN servers s ON s.id = p.server_id`);
  const rest = await db.execute<{ id: string; herd_id: number; url: string }>(sql`
    SELECT i.id, i.herd_id, i.patroni_url AS url FROM instances i WHERE i.patroni_url LIKE 'https://%'`);
  return [
    ...poolers.rows.map((p) => ({
      key: `pooler:${String(p.id)}`,
      kind: 'pgbouncer' as const,
      herdId: p.herd_id,
      instanceId: null,
      host: p.host,
      port: p.port,
      endpoint: `PgBouncer ${p.label}`,
    })),
    ...rest.rows.map((r) => {
      const u = new URL(r.url);
      return {
        key: `patroni:${r.id}`,
        kind: 'patroni' as const,
        herdId: r.herd_id,
        instanceId: Number(r.id),
        host: u.hostname,
        port: Number(u.port || 443),
        endpoint: `Patroni REST ${u.host}`,
      };
    }),
  ];
}

/** Reads every endpoint's certificate now and keeps what it saw (an endpoint gone: its row goes too). */
export async function readEndpointCertificates(db: Db, timeoutMs = 5000): Promise<{ read: number; failed: number }> {
  const all = await endpoints(db);
  const seen: (Endpoint & { cert: SeenCertificate | null; error: string | null })[] = [];
  for (let k = 0; k < all.length; k += AT_ONCE)
    seen.push(
      ...(await Promise.all(
        all.slice(k, k + AT_ONCE).map(async (e) => {
          try {
            const cert = e.kind === 'pgbouncer' ? await probeCertificate(e, timeoutMs) : await probeTlsCertificate(e, timeoutMs);
            return { ...e, cert, error: cert ? null : 'takes no TLS' };
          } catch (err) {
            return { ...e, cert: null, error: (err as Error).message.slice(0, 300) };
          }
        }),
      )),
    );
  const rows = seen.map((s) => ({
    key: s.key,
    kind: s.kind,
    herd_id: s.herdId,
    instance_id: s.instanceId,
    endpoint: s.endpoint,
    not_after: s.cert?.notAfter ?? null,
    subject: s.cert?.subject ?? null,
    error: s.error,
  }));
  await db.transaction(async (tx) => {
    await tx.execute(
      sql`DELETE FROM tls_readings WHERE key NOT IN (SELECT jsonb_array_elements_text(${JSON.stringify(rows.map((r) => r.key))}::jsonb))`,
    );
    if (rows.length)
      await tx.execute(sql`
        INSERT INTO tls_readings (key, kind, herd_id, instance_id, endpoint, not_after, subject, error, read_at)
        SELECT key, kind, herd_id, instance_id, endpoint, not_after, subject, error, now()
        FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
          AS x(key text, kind text, herd_id int, instance_id bigint, endpoint text, not_after timestamptz, subject text, error text)
        ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, herd_id = EXCLUDED.herd_id, instance_id = EXCLUDED.instance_id,
          endpoint = EXCLUDED.endpoint, not_after = EXCLUDED.not_after, subject = EXCLUDED.subject, error = EXCLUDED.error,
          read_at = EXCLUDED.read_at`);
  });
  return { read: seen.filter((s) => s.cert).length, failed: seen.filter((s) => s.error && s.error !== 'takes no TLS').length };
}
