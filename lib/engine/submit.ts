// Confirm -> enqueue: re-plan, compare digests, check what was typed, then write the operation, its
// targets and an audit entry in one transaction, and put one job per target on the queue.
import type { Executor } from '@/lib/engine/turns';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Queue } from 'bullmq';
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { instances, operations, operationWaves } from '@/db/schema';
import { writeAudit, type AuditInput } from '@/lib/engine/write-audit';
import { canOnAll, type Actor } from '@/lib/engine/access';
import { isHerdAction, type AnyAction } from '@/lib/engine/define-action';
import { planOperation, type Plan, type PlannedTarget } from '@/lib/engine/plan';
import { confirmedSteps } from '@/lib/engine/plan-identity';
import { enqueueTargets, type TargetJob } from '@/lib/engine/queue';
import { SubmitError } from '@/lib/engine/submit-errors';
import { describeWaves, wavesOf, type WaveSpec } from '@/lib/engine/waves';
import { plainWords, planEnvironments, policiesSql, requirementOf, type PolicyRow, type Requirement } from '@/lib/engine/approval-policies';

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
  /**
   * `refused`: each refused target (its id: the instance's, or the herd's for a herd action) and its
   * reason. Said grouped by reason, the most targets first: three in the message, up to 20 in the
   * details with the targets each one refused (up to 100 ids a reason).
   */
  constructor(readonly refused: { id: number; reason: string }[] = []) {
    const by = new Map<string, number[]>();
    for (const { id, reason } of refused) by.set(reason, [...(by.get(reason) ?? []), id]);
    const groups = [...by].map(([reason, ids]) => ({ reason, ids })).sort((a, b) => b.ids.length - a.ids.length);
    const said = groups.slice(0, 3).map((g) => (g.ids.length > 1 ? `${g.reason} (${String(g.ids.length)} targets)` : g.reason));
    const more = groups.length > 3 ? `; and ${String(groups.length - 3)} more` : '';
    const why = said.length ? ` (${said.join('; ')}${more})` : '';
    const details = groups.length
      ? { refusals: groups.slice(0, 20).map((g) => ({ reason: g.reason, targets: g.ids.slice(0, 100) })) }
      : null;
    super('nothing', 409, `every target was refused: nothing to run${why}`, details);
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
  /** The rule whose run this is (lib/features/rules/fire.ts). */
  ruleId?: number;
  /** Break glass: an admin's reason for running at once a plan that needs approval. */
  breakGlass?: string;
}

/** Break glass asked for where it cannot be had: not an admin everywhere the plan runs, or a policy forbids it. */
export class BreakGlassError extends SubmitError {
  constructor(message: string) {
    super('break-glass', 403, message);
    this.name = 'BreakGlassError';
  }
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

type KeyedOperation = {
  id: number;
  action: string;
  digest: string;
  params: unknown;
  actionParams: unknown;
  status: string;
};

/** What a submit asks for, comparable: action, digest, targets, parameters (sorted by name). */
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
  return { id: found.id, duplicate: true, status: found.status };
}

const keyed = {
  id: operations.id,
  action: operations.action,
  digest: operations.planDigest,
  params: operations.params,
  actionParams: operations.actionParams,
  status: operations.status,
};

