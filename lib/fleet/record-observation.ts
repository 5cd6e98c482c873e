// Writes what was observed of an instance into the inventory.
import { eq, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { instances } from '@/db/schema';
import { lsnToNumber } from '@/lib/adapters/format/lsn';
import { primaryAnswered } from '@/lib/fleet/no-primary';
import { observe, type Observed, type PgEndpoint } from '@/lib/fleet/observe';

export function stateFrom(o: Observed): 'running' | 'stopped' | 'unreachable' {
  if (o.reachable) return 'running';
  return o.refused ? 'stopped' : 'unreachable';
}

/**
 * States pgherd set on purpose stay: a fenced old primary is fenced until the rebuild (which sets
 * its state itself) says otherwise, whatever a stop or a refresh observes. Decided by the row as it
 * is when the write lands, not as it was when the observation began: a refresh that started before
 * a failover fenced the old primary must not write "stopped" over "fenced". Every writer of observed
 * state (this, the refresher, the agent ingest) goes through this rule.
 */
/** States pgherd set on purpose (fenced, needs rebuild): an observation never overwrites them. */
export const DELIBERATE_STATES = ['fenced', 'needs_rebuild'] as const;
export const isDeliberate = (state: string) => (DELIBERATE_STATES as readonly string[]).includes(state);

export const keepDeliberate = (state: string) =>
  sql`CASE WHEN ${instances.state} IN ('fenced', 'needs_rebuild') THEN ${instances.state} ELSE ${state}::instance_state END`;

/** The archive columns from an observation: a primary's reading, or nulls (a replica archives nothing). */
export function archiveValues(o: Observed) {
  const a = o.archive ?? null;
  return {
    archivedCount: a?.archivedCount ?? null,
    lastArchivedWal: a?.lastArchivedWal ?? null,
    lastArchivedAt: a?.lastArchivedAt ?? null,
    archiveFailedCount: a?.failedCount ?? null,
    lastArchiveFailedWal: a?.lastFailedWal ?? null,
    lastArchiveFailedAt: a?.lastFailedAt ?? null,
    archivePendingSince: a?.pendingSince ?? null,
  };
}

export async function refreshInstance(db: Db, id: number, e: PgEndpoint, observed?: Observed): Promise<Observed> {
  const o = observed ?? (await observe(e));
  const now = new Date();
  await db
    .update(instances)
    .set(
      o.reachable
        ? {
            state: keepDeliberate('running'),
            role: o.inRecovery ? 'replica' : 'primary',
            observedRole: o.inRecovery ? 'replica' : 'primary',
            timeline: o.timeline,
            lsn: o.lsn ? lsnToNumber(o.lsn) : null,
            // Not read (a look without it): what the inventory has stays.
            ...(o.pendingRestart === undefined ? {} : { pendingRestart: o.pendingRestart }),
            serverVersionNum: o.serverVersionNum ?? null,
            ...archiveValues(o),
            lastObservedAt: now,
            answeredAt: now,
          }
        : { state: keepDeliberate(stateFrom(o)), lastObservedAt: now },
    )
    .where(eq(instances.id, id));
  if (o.reachable && o.inRecovery === false) await primaryAnswered(db, id);
  return o;
}
