// Confirm -> enqueue: re-plan, compare digests, check what was typed, then write the operation, its
// targets and an audit entry in one transaction, and put one job per target on the queue.
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Queue } from 'bullmq';
import type { Db } from '@/db/client';
import { instances, operations, operationWaves } from '@/db/schema';
import { writeAudit, type AuditInput } from '@/lib/audit/write-audit';
import type { Access } from '@/lib/auth/access';
import { isHerdAction, type AnyAction } from './define-action';
import { planOperation, type Plan } from './plan';
import { enqueueTargets, type TargetJob } from './queue';
import { SubmitError } from './submit-errors';
import { describeWaves, wavesOf, type WaveSpec } from './waves';

const ANALYZE_FROM = 500;

export class StalePlanError extends SubmitError {
  constructor(readonly plan: Plan) {
    super('stale', 409, 'the inventory changed since this plan was made; review the new plan', {
      digest: plan.digest,
      missing: plan.missing,
    });
    this.name = 'StalePlanError';
  }
}

export class ConfirmationError extends SubmitError {
  constructor(readonly expected: string) {
    super('mistyped', 400, `type ${JSON.stringify(expected)} to confirm`, { confirm: expected });
    this.name = 'ConfirmationError';
  }
}

export class NothingToRunError extends SubmitError {
  constructor() {
    super('nothing', 409, 'every target was refused: nothing to run');
    this.name = 'NothingToRunError';
  }
}

export interface SubmitInput {
  /** The targets: instances for instance actions... */
  instanceIds?: number[];
  /** ...herds for herd actions. */
  herdIds?: number[];
  /** The action's parameters, as planned (validated again here). */
  params?: unknown;
  digest: string;
  confirmation: string;
  idempotencyKey: string;
  /** The operation whose failed targets this one runs again (recorded in the audit entry). */
  retryOf?: number;
  /** Run in waves (validated with wavesSchema by whoever read the request); absent: every target at once. */
  waves?: WaveSpec | null;
  /** The rule whose run this is (lib/schedules/fire.ts). */
  ruleId?: number;
}

export interface Actor {
  id: number | null;
  username: string;
  remoteAddr?: string;
  /** What the actor may do: checked against every target (SYSTEM_ACCESS for code on its own authority). */
  access: Access;
}

export class WrongTargetsError extends SubmitError {
  constructor(readonly action: AnyAction) {
    super(
      'wrong-targets',
      400,
      isHerdAction(action) ? `${action.name} runs on herds: give herdIds` : `${action.name} runs on instances: give instanceIds`,
    );
    this.name = 'WrongTargetsError';
  }
}

/** The ids an action's targets are named by, or WrongTargetsError when the other kind was given. */
export function targetIdsFor(action: AnyAction, input: { instanceIds?: number[]; herdIds?: number[] }): number[] {
  const ids = isHerdAction(action) ? input.herdIds : input.instanceIds;
  const other = isHerdAction(action) ? input.instanceIds : input.herdIds;
  if (!ids?.length || other?.length) throw new WrongTargetsError(action);
  return ids;
}

interface KeyedOperation {
  id: number;
  action: string;
  digest: string;
  params: unknown;
  actionParams: unknown;
}

/** What a submit asks for, comparable: action, digest, targets, parameters (sorted as digestOf sorts them). */
const request = (action: string, digest: string, ids: unknown, params: unknown) =>
  JSON.stringify([action, digest, [...((ids ?? []) as number[])].sort((a, b) => a - b), Object.entries(params ?? {}).sort()]);

/**
 * The operation a key already made: it, for the same request; a 409 naming it for anything else. The
 * digest is what the client sends: the same one with other targets or parameters is another request.
 */
function sameKeyAnswer(found: KeyedOperation, action: string, digest: string, ids: number[], params: unknown) {
  const targets = Object.values((found.params ?? {}) as Record<string, number[]>)[0];
  if (request(found.action, found.digest, targets, found.actionParams) !== request(action, digest, ids, params))
    throw new SubmitError(
      'wrong-targets',
      409,
      `this idempotency key was used for operation #${found.id} (${found.action}) with another plan: use a fresh key for another operation`,
      { operationId: found.id },
    );
  return { id: found.id, duplicate: true };
}

