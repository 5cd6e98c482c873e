// What a target owes its clients back (a PgBouncer pause, a drained DNS name), as recorded before it took
// them: the engine names it when a target ends, the herd and operation pages list it. Settling it is the
// reconcile's (lib/actions/steps/settle-owed.ts).
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import { outsideRideBound, type Db } from '@/db/client';
import { operationTargets, owedCleanups } from '@/db/schema';

export interface OwedView {
  id: number;
  targetId: number;
  operationId: number;
  says: string;
  dueBy: Date;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
}

/** What is still owed on these herds (or by this operation's targets), oldest first: for the herd and operation pages. */
export async function owedNow(db: Db, where: { herdIds?: number[]; operationId?: number }): Promise<OwedView[]> {
  return db
    .select({
      id: owedCleanups.id,
      targetId: owedCleanups.targetId,
      operationId: operationTargets.operationId,
      says: owedCleanups.says,
      dueBy: owedCleanups.dueBy,
      attempts: owedCleanups.attempts,
      lastError: owedCleanups.lastError,
      createdAt: owedCleanups.createdAt,
    })
    .from(owedCleanups)
    .innerJoin(operationTargets, eq(operationTargets.id, owedCleanups.targetId))
    .where(
      and(
        isNull(owedCleanups.settledAt),
        where.herdIds ? inArray(owedCleanups.herdId, where.herdIds) : undefined,
        where.operationId !== undefined ? eq(operationTargets.operationId, where.operationId) : undefined,
      ),
    )
    .orderBy(asc(owedCleanups.id));
}

/** The owed cleanups of one target, in words, for its end's record. */
export async function owedBy(db: Db, targetId: number): Promise<string[]> {
  const rows = await db
    .select({ says: owedCleanups.says })
    .from(owedCleanups)
    .where(and(eq(owedCleanups.targetId, targetId), isNull(owedCleanups.settledAt)));
  return rows.map((r) => r.says);
}

/**
 * Before a target's own cleanup gives back what it owes (a RESUME, writes allowed again): claims its
 * owed row, as the reconcile claims it (for 30 s), so that the two never both act. 'ours': still owed,
 * no other target holds the herd, and now this cleanup's; 'not ours': another settled it or is settling
 * it, or the herd is another target's now (a worker frozen past its lease and thawed finds this: the
 * pooler may be paused again on purpose by whoever holds the herd; reconcile settles the row once the
 * herd is free, as the herd is then), so the cleanup does nothing; 'unknown': pgherd's database did not
 * answer within half a second, the case such cleanups run for after a lost lease (the worker cut off from
 * it), so the cleanup acts, and soon: what it gives back must be given back before the lease expires.
 */
export async function claimOwedForCleanup(db: Db, owedId: number): Promise<'ours' | 'not ours' | 'unknown'> {
  // Outside the step's ride bound (and sent from inside it: drizzle's query starts when then'd): past
  // the bound (a worker frozen beyond its lease, thawed) the claim must still be asked, and its WHERE is
  // the fence.
  const claim = outsideRideBound(() =>
    db
      .execute(
        sql`UPDATE owed_cleanups o SET claimed_until = now() + interval '30 seconds'
            WHERE o.id = ${owedId} AND o.settled_at IS NULL AND (o.claimed_until IS NULL OR o.claimed_until < now())
              AND NOT EXISTS (SELECT 1 FROM herd_leases l WHERE l.herd_id = o.herd_id AND l.target_id <> o.target_id AND l.expires_at > now())
            RETURNING o.id`,
      )
      .then((r) => (r.rows.length ? ('ours' as const) : ('not ours' as const))),
  ).catch(() => 'unknown' as const);
  return Promise.race([claim, new Promise<'unknown'>((r) => setTimeout(() => r('unknown'), 500).unref())]);
}

/**
 * Records what a target's own cleanup did with an owed row (settled, or what is still open), outside
 * the step's ride bound as the claim is: what it gave back was given back, and the row says so however
 * late this lands (else the row stays claimed, and reconcile waits out the claim to settle what is done).
 */
export async function recordOwed(
  db: Db,
  owedId: number,
  values: { settledAt: Date; settledHow: string } | { lastError: string },
): Promise<void> {
  await outsideRideBound(() =>
    db
      .update(owedCleanups)
      .set(values)
      .where(eq(owedCleanups.id, owedId))
      .then(() => undefined),
  );
}
