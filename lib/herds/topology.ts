// A herd as it is right now (like `patronictl list`): every member observed in parallel, its DNS
// names asked at their zone's server, and its recent operations.
import { desc, eq } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { operations, operationTargets } from '@/db/schema';
import { dnsZones } from '@/lib/dns/config';
import { recordTargets, recordValues } from '@/lib/dns/desired';
import { lookup } from '@/lib/dns/rfc2136';
import { lsnToNumber } from '@/lib/inventory/lsn';
import { loadHerdRefs, type DnsRecordRef, type HerdRef } from '@/lib/ops/herd-ref';
import type { InstanceRef } from '@/lib/ops/instance-ref';
import { observe, type Observed } from '@/lib/ops/observe';
import { stateFrom } from '@/lib/ops/refresh';

export interface MemberNow {
  ref: InstanceRef;
  observed: Observed;
  role: 'primary' | 'replica' | 'unknown';
  state: string;
  /** Bytes behind the primary's current position (replayed), as seen in this same pass. */
  lagBytes: number | null;
  upstream: string | null;
}

export interface DnsNow {
  record: DnsRecordRef;
  answers: string[] | null;
  /** What it should answer per the members observed now, or why nothing. */
  expected: string[] | string;
  ok: boolean;
  error?: string;
}

export interface HerdNow {
  herd: HerdRef;
  members: MemberNow[];
  dns: DnsNow[];
  operations: { id: number; action: string; status: string; requestedBy: string; createdAt: Date; targetStatus: string }[];
}

export async function herdNow(db: Db, herdId: number): Promise<HerdNow | null> {
  const [herd] = await loadHerdRefs(db, [herdId]);
  if (!herd) return null;
  const seen = await Promise.all(herd.members.map(async (ref) => ({ ref, observed: await observe(ref, 2000) })));
  const primary = seen.find((m) => m.observed.reachable && m.observed.inRecovery === false);
  const primaryLsn = primary?.observed.lsn ? lsnToNumber(primary.observed.lsn) : null;
  const byEndpoint = new Map(herd.members.map((m) => [`${m.host}:${m.port}`, m]));
  const members: MemberNow[] = seen.map(({ ref, observed: o }) => {
    const role = !o.reachable ? 'unknown' : o.inRecovery ? 'replica' : 'primary';
    const lsn = o.lsn ? lsnToNumber(o.lsn) : null;
    const w = o.walReceiver;
    return {
      ref,
      observed: o,
      role,
      state: o.reachable ? (ref.state === 'fenced' ? 'fenced' : 'running') : ref.state === 'fenced' ? 'fenced' : stateFrom(o),
      lagBytes: role === 'replica' && primaryLsn !== null && lsn !== null ? Math.max(0, primaryLsn - lsn) : role === 'primary' ? 0 : null,
      upstream: w ? byEndpoint.get(`${w.senderHost}:${w.senderPort}`)?.label ?? `${w.senderHost}:${w.senderPort} (not in the herd)` : null,
    };
  });
  // DNS as it should be for the members as observed now.
  const asNow = members.map((m) => ({ ...m.ref, role: m.role, state: m.state }));
  const zones = safeZones();
  const dns = await Promise.all(herd.dns.map(async (record): Promise<DnsNow> => {
    const targets = recordTargets(record, asNow);
    let expected: string[] | string;
    try {
      expected = typeof targets === 'string' ? targets : recordValues(record, targets);
    } catch (err) {
      expected = (err as Error).message;
    }
    const zone = zones.find((z) => z.zone === record.zone.replace(/\.$/, '').toLowerCase());
    if (!zone) return { record, answers: null, expected, ok: false, error: `no DNS server configured for zone ${record.zone}` };
    try {
      const answers = await lookup(zone.server, record.name, record.type, 1500);
      return { record, answers, expected, ok: Array.isArray(expected) && expected.map((v) => v.toLowerCase()).sort().join(',') === answers.join(',') };
    } catch (err) {
      return { record, answers: null, expected, ok: false, error: (err as Error).message };
    }
  }));
  const ops = await db.select({
    id: operations.id, action: operations.action, status: operations.status, requestedBy: operations.requestedByName,
    createdAt: operations.createdAt, targetStatus: operationTargets.status,
  }).from(operationTargets).innerJoin(operations, eq(operations.id, operationTargets.operationId))
    .where(eq(operationTargets.herdId, herdId)).orderBy(desc(operationTargets.id)).limit(15);
  return { herd, members, dns, operations: ops };
}

function safeZones() {
  try {
    return dnsZones();
  } catch {
    return [];
  }
}
