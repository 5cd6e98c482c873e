// EC2 discovery passes as rows: a user asks for one (the servers page's button, POST
// /api/v1/cloud/discovery) by adding a row, which wakes the workers (NOTIFY); the worker that holds
// the discovery lock takes every pass asked for, runs one, and writes its summary into each. The
// schedule's passes are recorded the same way, so the page shows the last pass whoever asked.
import { and, desc, eq, isNull, lt, sql } from 'drizzle-orm';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Db } from '@/db/client';
import { discoveryRuns } from '@/db/schema';
import { roleIn, type Access } from '@/lib/engine/access';
import { awsErrorText } from '@/lib/adapters/aws/errors';
import type { RDSClient } from '@aws-sdk/client-rds';
import { discoverEc2, type DiscoveryConfig } from './discovery';
import { discoverRds } from './rds-discovery';

export const DISCOVERY_CHANNEL = 'pgherd_discovery';
/** The passes kept; older ones are deleted after each pass. */
export const DISCOVERY_RUNS_KEPT = 500;

export type DiscoveryRun = typeof discoveryRuns.$inferSelect;

/**
 * A pass as the API and the page show it to `access`. What it found (servers created and gone in any
 * environment, instance ids) and why it failed are for global roles only: a pass spans every
 * environment, and a reader with roles in some sees that it ran, not what it saw elsewhere.
 */
export const runView = (r: DiscoveryRun, access: Access) => {
  const whole = roleIn(access, null) !== null;
  return {
    id: r.id,
    requestedBy: r.requestedBy ?? 'schedule',
    requestedAt: r.requestedAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    status: r.finishedAt ? (r.error ? ('failed' as const) : ('done' as const)) : r.startedAt ? ('running' as const) : ('waiting' as const),
    summary: whole ? r.summary : null,
    error: whole ? r.error : null,
  };
};

/**
 * Asks for a pass: the one already waiting when there is one (a second click adds nothing), else a new
 * row. Returns it, and whether it is new.
 */
export async function requestDiscovery(db: Db, requestedBy: string): Promise<{ run: DiscoveryRun; created: boolean }> {
  return db.transaction(async (tx) => {
    // One asker at a time decides whether to add a row.
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${DISCOVERY_CHANNEL}))`);
    const [waiting] = await tx
      .select()
      .from(discoveryRuns)
      .where(and(isNull(discoveryRuns.finishedAt), isNull(discoveryRuns.startedAt)))
      .orderBy(discoveryRuns.id)
      .limit(1);
    if (waiting) return { run: waiting, created: false };
    const [run] = await tx.insert(discoveryRuns).values({ requestedBy }).returning();
    if (!run) throw new Error('the discovery request was not recorded');
    await tx.execute(sql`SELECT pg_notify(${DISCOVERY_CHANNEL}, ${String(run.id)})`);
    return { run, created: true };
  });
}

export async function discoveryRun(db: Db, id: number): Promise<DiscoveryRun | null> {
  const [run] = await db.select().from(discoveryRuns).where(eq(discoveryRuns.id, id));
  return run ?? null;
}

/** The latest passes, newest first. */
export async function latestDiscoveryRuns(db: Db, limit = 5): Promise<DiscoveryRun[]> {
  return db.select().from(discoveryRuns).orderBy(desc(discoveryRuns.id)).limit(limit);
}

/** Whether a pass is waiting for a worker. */
export async function discoveryWanted(db: Db): Promise<boolean> {
  const [row] = await db.select({ id: discoveryRuns.id }).from(discoveryRuns).where(isNull(discoveryRuns.finishedAt)).limit(1);
  return !!row;
}

/**
 * One pass, by the holder of the discovery lock (the caller holds it: no other pass runs). Takes every
 * pass not finished (asked for, or started by a worker that died), or records a scheduled one when
 * `scheduled` and none is waiting; runs nothing when neither.
 */
export async function runDiscovery(
  db: Db,
  cfg: DiscoveryConfig,
  clientFor: (region: string) => EC2Client,
  opts: { scheduled: boolean; rdsClientFor?: (region: string) => RDSClient },
): Promise<DiscoveryRun['summary'] | null> {
  const now = new Date();
  let ids = (
    await db.update(discoveryRuns).set({ startedAt: now }).where(isNull(discoveryRuns.finishedAt)).returning({ id: discoveryRuns.id })
  ).map((r) => r.id);
  if (!ids.length) {
    if (!opts.scheduled) return null;
    const [row] = await db.insert(discoveryRuns).values({ requestedBy: null, startedAt: now }).returning({ id: discoveryRuns.id });
    ids = row ? [row.id] : [];
  }
  const mine = sql`${discoveryRuns.id} IN (${sql.join(
    ids.map((id) => sql`${id}`),
    sql`, `,
  )})`;
  try {
    const summary = await discoverEc2(db, cfg, clientFor);
    if (cfg.rds && opts.rdsClientFor) summary.rds = await discoverRds(db, cfg, opts.rdsClientFor);
    await db.update(discoveryRuns).set({ finishedAt: new Date(), summary }).where(mine);
    return summary;
  } catch (err) {
    await db
      .update(discoveryRuns)
      .set({ finishedAt: new Date(), error: awsErrorText(err) })
      .where(mine);
    throw err;
  } finally {
    const [edge] = await db
      .select({ id: discoveryRuns.id })
      .from(discoveryRuns)
      .orderBy(desc(discoveryRuns.id))
      .offset(DISCOVERY_RUNS_KEPT)
      .limit(1);
    if (edge) await db.delete(discoveryRuns).where(lt(discoveryRuns.id, edge.id + 1));
  }
}