export async function submitOperation(
  db: Db,
  queue: Queue<TargetJob> | null,
  action: AnyAction,
  input: SubmitInput,
  actor: Actor,
  log: (e: string, f: object) => void = () => {},
): Promise<{ id: number; duplicate: boolean; status: string }> {
  const ids = targetIdsFor(action, input);
  // Authorization first: a key never tells anyone who may not run this whether an operation exists.
  // A refusal (AccessDenied) goes up to whoever answers it, the console or the API, which records it.
  const plan = await planOperation(db, actor.access, action, ids, input.params ?? {}, input.waves ?? null);
  // The same page (or API call) submitted again by the same user: the operation it made, even if the
  // inventory has moved since (that operation ran on it).
  const mine = and(eq(operations.requestedByName, actor.username), eq(operations.idempotencyKey, input.idempotencyKey));
  // The operation this key made, and the approval policies covering the plan, in one statement: a plan
  // that needs no approval costs no round trip more than before there were policies.
  const envs = planEnvironments(plan);
  const found = await db.execute<KeyedOperation & { policies: PolicyRow[] }>(sql`
    SELECT o.id, o.action, o.plan_digest AS digest, o.params, o.action_params AS "actionParams", o.status,
      ${policiesSql(action.name, envs, plan.typeToConfirm !== null)} AS policies
    FROM (SELECT 1) one LEFT JOIN operations o ON o.requested_by_name = ${actor.username} AND o.idempotency_key = ${input.idempotencyKey}`);
  const row = found.rows[0];
  // The same key for something else (another action, other targets or parameters) is a client's
  // mistake: answered as such, not with the earlier operation as if this one had been made.
  if (row?.id != null) return sameKeyAnswer(row, action.name, input.digest, ids, plan.params);
  if (plan.digest !== input.digest || plan.missing.length) throw new StalePlanError(plan);
  if (plan.typeToConfirm !== null && input.confirmation.trim() !== plan.typeToConfirm) throw new ConfirmationError(plan.typeToConfirm);
  const runnable = plan.targets.filter((t) => !t.refused);
  if (!runnable.length)
    throw new NothingToRunError(plan.targets.flatMap((t) => (t.refused ? [{ id: t.instanceId ?? t.herdId, reason: t.refused }] : [])));
  // Policies are for people: pgherd itself (seeding, tests, its own chores: no user) is not asked.
  const requirement = actor.id === null ? null : requirementOf(row?.policies ?? [], envs);
  const breakGlass = requirement && input.breakGlass !== undefined ? breakGlassReason(action, requirement, actor, input.breakGlass) : null;
  if (requirement && breakGlass === null) {
    const waiting = await writeAwaiting(db, { action, plan, actor, input, requirement });
    if (waiting !== null) return { id: waiting, duplicate: false, status: 'awaiting_approval' };
    const [again] = await db.select(keyed).from(operations).where(mine);
    if (!again) throw new Error('the operation another submit of this page made is gone');
    return sameKeyAnswer(again, action.name, input.digest, ids, plan.params);
  }
  const [made] = await writeOperations(
    db,
    queue,
    [
      {
        action,
        plan,
        actor,
        confirmation: input.confirmation,
        idempotencyKey: input.idempotencyKey,
        waves: input.waves ?? null,
        retryOf: input.retryOf,
        ruleId: input.ruleId,
        ...(breakGlass !== null ? { breakGlass } : {}),
      },
    ],
    log,
  );
  if (!made) {
    // Another submit with this key won the race: the same plan is that operation; anything else, a 409 as above.
    const [again] = await db.select(keyed).from(operations).where(mine);
    if (!again) throw new Error('the operation another submit of this page made is gone');
    return sameKeyAnswer(again, action.name, input.digest, ids, plan.params);
  }
  return { id: made, duplicate: false, status: 'queued' };
}

/**
 * The reason for breaking glass, once it may be: the requester holds admin in every environment of the
 * plan, and no policy covering it forbids break glass for this action. BreakGlassError otherwise.
 */
function breakGlassReason(action: AnyAction, req: Requirement, actor: Actor, reason: string): string {
  const why = plainWords(reason);
  // Ten characters a reader can see: spaces, control and invisible characters do not count.
  if (why.replace(/\s/g, '').length < 10) throw new BreakGlassError('break glass needs a reason, in at least 10 characters');
  if (!canOnAll(actor.access, 'admin', req.environmentIds))
    throw new BreakGlassError('break glass is an admin\u2019s, in every environment of the plan: ask for approval instead');
  if (req.policies.some((p) => p.breakGlassForbidden.includes(action.name)))
    throw new BreakGlassError(`an approval policy here forbids break glass for ${action.name}: it needs its approval`);
  return why;
}

/**
 * An operation that waits for approval: the plan as confirmed (its digest, targets, parameters, waves)
 * and what the policies ask, with its audit entry; no targets, nothing queued, no herd held. Its id, or
 * null when the requester's key made one already (a second submit racing this one).
 */
