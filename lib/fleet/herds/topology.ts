// A herd as it is right now (like `patronictl list`): every member observed in parallel, its DNS
// names asked at their zone's server, and its recent operations.
import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { auditEntries, operations, operationTargets } from '@/db/schema';
import { checkRecord, type DnsNow } from '@/lib/fleet/dns-records';
import { loadHerdRefs, type HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe } from '@/lib/fleet/observe';
import { describePooler } from '@/lib/fleet/pooler';
import { readPass, type Reading } from '@/lib/fleet/refresher';
import { patroniNow, type PatroniNow } from '@/lib/fleet/patroni-view';
import type { DiagramInput } from './diagram';

export interface MemberNow extends Reading {
  ref: InstanceRef;
}

export type { DnsNow };

export interface HerdNow {
  herd: HerdRef;
  members: MemberNow[];
  dns: DnsNow[];
  /** Each PgBouncer in front of the herd, with where its entries point now (SHOW DATABASES). */
  poolers: { label: string; configFile: string; now: string }[];
  /** `reason`: why the system started it (null for a person's). */
  operations: {
    id: number;
    action: string;
    status: string;
    requestedBy: string;
    createdAt: Date;
    reason: string | null;
  }[];
  /** Patroni's view, on a herd whose control driver is patroni (null otherwise). */
  patroni: PatroniNow | null;
}

export async function herdNow(db: Db, herdId: number): Promise<HerdNow | null> {
  const [herd] = await loadHerdRefs(db, [herdId]);
  if (!herd) return null;
  const underPatroni = herd.members.some((r) => r.controlDriver === 'patroni');
  const [seen, patroni] = await Promise.all([
    Promise.all(herd.members.map(async (r) => ({ r, o: await observe(r, 2000) }))),
    underPatroni ? patroniNow(herd.members) : null,
  ]);
  const readings = readPass(seen);
  const members: MemberNow[] = herd.members.map((ref) => {
    const reading = readings.get(ref.id);
    if (!reading) throw new Error(`herdNow: no reading for instance ${ref.id}`);
    return { ref, ...reading };
  });
  // DNS as it should be for the members as observed now.
  const asNow = members.map((m) => ({ ...m.ref, role: m.role ?? ('unknown' as const), state: m.state }));
  const dns = await Promise.all(herd.dns.map((record) => checkRecord(record, asNow)));
  const poolers = await Promise.all(
    herd.poolers.map(async (p) => ({
      label: p.label,
      configFile: p.configFile,
      now: await describePooler(p).catch((err: unknown) => `not answering: ${err instanceof Error ? err.message : String(err)}`),
    })),
  );
  // Each operation once, however many of its targets are this herd's members.
  const ops = await db
    .select({
      id: operations.id,
      action: operations.action,
      status: operations.status,
      requestedBy: operations.requestedByName,
      createdAt: operations.createdAt,
    })
    .from(operations)
    .where(
      inArray(
        operations.id,
        db.selectDistinct({ id: operationTargets.operationId }).from(operationTargets).where(eq(operationTargets.herdId, herdId)),
      ),
    )
    .orderBy(desc(operations.id))
    .limit(15);
  // Why the system started one (DNS following Patroni's leader): its audit entry says.
  const bySystem = ops.filter((o) => o.requestedBy === 'system').map((o) => String(o.id));
  const reasons = new Map(
    bySystem.length
      ? (
          await db
            .select({ id: auditEntries.objectId, reason: sql<string | null>`${auditEntries.changes} -> 'reason' ->> 1` })
            .from(auditEntries)
            .where(and(eq(auditEntries.objectType, 'operations'), inArray(auditEntries.objectId, bySystem)))
        ).flatMap((r) => (r.reason ? [[Number(r.id), r.reason] as const] : []))
      : [],
  );
  return { herd, members, dns, poolers, operations: ops.map((o) => ({ ...o, reason: reasons.get(o.id) ?? null })), patroni };
}

/** The herd as the diagram draws it: members as observed now, where each DNS name and PgBouncer points. */
export function diagramOf(now: Pick<HerdNow, 'members' | 'dns' | 'poolers'>): DiagramInput {
  const named = (text: string, m: MemberNow) => {
    const t = text.replace(/\.$/, '');
    return t === m.ref.hostname || t === m.ref.host;
  };
  return {
    members: now.members.map((m) => ({
      id: m.ref.id,
      label: m.ref.label,
      site: m.ref.site,
      role: m.role,
      state: m.state,
      upstreamId: m.upstream?.id ?? null,
      lagBytes: m.role === 'replica' ? m.lagBytes : null,
      lagSeconds: m.role === 'replica' ? (m.observed.replayLagSeconds ?? null) : null,
    })),
    dns: now.dns.map((d) => ({
      name: d.record.name,
      memberIds: now.members.filter((m) => (d.answers ?? []).some((a) => named(a, m))).map((m) => m.ref.id),
      ok: d.ok,
    })),
    poolers: now.poolers.map((p) => ({
      label: p.label,
      memberId:
        now.members.find((m) => p.now.includes(`${m.ref.host}:${m.ref.port}`) || p.now.includes(`${m.ref.hostname}:${m.ref.port}`))?.ref
          .id ?? null,
    })),
  };
}