const keyed = {
  id: operations.id,
  action: operations.action,
  digest: operations.planDigest,
  params: operations.params,
  actionParams: operations.actionParams,
};

export async function submitOperation(
  db: Db,
  queue: Queue<TargetJob> | null,
  action: AnyAction,
  input: SubmitInput,
  actor: Actor,
  log: (e: string, f: object) => void = () => {},
): Promise<{ id: number; duplicate: boolean }> {
  const ids = targetIdsFor(action, input);
  // Authorization first: a key never tells anyone who may not run this whether an operation exists.
  // A refusal (AccessDenied) goes up to whoever answers it, the console or the API, which records it.
  const plan = await planOperation(db, actor.access, action, ids, input.params ?? {}, input.waves ?? null);
  // The same page (or API call) submitted again by the same user: the operation it made, even if the
  // inventory has moved since (that operation ran on it).
  const mine = and(eq(operations.requestedByName, actor.username), eq(operations.idempotencyKey, input.idempotencyKey));
  const existing = await db.select(keyed).from(operations).where(mine);
  const [first] = existing;
  // The same key for something else (another action, other targets or parameters) is a client's
  // mistake: answered as such, not with the earlier operation as if this one had been made.
  if (first) return sameKeyAnswer(first, action.name, input.digest, ids, plan.params);
  if (plan.digest !== input.digest || plan.missing.length) throw new StalePlanError(plan);
  if (plan.typeToConfirm !== null && input.confirmation.trim() !== plan.typeToConfirm) throw new ConfirmationError(plan.typeToConfirm);
  const runnable = plan.targets.filter((t) => !t.refused);
  if (!runnable.length) throw new NothingToRunError();
  const spec = input.waves ?? null;
  // Targets are written wave by wave, so that ids (the order a herd's targets run in) follow the waves.
  const waves = spec ? wavesOf(plan, spec) : null;
  const waveOf = new Map(waves?.flatMap((w) => w.targets.map((t) => [t, w.wave] as const)));
  const ordered = waves ? [...waves.flatMap((w) => w.targets), ...plan.targets.filter((t) => t.refused)] : plan.targets;
  // What the gate will not wait for: members already out when this was confirmed.
  const excused = spec?.gate
    ? (
        await db
          .select({ id: instances.id })
          .from(instances)
          .where(
            and(
              // One array parameter: a list of 10,000 took 100 ms to bind.
              sql`${instances.herdId} = ANY(${sql.param([...new Set(runnable.map((t) => t.herdId))])}::int[])`,
              inArray(instances.state, ['stopped', 'fenced', 'needs_rebuild']),
            ),
          )
      ).map((r) => r.id)
    : [];

  const created = await db.transaction(async (tx) => {
    const [op] = await tx
      .insert(operations)
      .values({
        action: action.name,
        params: {
          [plan.on === 'herd' ? 'herdIds' : 'instanceIds']: plan.targets.map((t) => t.instanceId ?? t.herdId),
        },
        actionParams: plan.params,
        status: 'queued',
        waves: spec,
        gateExcused: excused,
        planDigest: plan.digest,
        requestedBy: actor.id,
        requestedByName: actor.username,
        requestedBySystem: actor.id === null && actor.access.superuser,
        confirmation: input.confirmation.slice(0, 200),
        idempotencyKey: input.idempotencyKey,
        ruleId: input.ruleId ?? null,
      })
      .onConflictDoNothing({ target: [operations.requestedByName, operations.idempotencyKey] })
      .returning({ id: operations.id });
    if (!op) return null; // a concurrent submit of the same page won
    // One statement for any number of targets: a column an array (as rows of parameters, 10 a target,
    // it took slices under Postgres's 65,535 and most of a large submit's time).
    const column = <T>(f: (t: (typeof ordered)[number]) => T) => sql.param(ordered.map(f));
    const wave = (t: (typeof ordered)[number]) => waveOf.get(t) ?? 1;
    const made = await tx.execute<{ id: number; status: string; held: boolean }>(sql`
      INSERT INTO operation_targets (operation_id, instance_id, herd_id, label, site, wave, held, status, error, refusal, confirmed_steps)
      SELECT ${op.id}::int, u.instance_id, u.herd_id, u.label, u.site, u.wave, u.held, u.status, u.error, u.refusal, u.confirmed::jsonb FROM unnest(${column((t) => t.instanceId)}::int[], ${column((t) => t.herdId)}::int[],
        ${column((t) => t.label)}::text[], ${column((t) => t.site)}::text[], ${column(wave)}::int[], ${column((t) => wave(t) > 1)}::bool[],
        ${column((t) => (t.refused ? 'cancelled' : 'queued'))}::operation_status[], ${column((t) => (t.refused ? `refused: ${t.refused}` : null))}::text[],
        ${column((t) => (t.refused ? (t.refusalCode ?? 'unclassified') : null))}::text[],
        ${column((t) => (action.runsAsConfirmed && !t.refused ? JSON.stringify(t.steps) : null))}::text[])
        WITH ORDINALITY AS u(instance_id, herd_id, label, site, wave, held, status, error, refusal, confirmed, n) ORDER BY u.n
      RETURNING id, status, held`);
    const rows = made.rows;
    if (waves)
      await tx.insert(operationWaves).values(
        waves.map((w) => ({
          operationId: op.id,
          wave: w.wave,
          targets: w.targets.length,
          status: w.wave === 1 ? ('running' as const) : ('pending' as const),
          startedAt: w.wave === 1 ? new Date() : null,
        })),
      );
    const envs = [...new Set(plan.targets.map((t) => t.environmentId))];
    // The operation itself, then one entry per target: each instance's (or herd's) history shows it.
    const perTarget = plan.targets.map((t): AuditInput => ({
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: `operation.${action.name}`,
      objectType: plan.on === 'herd' ? 'herds' : 'instances',
      objectId: String(t.instanceId ?? t.herdId),
      objectLabel: t.label,
      environmentId: t.environmentId,
      changes: { operation: [null, op.id], ...(t.refused ? { refused: [null, t.refused] } : {}) },
    }));
    await writeAudit(tx, [
      {
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: `operation.${action.name}`,
        objectType: 'operations',
        objectId: String(op.id),
        objectLabel: `${action.label}: ${runnable.length} ${plan.on === 'herd' ? 'herd' : 'target'}${runnable.length === 1 ? '' : 's'}`,
        environmentId: envs.length === 1 ? envs[0] : null,
        changes: {
          digest: [null, plan.digest],
          ...(Object.keys(plan.params).length ? { params: [null, JSON.stringify(plan.params)] } : {}),
          targets: [
            null,
            plan.targets
              .map((t) => `${t.label}${t.refused ? ' (refused)' : ''}`)
              .join(', ')
              .slice(0, 2000),
          ],
          confirmation: [null, input.confirmation.slice(0, 200)],
          ...(spec && waves ? { waves: [null, describeWaves(spec, waves.length)] } : {}),
          ...(input.retryOf ? { retryOf: [null, input.retryOf] } : {}),
        },
      },
      ...perTarget,
    ]);
    return { id: op.id, queued: rows.filter((r) => r.status === 'queued' && !r.held).map((r) => r.id) };
  });
  if (!created) {
    // Another submit with this key won the race: the same plan is that operation; anything else, a 409 as above.
    const [again] = await db.select(keyed).from(operations).where(mine);
    if (!again) throw new Error('the operation another submit of this page made is gone');
    return sameKeyAnswer(again, action.name, input.digest, ids, plan.params);
  }
  // Thousands of new rows at once leave the planner's statistics of operation_targets far behind (it
  // may still think the table holds a few rows), and the workers' claims, planned on them, would walk
  // every open target of the operation instead of one herd's. Refresh them before the workers start.
  if (ordered.length >= ANALYZE_FROM) await db.execute(sql`ANALYZE operation_targets`);
  if (queue) {
    try {
      await enqueueTargets(queue, created.queued);
    } catch (err) {
      // Postgres has the operation; a worker's reconcile enqueues its targets when Redis is back.
      log('operation.enqueue.deferred', { operationId: created.id, error: (err as Error).message });
    }
  }
  return { id: created.id, duplicate: false };
}
