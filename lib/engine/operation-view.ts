// An operation with its targets and steps, as the operation page and the API show it.
import { asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { herds, operations, operationSteps, operationTargets, operationWaves } from '@/db/schema';
import { can, type Access } from '@/lib/engine/access';
import { withholding } from '@/lib/engine/operation-withheld';
import { namesFailedCleanup } from '@/lib/engine/target-end';
import { liveWorkers } from '@/lib/engine/workers-alive';
import { describeWaves, wavesSchema } from '@/lib/engine/waves';

export interface OperationView {
  id: number;
  action: string;
  /** The action's parameters, as confirmed (one that names a target the viewer may not see: withheld). */
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
  /** Give this back as `since` to poll for what changed (see OperationDelta). */
  cursor: string;
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
    /** Its error names a cleanup that failed: something it should have put back is left for a person. */
    cleanupFailed: boolean;
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

/** A later poll's answer: the operation as a whole, and only the targets that changed since `cursor`. */
export interface OperationDelta extends Omit<OperationView, 'targets'> {
  /** Targets that changed (their status, or a step started or ended) since the cursor asked with, in full. */
  targets: OperationView['targets'];
  /** Every visible target's id in order, so a client can drop none and add the new ones in place. */
  order: number[];
  /** Give this back as `since` on the next poll. */
  cursor: string;
}

// A poll asks again for what changed a little before its cursor: a transaction that began earlier may
// commit later than the poll that set the cursor, and a worker's clock may run behind the database's.
const OVERLAP_MS = 5000;

/** Whether the operation is the viewer's own: asked for by them, while they are an active user. */
export const ownOperation = (access: Access, requestedBy: number | null): boolean =>
  requestedBy !== null && requestedBy === access.userId && !access.inactive;

/**
 * Whether the viewer may see a target in environment `env`. A target whose herd was deleted since
 * (a Tear down ends by deleting its herd) belongs to no environment: a global viewer sees it, and so
 * does whoever asked for the operation, whose own record it stays; a target in an environment where
 * they hold no role now stays hidden from them all the same.
 */
export const seesTarget = (access: Access, env: number | null, own: boolean): boolean =>
  can(access, 'viewer', env) || (env === null && own);

/**
 * The operation as `access` may see it: only the targets in environments where it has a role (an
 * operation may span several; a staging operator must not read production's commands and data
 * directories). A target whose herd is gone belongs to no environment: global viewers only, and the
 * person who asked for the operation (seesTarget). Null
 * when the operation does not exist. With `since` (a cursor from an earlier answer), only the targets
 * that changed after it are sent in full: the page of a 1,000-target operation polls without
 * re-sending every target each second.
 */
export async function operationView(db: Db, id: number, access: Access): Promise<OperationView | null>;
export async function operationView(db: Db, id: number, access: Access, since: Date): Promise<OperationDelta | null>;
export async function operationView(db: Db, id: number, access: Access, since?: Date): Promise<OperationView | OperationDelta | null> {
  const [op] = await db.select().from(operations).where(eq(operations.id, id));
  if (!op) return null;
  // The database's clock, as text (the driver hands raw statements' timestamps back as strings).
  const { rows: nowRows } = await db.execute<{ now: string }>(
    sql`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now`,
  );
  const cursor = nowRows[0]?.now ?? new Date().toISOString();
  // Who may see which target: one row per target (id, wave, status, environment), cheap at any size.
  const all = await db
    .select({
      id: operationTargets.id,
      herdId: operationTargets.herdId,
      wave: operationTargets.wave,
      status: operationTargets.status,
      env: herds.environmentId,
    })
    .from(operationTargets)
    .leftJoin(herds, eq(herds.id, operationTargets.herdId))
    .where(eq(operationTargets.operationId, id))
    .orderBy(asc(operationTargets.id));
  const own = ownOperation(access, op.requestedBy);
  const visible = all.filter((r) => seesTarget(access, r.env, own));
  const withheld = await withholding(
    db,
    access,
    all.filter((r) => !seesTarget(access, r.env, own)),
  );
  const after = since ? new Date(since.getTime() - OVERLAP_MS) : null;
  const changedIds = after
    ? (
        await db.execute<{ id: number }>(sql`
          SELECT t.id FROM operation_targets t WHERE t.operation_id = ${id} AND (t.updated_at > ${after}
            OR EXISTS (SELECT 1 FROM operation_steps s WHERE s.target_id = t.id AND (s.started_at > ${after} OR s.finished_at > ${after})))`)
      ).rows.map((r) => r.id)
    : null;
  const seen = new Set(visible.map((r) => r.id));
  const wanted = changedIds ? changedIds.filter((t) => seen.has(t)) : visible.map((r) => r.id);
  const targets = wanted.length
    ? await db.select().from(operationTargets).where(inArray(operationTargets.id, wanted)).orderBy(asc(operationTargets.id))
    : [];
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
  const stepsOf = new Map<number, (typeof steps)[number][]>();
  for (const st of steps) stepsOf.set(st.targetId, [...(stepsOf.get(st.targetId) ?? []), st]);
  const spec = op.waves === null ? null : wavesSchema.safeParse(op.waves);
  const waveRows = spec
    ? await db.select().from(operationWaves).where(eq(operationWaves.operationId, id)).orderBy(asc(operationWaves.wave))
    : [];
  const counts = new Map<number, Record<string, number>>();
  for (const r of visible) {
    const c = counts.get(r.wave) ?? {};
    c[r.status] = (c[r.status] ?? 0) + 1;
    counts.set(r.wave, c);
  }
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  const whole = {
    id: op.id,
    action: op.action,
    params: await withheld.params(op.actionParams),
    status: op.status,
    requestedBy: op.requestedByName,
    createdAt: op.createdAt.toISOString(),
    startedAt: op.startedAt?.toISOString() ?? null,
    finishedAt: op.finishedAt?.toISOString() ?? null,
    cancelRequested: op.cancelRequested,
    pausedAt: iso(op.pausedAt),
    pausedReason: withheld.note(op.pausedReason),
    waves:
      spec?.success && waveRows.length
        ? {
            summary: describeWaves(spec.data, waveRows.length),
            current: op.currentWave,
            list: waveRows.map((w) => ({
              wave: w.wave,
              status: w.status,
              targets: w.targets,
              counts: counts.get(w.wave) ?? {},
              startedAt: iso(w.startedAt),
              endedAt: iso(w.endedAt),
              passedAt: iso(w.passedAt),
              gateNote: withheld.note(w.gateNote),
            })),
          }
        : null,
    hiddenTargets: all.length - visible.length,
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
      cleanupFailed: namesFailedCleanup(t.error),
      outcome: t.outcome,
      attempts: t.attempts,
      steps: (stepsOf.get(t.id) ?? []).map((st) => ({
        seq: st.seq,
        name: st.name,
        status: st.status,
        command: st.command,
        exitCode: st.exitCode,
        output: [st.stdoutTail, st.stderrTail].filter(Boolean).join('\n'),
        startedAt: st.startedAt.toISOString(),
        finishedAt: st.finishedAt?.toISOString() ?? null,
      })),
    })),
  };
  return since ? { ...whole, order: visible.map((r) => r.id), cursor } : { ...whole, cursor };
}