async function writeAwaiting(
  db: Db,
  w: { action: AnyAction; plan: Plan; actor: Actor; input: SubmitInput; requirement: Requirement },
): Promise<number | null> {
  const { plan, actor, input, requirement: req } = w;
  return db.transaction(async (tx) => {
    const made = await tx.execute<{ id: number }>(sql`
      INSERT INTO operations (action, params, action_params, status, plan_digest, requested_by, requested_by_name, requested_by_system,
        confirmation, idempotency_key, approvals_required, approval_expires_at, environment_ids, pending)
      VALUES (${w.action.name}, ${JSON.stringify({ [plan.on === 'herd' ? 'herdIds' : 'instanceIds']: plan.targets.map((t) => t.instanceId ?? t.herdId) })}::jsonb,
        ${JSON.stringify(plan.params)}::jsonb, 'awaiting_approval', ${plan.digest}, ${actor.id}, ${actor.username},
        ${actor.id === null && actor.access.superuser}, ${input.confirmation.slice(0, 200)}, ${input.idempotencyKey}, ${req.approvalsRequired},
        now() + make_interval(secs => ${req.ttlSeconds}), ${sql.param(req.environmentIds)}::int[],
        ${JSON.stringify({ waves: input.waves ?? null, retryOf: input.retryOf ?? null, typed: plan.typeToConfirm !== null })}::jsonb)
      ON CONFLICT DO NOTHING RETURNING id`);
    const id = made.rows[0]?.id;
    if (id === undefined) return null;
    // Told to the webhooks that ask (approval.requested, with its signed links), once this commits.
    await tx.execute(sql`INSERT INTO notification_events (kind, operation_id) VALUES ('approval.requested', ${id})`);
    await tx.execute(sql`SELECT pg_notify('pgherd_notifications', '')`);
    const runnable = plan.targets.filter((t) => !t.refused);
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'approval.requested',
      objectType: 'operations',
      objectId: String(id),
      objectLabel: `${w.action.label}: ${runnable.length} ${plan.on === 'herd' ? 'herd' : 'target'}${runnable.length === 1 ? '' : 's'}`,
      environmentId: req.environmentIds.length === 1 ? req.environmentIds[0] : null,
      changes: {
        digest: [null, plan.digest],
        targets: [
          null,
          runnable
            .map((t) => t.label)
            .join(', ')
            .slice(0, 2000),
        ],
        approvalsRequired: [null, req.approvalsRequired],
        policies: [null, req.policies.map((p) => p.id).join(', ')],
        ...(input.retryOf ? { retryOf: [null, input.retryOf] } : {}),
      },
    });
    return id;
  });
}

/** One operation to write: a plan checked and confirmed (by a person, or by the rule that fired it). */
export interface OperationToWrite {
  action: AnyAction;
  plan: Plan;
  actor: Actor;
  confirmation: string;
  idempotencyKey: string;
  waves: WaveSpec | null;
  retryOf?: number;
  ruleId?: number;
  /** A rule's marked insideWindow: its next wave waits for its herds' maintenance windows. */
  windowBound?: boolean;
  /** Why the system started it (DNS following Patroni's leader): recorded in its audit entry. */
  reason?: string;
  /** An operation that waited for approval and now has it: written in place of a new one (alone in its batch). */
  approved?: { operationId: number; by: string[] };
  /** Run without the approval a policy asks for: an admin's reason (break glass). */
  breakGlass?: string;
  /** A rule's fire where a policy asks for approval: who approved the rule (recorded in its audit entry). */
  ruleApprovedBy?: string;
}

/**
 * Writes operations, their targets, waves and audit entries in one transaction, whatever their number
 * (a column an array per statement), then puts their runnable targets on the queue. Each one's id, in
 * order, or null where a unique key refused it: its requester's idempotency key already made one, or
 * (a rule's) the rule has an operation not finished yet. Every plan must have a runnable target.
 */
