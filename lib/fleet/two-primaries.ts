// Two primaries in one herd at once, as pgherd saw them: the inventory says so (both members running
// as primary, which pgherd_herds_two_primaries counts at the next scrape) and the webhooks' outbox
// gets a herd.two_primaries event, in one transaction, so that neither is said without the other.
//
// The inventory alone is not the proof: a switchover records its promoted member as the primary before
// it records the old one otherwise (a moment in each switchover, and until another worker resumes it
// when the one running it dies), while Postgres has exactly one primary all along. So the finding and
// the metric count only members that Postgres says accept writes now (writablePrimaries).
import { eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { herds, instances, notificationEvents } from '@/db/schema';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { observe } from '@/lib/fleet/observe';

/** The channel the worker listens on for the outbox (the one migration 0032's trigger notifies). */
const NOTIFICATIONS_CHANNEL = 'pgherd_notifications';

/** A member answers as a primary beside the herd's primary: the step that saw it fails with this. */
export class TwoPrimariesError extends Error {
  constructor(readonly detail: string) {
    super(`two primaries: ${detail}`);
    this.name = 'TwoPrimariesError';
  }
}

export async function recordTwoPrimaries(
  db: Db,
  seen: { herdId: number; instanceId: number; operationId: number | null; detail: string },
): Promise<void> {
  await db.transaction(async (tx) => {
    // Seen accepting writes: whatever a fence proved earlier, it no longer holds, and calling it
    // fenced would keep it out of every count of the herd's primaries.
    await tx.update(instances).set({ role: 'primary', observedRole: 'primary', state: 'running' }).where(eq(instances.id, seen.instanceId));
    await tx
      .insert(notificationEvents)
      .values({ kind: 'herd.two_primaries', herdId: seen.herdId, operationId: seen.operationId, detail: seen.detail });
    await tx.execute(sql`SELECT pg_notify(${NOTIFICATIONS_CHANNEL}, '')`);
  });
}

/** How long asking one member whether it accepts writes may take: a scrape or a page waits on it. */
const ASK_MS = 2000;

/**
 * Of `members`, those that accept writes now, each asked at once: reachable, not in recovery, and of the
 * herd's system identifier where it is known (something else listening at a member's address is not the
 * herd's primary).
 */
export async function acceptingWrites(members: InstanceRef[], systemIdentifier: (herdId: number) => string | null): Promise<InstanceRef[]> {
  const asked = await Promise.all(members.map(async (r) => ({ r, o: await observe(r, ASK_MS) })));
  return asked
    .filter(({ r, o }) => {
      const own = systemIdentifier(r.herdId);
      return o.reachable && o.inRecovery === false && !(own && o.systemIdentifier && o.systemIdentifier !== own);
    })
    .map(({ r }) => r);
}

/**
 * Of the members that `herdIds`' inventory records running as primary, those that accept writes now
 * (acceptingWrites), by herd. A herd appears only with two or more: one that accepts writes beside a
 * stopped or recovering member is one primary, whatever the inventory says meanwhile.
 */
export async function writablePrimaries(db: Db, herdIds: number[]): Promise<Map<number, number[]>> {
  const out = new Map<number, number[]>();
  if (!herdIds.length) return out;
  const rows = await db
    .select({ id: instances.id, herdId: instances.herdId, systemIdentifier: herds.systemIdentifier })
    .from(instances)
    .innerJoin(herds, eq(herds.id, instances.herdId))
    .where(sql`${inArray(instances.herdId, herdIds)} AND ${instances.role} = 'primary' AND ${instances.state} = 'running'`);
  const sysid = new Map(rows.map((r) => [r.herdId, r.systemIdentifier]));
  const refs = await loadInstanceRefs(
    db,
    rows.map((r) => r.id),
  );
  for (const r of await acceptingWrites(refs, (h) => sysid.get(h) ?? null)) out.set(r.herdId, [...(out.get(r.herdId) ?? []), r.id]);
  for (const [h, ids] of out) if (ids.length < 2) out.delete(h);
  return out;
}
