// An operation with its targets and steps, as the operation page and the API show it.
import { asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { herds, operations, operationSteps, operationTargets, operationWaves } from '@/db/schema';
import { can, type Access } from '@/lib/auth/access';
import { liveWorkers } from './workers';
import { describeWaves, wavesSchema } from './waves';

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
  /** Paused (by a person, the failure budget or a health gate), and why: nothing new starts until resumed. */
  pausedAt: string | null;
  pausedReason: string | null;
  /** A rolling operation: its waves in words and each wave's state; null when every target started at once. */
  waves: {
    summary: string;
    current: number;
    list: {
      wave: number;
      status: string;
      targets: number;
      /** Its targets by status (of those the viewer may see). */
      counts: Record<string, number>;
      startedAt: string | null;
      endedAt: string | null;
      passedAt: string | null;
      gateNote: string | null;
    }[];
  } | null;
  /** Targets in environments the viewer has no role in: counted, never shown. */
  hiddenTargets: number;
  /** Worker processes alive now: none, and a queued or running operation is not progressing. */
  workersAlive: number;
  targets: {
    id: number;
    instanceId: number | null;
    herdId: number | null;
    label: string;
    status: string;
    /** Its wave, and whether it is held back (its wave has not started, or the operation is paused). */
    wave: number;
    held: boolean;
    error: string | null;
    /** What it came to, when the action says (a failover: the new primary, the possible data loss). */
    outcome: string | null;
    attempts: number;
    steps: {
      seq: number;
      name: string;
      status: string;
      command: string;
      exitCode: number | null;
      output: string;
      startedAt: string;
      finishedAt: string | null;
    }[];
  }[];
}

/**
 * The operation as `access` may see it: only the targets in environments where it has a role (an
 * operation may span several; a staging operator must not read production's commands and data
 * directories). A target whose herd is gone belongs to no environment: global viewers only. Null
 * when the operation does not exist.
 */
export async function operationView(db: Db, id: number, access: Access): Promise<OperationView | null> {
  const [op] = await db.select().from(operations).where(eq(operations.id, id));
  if (!op) return null;
  const rows = await db
    .select({ t: operationTargets, env: herds.environmentId })
    .from(operationTargets)
    .leftJoin(herds, eq(herds.id, operationTargets.herdId))
    .where(eq(operationTargets.operationId, id))
    .orderBy(asc(operationTargets.id));
  const targets = rows.filter((r) => can(access, 'viewer', r.env)).map((r) => r.t);
  const steps = targets.length
    ? await db
        .select()
        .from(operationSteps)
        .where(
          inArray(
            operationSteps.targetId,
            targets.map((t) => t.id),
          ),
        )
        .orderBy(asc(operationSteps.targetId), asc(operationSteps.seq))
    : [];
  const spec = op.waves === null ? null : wavesSchema.safeParse(op.waves);
  const waveRows = spec
    ? await db.select().from(operationWaves).where(eq(operationWaves.operationId, id)).orderBy(asc(operationWaves.wave))
    : [];
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    id: op.id,
    action: op.action,
    params: (op.params as { actionParams?: Record<string, unknown> }).actionParams ?? {},
    status: op.status,
    requestedBy: op.requestedByName,
    createdAt: op.createdAt.toISOString(),
    startedAt: op.startedAt?.toISOString() ?? null,
    finishedAt: op.finishedAt?.toISOString() ?? null,
    cancelRequested: op.cancelRequested,
    pausedAt: iso(op.pausedAt),
    pausedReason: op.pausedReason,
    waves:
      spec?.success && waveRows.length
        ? {
            summary: describeWaves(spec.data, waveRows.length),
            current: op.currentWave,
            list: waveRows.map((w) => ({
              wave: w.wave,
              status: w.status,
              targets: w.targets,
              counts: targets
                .filter((t) => t.wave === w.wave)
                .reduce<Record<string, number>>((c, t) => ({ ...c, [t.status]: (c[t.status] ?? 0) + 1 }), {}),
              startedAt: iso(w.startedAt),
              endedAt: iso(w.endedAt),
              passedAt: iso(w.passedAt),
              gateNote: w.gateNote,
            })),
          }
        : null,
    hiddenTargets: rows.length - targets.length,
    workersAlive: op.finishedAt ? 0 : (await liveWorkers(db)).length,
    targets: targets.map((t) => ({
      id: t.id,
      instanceId: t.instanceId,
      herdId: t.herdId,
      label: t.label,
      status: t.status,
      wave: t.wave,
      held: t.held,
      error: t.error,
      outcome: t.outcome,
      attempts: t.attempts,
      steps: steps
        .filter((s) => s.targetId === t.id)
        .map((s) => ({
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