export async function writeOperations(
  db: Db,
  queue: Queue<TargetJob> | null,
  items: OperationToWrite[],
  log: (e: string, f: object) => void = () => {},
  /** Run first in the transaction that writes them: a chore's turn confirmed (lib/engine/turns.ts), or they are not written. */
  fence?: (tx: Executor) => Promise<void>,
): Promise<(number | null)[]> {
  if (!items.length) return [];
  if (new Set(items.map((x) => JSON.stringify([x.actor.username, x.idempotencyKey]))).size !== items.length)
    throw new Error('two operations of one batch share a requester and an idempotency key');
  const prepared = await Promise.all(
    items.map(async (it) => {
      const { plan } = it;
      const spec = it.waves;
      const runnable = plan.targets.filter((t) => !t.refused);
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
      return { ...it, spec, runnable, assigned: waves, waveOf, ordered, excused };
    }),
  );

  const approved = prepared.find((x) => x.approved);
  if (approved && prepared.length > 1) throw new Error('an approved operation is written alone');
  const created = await db.transaction(async (tx) => {
    await fence?.(tx);
    const col = <T>(f: (x: (typeof prepared)[number]) => T) => prepared.map(f);
    // Any unique key refusing a row drops that row only: the requester's key, or a rule's one open operation.
    // An approved operation is there already: it takes its waves and starts (if it still waits).
    const ops = await tx.execute<{ id: number; key: string; who: string }>(
      approved
        ? sql`UPDATE operations SET status = 'queued', waves = ${approved.spec ? JSON.stringify(approved.spec) : null}::jsonb,
                gate_excused = ${sql.param(approved.excused)}::bigint[], updated_at = now()
              WHERE id = ${approved.approved?.operationId} AND status = 'awaiting_approval'
              RETURNING id, ${approved.idempotencyKey}::text AS key, ${approved.actor.username}::text AS who`
        : withParams(sqlFile('lib/engine/insert-operations.sql'), [
            col((x) => x.action.name),
            col((x) =>
              JSON.stringify({ [x.plan.on === 'herd' ? 'herdIds' : 'instanceIds']: x.plan.targets.map((t) => t.instanceId ?? t.herdId) }),
            ),
            col((x) => JSON.stringify(x.plan.params)),
            col((x) => (x.spec ? JSON.stringify(x.spec) : null)),
            col((x) => `{${x.excused.join(',')}}`),
            col((x) => x.plan.digest),
            col((x) => x.actor.id),
            col((x) => x.actor.username),
            col((x) => x.actor.id === null && x.actor.access.superuser),
            col((x) => x.confirmation.slice(0, 200)),
            col((x) => x.idempotencyKey),
            col((x) => x.ruleId ?? null),
            col((x) => x.windowBound ?? false),
            col((x) => x.breakGlass ?? null),
          ]),
    );
    // Each row back to its item by requester and key (unique in the batch, as in the table).
    const byKey = new Map(ops.rows.map((r) => [JSON.stringify([r.who, r.key]), r.id]));
    const idOf = new Map(
      prepared.flatMap((x, k) => {
        const id = byKey.get(JSON.stringify([x.actor.username, x.idempotencyKey]));
        return id === undefined ? [] : [[k, id] as const];
      }),
    );
    const written = prepared.flatMap((x, k) => {
      const id = idOf.get(k);
      return id === undefined ? [] : [{ ...x, id }];
    });
    if (!written.length) return { ids: prepared.map(() => null), queued: [] as number[] };
    // One statement for every target of every operation: a column an array (as rows of parameters, 10
    // a target, it took slices under Postgres's 65,535 and most of a large submit's time).
    const rows = written.flatMap((x) => x.ordered.map((t) => ({ x, t, wave: x.waveOf.get(t) ?? 1 })));
    const column = <T>(f: (r: (typeof rows)[number]) => T) => rows.map(f);
    const made = await tx.execute<{ id: number; status: string; held: boolean }>(
      withParams(sqlFile('lib/engine/insert-targets.sql'), [
        column((r) => r.x.id),
        column((r) => r.t.instanceId),
        column((r) => r.t.herdId),
        column((r) => r.t.label),
        column((r) => r.t.site),
        column((r) => r.wave),
        column((r) => r.wave > 1),
        column((r) => (r.t.refused ? 'cancelled' : 'queued')),
        column((r) => (r.t.refused ? `refused: ${r.t.refused}` : null)),
        column((r) => (r.t.refused ? (r.t.refusalCode ?? 'unclassified') : null)),
        column((r) => (r.x.action.runsAsConfirmed && !r.t.refused ? JSON.stringify(confirmedSteps(r.t)) : null)),
        column((r) => r.x.action.urgent === true),
      ]),
    );
    const waveRows = written.flatMap((x) =>
      (x.assigned ?? []).map((w) => ({
        operationId: x.id,
        wave: w.wave,
        targets: w.targets.length,
        status: w.wave === 1 ? ('running' as const) : ('pending' as const),
        startedAt: w.wave === 1 ? new Date() : null,
      })),
    );
    if (waveRows.length) await tx.insert(operationWaves).values(waveRows);
    // Each operation itself, then one entry per target: each instance's (or herd's) history shows it.
    await writeAudit(tx, written.flatMap(auditOf));
    // Break glass is said aloud: its own audit entry, and the approval.break_glass webhook.
    const broken = written.filter((x) => x.breakGlass);
    if (broken.length) {
      await writeAudit(
        tx,
        broken.map((x) => ({
          user: x.actor,
          remoteAddr: x.actor.remoteAddr,
          action: 'approval.break_glass',
          objectType: 'operations',
          objectId: String(x.id),
          objectLabel: `${x.action.label}: break glass`,
          environmentId: singleEnvironment(x.plan),
          changes: { reason: [null, x.breakGlass] },
        })),
      );
      await tx.execute(
        sql`INSERT INTO notification_events (kind, operation_id, detail)
            SELECT 'approval.break_glass', unnest(${sql.param(broken.map((x) => x.id))}::bigint[]), unnest(${sql.param(broken.map((x) => JSON.stringify({ by: x.actor.username, comment: x.breakGlass })))}::text[])`,
      );
      await tx.execute(sql`SELECT pg_notify('pgherd_notifications', '')`);
    }
    return {
      ids: prepared.map((_, k) => idOf.get(k) ?? null),
      queued: made.rows.filter((r) => r.status === 'queued' && !r.held).map((r) => r.id),
      targets: rows.length,
    };
  });
  // Thousands of new rows at once leave the planner's statistics of operation_targets far behind (it
  // may still think the table holds a few rows), and the workers' claims, planned on them, would walk
  // every open target of the operation instead of one herd's. Refresh them before the workers start,
  // when the table grew by half since they were taken (a rule's fire writes chunk after chunk: the
  // statistics are taken again as the table doubles, not at every chunk).
  if ((created.targets ?? 0) >= ANALYZE_FROM) {
    const stale = await db.execute<{ stale: boolean }>(sql`
      SELECT s.n_mod_since_analyze > greatest(c.reltuples, 1) / 2 AS stale
      FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relname = 'operation_targets'`);
    if (stale.rows[0]?.stale ?? true) await db.execute(sql`ANALYZE operation_targets`);
  }
  if (queue && created.queued.length) {
    try {
      await enqueueTargets(queue, created.queued);
    } catch (err) {
      // Postgres has the operations; a worker's reconcile enqueues their targets when Redis is back.
      log('operation.enqueue.deferred', { operations: created.ids.filter((x) => x !== null), error: (err as Error).message });
    }
  }
  return created.ids;
}

