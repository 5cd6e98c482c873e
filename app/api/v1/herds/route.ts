import { NextResponse } from 'next/server';
import { asc, inArray } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { dnsRecords } from '@/db/schema';
import { apiUser, handle } from '@/lib/features/api/respond';
import { listFromQuery } from '@/lib/features/api/list';
import { herdsQuery } from '@/lib/features/api/contract/inventory';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';

/**
 * GET /api/v1/herds: the herds changelist's filters; each herd with its control driver (and, Patroni's,
 * its view as last read), its primary, its members (as last observed; Patroni's REST address), its
 * worst lag and its DNS records with what their server last answered (drifted: the
 * answer is not what the members say; null: not asked yet).
 */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const db = getDb();
  const list = await listFromQuery(req, herdsQuery, 'herds', user.access);
  const ids = list.rows.map((r) => r.__id);
  const members = await loadInstanceRefs(db, [], { herdIds: ids });
  const dns = ids.length ? await db.select().from(dnsRecords).where(inArray(dnsRecords.herdId, ids)).orderBy(asc(dnsRecords.id)) : [];
  return NextResponse.json({
    items: list.rows.map((r) => {
      const id = r.__id;
      const own = members.filter((m) => m.herdId === id);
      const primary = own.find((m) => m.role === 'primary' && m.state !== 'fenced');
      const records = dns.filter((d) => d.herdId === id);
      const lags = own.flatMap((m) => (m.role === 'replica' && m.lagBytes !== null ? [m.lagBytes] : []));
      return {
        id,
        environment: r.environment,
        name: r.name,
        version: r.pgVersion,
        automation: r.automation,
        controlDriver: r.controlDriver,
        // Patroni's view as the worker last read it (a herd Patroni runs; null otherwise), as the changelist shows it.
        patroni: r.patroni ?? null,
        primary: primary ? { id: primary.id, label: primary.label, state: primary.state } : null,
        members: own.map((m) => ({
          id: m.id,
          label: m.label,
          server: m.hostname,
          site: m.site,
          port: m.port,
          role: m.role,
          state: m.state,
          upstreamId: m.upstreamId,
          lsn: m.lsn,
          lagBytes: m.lagBytes,
          patroniUrl: m.patroniUrl || null,
        })),
        worstLagBytes: lags.length ? Math.max(...lags) : null,
        dns: records.map((d) => ({
          name: d.name,
          type: d.type,
          ttl: d.ttl,
          answers: d.lastAnswer,
          drifted: d.drifted,
          checkedAt: d.lastCheckedAt?.toISOString() ?? null,
        })),
        dnsDrift: r.dnsDrift ?? null,
      };
    }),
    total: list.total,
    page: list.page,
    pages: list.pages,
  });
});
