// The state refresher: reads every instance's role, state, timeline, LSN, lag, upstream and pending
// restarts, with bounded concurrency, and writes them to the inventory.
import { eq } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { instances } from '@/db/schema';
import { lsnToNumber } from '@/lib/inventory/lsn';
import { loadInstanceRefs, type InstanceRef } from './instance-ref';
import { observe, type Observed } from './observe';
import { stateFrom } from './refresh';

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

export interface RefreshSummary {
  observed: number;
  reachable: number;
  ms: number;
}

/** Refreshes the given instances (default: all). States pgherd set on purpose (fenced, needs_rebuild) stay. */
export async function refreshFleet(db: Db, opts: { ids?: number[]; concurrency?: number; timeoutMs?: number } = {}): Promise<RefreshSummary> {
  const t0 = Date.now();
  const ids = opts.ids ?? (await db.select({ id: instances.id }).from(instances)).map((r) => r.id);
  const refs = await loadInstanceRefs(db, ids);
  const seen = await mapLimit(refs, opts.concurrency ?? 16, async (r) => ({ r, o: await observe(r, opts.timeoutMs ?? 3000) }));
  // A replica's lag in bytes is measured against its herd's primary as seen in this same pass.
  const primaryLsn = new Map<number, number>();
  for (const { r, o } of seen) if (o.reachable && o.inRecovery === false && o.lsn) primaryLsn.set(r.herdId, lsnToNumber(o.lsn));
  const byAddress = new Map(refs.map((r) => [`${r.herdId}/${r.host}:${r.port}`, r]));
  const now = new Date();
  for (const { r, o } of seen) await db.update(instances).set(values(r, o, primaryLsn.get(r.herdId), byAddress, now)).where(eq(instances.id, r.id));
  return { observed: seen.length, reachable: seen.filter((x) => x.o.reachable).length, ms: Date.now() - t0 };
}

function values(r: InstanceRef, o: Observed, primary: number | undefined, byAddress: Map<string, InstanceRef>, now: Date) {
  const keep = r.state === 'fenced' || r.state === 'needs_rebuild';
  if (!o.reachable) return { state: keep ? (r.state as 'fenced') : stateFrom(o), lastObservedAt: now };
  const lsn = o.lsn ? lsnToNumber(o.lsn) : null;
  const upstream = o.walReceiver?.senderHost ? byAddress.get(`${r.herdId}/${o.walReceiver.senderHost}:${o.walReceiver.senderPort}`) : undefined;
  return {
    state: keep ? (r.state as 'fenced') : ('running' as const),
    role: o.inRecovery ? ('replica' as const) : ('primary' as const),
    timeline: o.timeline,
    lsn,
    lagBytes: o.inRecovery ? (primary !== undefined && lsn !== null ? Math.max(0, primary - lsn) : null) : 0,
    lagSeconds: o.inRecovery ? o.replayLagSeconds ?? null : 0,
    pendingRestart: !!o.pendingRestart,
    upstreamInstanceId: o.inRecovery ? upstream?.id ?? null : null,
    lastObservedAt: now,
  };
}