/** An operation's audit entries: the operation, then one per target. */
function auditOf(
  x: OperationToWrite & { id: number; runnable: PlannedTarget[]; spec: WaveSpec | null; assigned: { wave: number }[] | null },
): AuditInput[] {
  const { plan, actor, action } = x;
  const envs = [...new Set(plan.targets.map((t) => t.environmentId))];
  const perTarget = plan.targets.map((t): AuditInput => ({
    user: actor,
    remoteAddr: actor.remoteAddr,
    action: `operation.${action.name}`,
    objectType: plan.on === 'herd' ? 'herds' : 'instances',
    objectId: String(t.instanceId ?? t.herdId),
    objectLabel: t.label,
    environmentId: t.environmentId,
    changes: { operation: [null, x.id], ...(t.refused ? { refused: [null, t.refused] } : {}) },
  }));
  return [
    {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: `operation.${action.name}`,
      objectType: 'operations',
      objectId: String(x.id),
      objectLabel: `${action.label}: ${x.runnable.length} ${plan.on === 'herd' ? 'herd' : 'target'}${x.runnable.length === 1 ? '' : 's'}`,
      environmentId: envs.length === 1 ? envs[0] : null,
      changes: {
        ...(x.reason ? { reason: [null, x.reason] } : {}),
        digest: [null, plan.digest],
        ...(Object.keys(plan.params).length ? { params: [null, JSON.stringify(plan.params)] } : {}),
        targets: [
          null,
          plan.targets
            .map((t) => `${t.label}${t.refused ? ' (refused)' : ''}`)
            .join(', ')
            .slice(0, 2000),
        ],
        confirmation: [null, x.confirmation.slice(0, 200)],
        ...(x.spec && x.assigned ? { waves: [null, describeWaves(x.spec, x.assigned.length)] } : {}),
        ...(x.retryOf ? { retryOf: [null, x.retryOf] } : {}),
        ...(x.approved ? { approvedBy: [null, x.approved.by.join(', ')] } : {}),
        ...(x.breakGlass ? { breakGlass: [null, x.breakGlass] } : {}),
        ...(x.ruleApprovedBy !== undefined ? { ruleApprovedBy: [null, x.ruleApprovedBy] } : {}),
      },
    },
    ...perTarget,
  ];
}

/** The one environment of a plan's runnable targets, or null when they span several (or none). */
function singleEnvironment(plan: Plan): number | null {
  const envs = planEnvironments(plan);
  return envs.length === 1 ? (envs[0] ?? null) : null;
}
