// What a target owes its clients back (a PgBouncer pause, a drained DNS name), as recorded before it took
// them: the engine names it when a target ends, the herd and operation pages list it. Settling it is the
// reconcile's (lib/actions/steps/settle-owed.ts).
import { and, asc, eq, inArray, isNull } from 'drizzle-orm';
import type { Db } from '@/db/client';
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
