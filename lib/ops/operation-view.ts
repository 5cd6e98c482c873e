// An operation with its targets and steps, as the operation page and the API show it.
import { asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { operations, operationSteps, operationTargets } from '@/db/schema';
import { liveWorkers } from './workers';

export interface OperationView {
  id: number;
  action: string;
  /** The action's parameters, as confirmed. */
  params: Record<string, unknown>;
  status: string;
  requestedBy: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  cancelRequested: boolean;
  /** Worker processes alive now: none, and a queued or running operation is not progressing. */
  workersAlive: number;
  targets: {
    id: number;
    instanceId: number | null;
    herdId: number | null;
    label: string;
    status: string;
    error: string | null;
    /** What it came to, when the action says (a failover: the new primary, the possible data loss). */
    outcome: string | null;
    attempts: number;
    steps: { seq: number; name: string; status: string; command: string; exitCode: number | null; output: string; startedAt: string; finishedAt: string | null }[];
  }[];
}

export async function operationView(db: Db, id: number): Promise<OperationView | null> {
  const [op] = await db.select().from(operations).where(eq(operations.id, id));
  if (!op) return null;
  const targets = await db.select().from(operationTargets).where(eq(operationTargets.operationId, id)).orderBy(asc(operationTargets.id));
  const steps = targets.length
    ? await db.select().from(operationSteps).where(inArray(operationSteps.targetId, targets.map((t) => t.id))).orderBy(asc(operationSteps.targetId), asc(operationSteps.seq))
    : [];
  return {
    id: op.id,
    action: op.action,
    params: ((op.params as { actionParams?: Record<string, unknown> }).actionParams) ?? {},
    status: op.status,
    requestedBy: op.requestedByName,
    createdAt: op.createdAt.toISOString(),
    startedAt: op.startedAt?.toISOString() ?? null,
    finishedAt: op.finishedAt?.toISOString() ?? null,
    cancelRequested: op.cancelRequested,
    workersAlive: op.finishedAt ? 0 : (await liveWorkers(db)).length,
    targets: targets.map((t) => ({
      id: t.id,
      instanceId: t.instanceId,
      herdId: t.herdId,
      label: t.label,
      status: t.status,
      error: t.error,
      outcome: t.outcome,
      attempts: t.attempts,
      steps: steps.filter((s) => s.targetId === t.id).map((s) => ({
        seq: s.seq,
        name: s.name,
        status: s.status,
        command: s.command,
        exitCode: s.exitCode,
        output: [s.stdoutTail, s.stderrTail].filter(Boolean).join('\n'),
        startedAt: s.startedAt.toISOString(),
        finishedAt: s.finishedAt?.toISOString() ?? null,
      })),
    })),
  };
}
