// Two primaries in one herd at once, as pgherd saw them: the inventory says so (both members running
// as primary, which pgherd_herds_two_primaries counts at the next scrape) and the webhooks' outbox
// gets a herd.two_primaries event, in one transaction, so that neither is said without the other.
import { eq, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { instances, notificationEvents } from '@/db/schema';

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
