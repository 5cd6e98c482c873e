// A rule's fire (issue 17): recorded once per rule and due time however many workers see it, then
// decided: blackouts, an earlier run still going, the scope as the owner sees it now, herds in
// maintenance, and the owner's roles; what is left becomes an ordinary operation, requested by
// "rule: NAME" on the owner's authority (the worker checks the owner's roles again at each target).
import type { Queue } from 'bullmq';
import { and, eq, inArray, isNull, max, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { pgError } from '@/db/pg-error';
import { operations, ruleRuns, rules } from '@/db/schema';
import { writeAudit } from '@/lib/audit/write-audit';
import { AccessDenied, loadAccess, noAccess } from '@/lib/auth/access';
import { isHerdAction } from '@/lib/ops/define-action';
import { errorText } from '@/lib/ops/errors';
import { planOperation } from '@/lib/ops/plan';
import type { TargetJob } from '@/lib/ops/queue';
import { getAction } from '@/lib/ops/registry';
import { NothingToRunError, StalePlanError, submitOperation } from '@/lib/ops/submit';
import { SubmitError } from '@/lib/ops/submit-errors';
import { wavesSchema } from '@/lib/ops/waves';
import { conditionSchema, judge, measure, type Values } from './conditions';
import { firesBetween } from './cron';
import { runEnded } from './webhooks';
import { retrySchema } from './rule-body';
import { runJobId, type RuleJob } from './scheduler';
import { resolveScope, RuleError, scheduleOf, type RuleRow } from './rules';
import type { RuleScope } from './rule-body';

export interface FireDeps {
  db: Db;
  /** The operations' queue (null: the worker's reconcile enqueues the operation's targets). */
  queue: Queue<TargetJob> | null;
  /** The rules' queue, for a retry's job (absent: a worker's reconcile adds it once the retry is due). */
  rules?: Queue<RuleJob> | null;
  log: (event: string, fields: object) => void;
}

/** Advisory lock class of a rule's scheduled fires: "is this due time newer than the last one?" and the insert, one worker at a time. */
const FIRE_LOCK = 72_842_010;

/** A due time is run once: the same key for every worker that sees it. */
export const dueKey = (dueAt: Date) => `at:${dueAt.getTime()}`;

type RunTarget = { id: number; label: string; skipped?: string; values?: Values };
type RunRow = typeof ruleRuns.$inferSelect;

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

/**
 * A scheduled fire, from a job scheduler's job or a worker catching up. Nothing when the rule is gone,
 * disabled or changed since (`version`: a stale scheduler's job), or when this due time (or a later
 * one) was already recorded; recorded as missed when it is later than the rule's grace (beyond
 * `onTimeMs`, what counts as on time: a busy worker's delay is not a miss). Returns the run.
 */
export async function fireDue(
  deps: FireDeps,
  ruleId: number,
  version: number | null,
  dueAt: Date,
  kind: 'schedule' | 'catch-up',
  onTimeMs: number,
  now = new Date(),
): Promise<number | null> {
  const decided = await deps.db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${FIRE_LOCK}, ${ruleId})`);
    const [rule] = await tx.select().from(rules).where(eq(rules.id, ruleId));
    if (!rule || !rule.enabled || (version !== null && rule.version !== version) || dueAt < rule.firesFrom) return null;
    const [last] = await tx
      .select({ at: max(ruleRuns.dueAt) })
      .from(ruleRuns)
      .where(and(eq(ruleRuns.ruleId, ruleId), inArray(ruleRuns.kind, ['schedule', 'catch-up'])));
    if (last?.at && dueAt <= last.at) return null;
    const lateMs = now.getTime() - dueAt.getTime();
    const missed = lateMs >= rule.graceSeconds * 1000 + onTimeMs;
    const [run] = await tx
      .insert(ruleRuns)
      .values({
        ruleId,
        kind,
        fireKey: dueKey(dueAt),
        dueAt,
        status: missed ? 'missed' : 'deciding',
        reason: missed
          ? `missed: no worker fired it in time (${seconds(lateMs)} late, beyond the rule's grace of ${rule.graceSeconds} s)`
          : null,
      })
      .onConflictDoNothing()
      .returning({ id: ruleRuns.id });
    if (!run) return null;
    return { runId: run.id, missed };
  });
  if (!decided) return null;
  if (decided.missed) {
    deps.log('rule.missed', { ruleId, dueAt: dueAt.toISOString() });
    await runEnded(deps.db, decided.runId);
  } else await decide(deps, decided.runId);
  return decided.runId;
}

/**
 * What a worker does when it starts (and now and then): the fires that fell while none ran, or that
 * Redis lost, looked for in the database. The last one runs if within the rule's grace; those before
 * it are recorded as one missed run that says how many. `slackMs`: fires younger than this are left
 * to the job schedulers, which are on time.
 */
export async function catchUp(deps: FireDeps, slackMs: number, now = new Date()): Promise<number[]> {
  const upTo = new Date(now.getTime() - slackMs);
  const rows = await deps.db.execute<{ id: number; version: number; schedule: unknown; fires_from: Date; last: Date | null }>(sql`
    SELECT r.id, r.version, r.schedule, r.fires_from,
      (SELECT max(due_at) FROM rule_runs x WHERE x.rule_id = r.id AND x.kind IN ('schedule', 'catch-up')) AS last
    FROM rules r WHERE r.enabled`);
  const fired: number[] = [];
  for (const r of rows.rows) {
    const after = new Date(Math.max(new Date(r.fires_from).getTime() - 1, r.last ? new Date(r.last).getTime() : 0));
    const schedule = scheduleOf({ schedule: r.schedule as Record<string, unknown> });
    if (!schedule) continue; // one that does not read fires never (its pages say why); the others go on
    const found = firesBetween(schedule, after, upTo);
    const latest = found.last.at(-1);
    if (!found.count || !latest) continue;
    const before = found.last.at(-2);
    if (found.count > 1 && before) {
      const n = found.count - 1;
      const [missed] = await deps.db
        .insert(ruleRuns)
        .values({
          ruleId: r.id,
          kind: 'schedule',
          fireKey: dueKey(before),
          dueAt: before,
          status: 'missed',
          reason: `missed: ${found.more ? 'more than ' : ''}${n} fire${n === 1 ? '' : 's'} up to this one fell while no worker fired them`,
        })
        .onConflictDoNothing()
        .returning({ id: ruleRuns.id });
      if (missed) await runEnded(deps.db, missed.id);
    }
    const run = await fireDue(deps, r.id, r.version, latest, 'catch-up', slackMs, now);
    if (run !== null) fired.push(run);
  }
  return fired;
}

/** Run now: the run a person asked for, taken by one worker (a second delivery of its job finds it taken). */
export async function fireRequested(deps: FireDeps, runId: number): Promise<boolean> {
  const [taken] = await deps.db
    .update(ruleRuns)
    .set({ status: 'deciding', firedAt: new Date() })
    .where(and(eq(ruleRuns.id, runId), eq(ruleRuns.status, 'firing')))
    .returning({ id: ruleRuns.id });
  if (!taken) return false;
  await decide(deps, runId);
  return true;
}

/** The targets' herds and environments, and whether each herd is in maintenance. */
async function targetFacts(db: Db, onHerds: boolean, ids: number[]) {
  const rows = await db.execute<{ id: number; label: string; herd_id: number; environment_id: number; herd: string; automation: string }>(
    onHerds
      ? sql`SELECT h.id, e.name || '/' || h.name AS label, h.id AS herd_id, h.environment_id, h.name AS herd, h.automation
          FROM herds h JOIN environments e ON e.id = h.environment_id WHERE h.id = ANY(${sql.param(ids)}::int[])`
      : sql`SELECT i.id, s.hostname || ':' || i.port AS label, h.id AS herd_id, h.environment_id, h.name AS herd, h.automation
          FROM instances i JOIN herds h ON h.id = i.herd_id JOIN servers s ON s.id = i.server_id WHERE i.id = ANY(${sql.param(ids)}::int[])`,
  );
  return new Map(rows.rows.map((r) => [r.id, r]));
}

/** The blackouts holding at `now`: global ones, and those of an environment or a herd. */
async function activeBlackouts(db: Db, now: Date) {
  const rows = await db.execute<{ name: string; ends_at: Date; environment_id: number | null; herd_id: number | null }>(
    sql`SELECT name, ends_at, environment_id, herd_id FROM blackouts WHERE starts_at <= ${now} AND ends_at > ${now}`,
  );
  return rows.rows;
}

async function settle(
  db: Db,
  runId: number,
  status: 'skipped' | 'refused' | 'nothing' | 'error' | 'started',
  reason: string,
  extra: { operationId?: number; targets?: RunTarget[] } = {},
) {
  const [settled] = await db
    .update(ruleRuns)
    .set({
      status,
      reason: reason.slice(0, 2000),
      operationId: extra.operationId,
      ...(extra.targets ? { targets: extra.targets.slice(0, 1000) } : {}),
    })
    // A run closed meanwhile (its decider was silent too long) keeps what it was closed as, unless this
    // decision made an operation: that is what happened, and it wins.
    .where(status === 'started' ? eq(ruleRuns.id, runId) : and(eq(ruleRuns.id, runId), eq(ruleRuns.status, 'deciding')))
    .returning({ id: ruleRuns.id });
  // Someone hears about a run that ended without an operation (one that made an operation is told when it finishes).
  if (settled && status !== 'started') await runEnded(db, runId);
}

/** How often a worker deciding a run says so; a run silent for staleDecidingMs() is taken for abandoned. */
export const heartbeatMs = () => Number(process.env.PGHERD_RULE_HEARTBEAT_MS ?? 20_000);
export const staleDecidingMs = () => 6 * heartbeatMs();

/** While `work` runs, the runs it decides are marked as being decided, every heartbeatMs(). */
export async function withHeartbeat<T>(db: Db, runIds: number[], work: () => Promise<T>): Promise<T> {
  const beat = () =>
    db
      .update(ruleRuns)
      .set({ heartbeatAt: sql`now()` })
      .where(and(sql`${ruleRuns.id} = ANY(${sql.param(runIds)}::int[])`, eq(ruleRuns.status, 'deciding')))
      .catch(() => {}); // a missed beat is only a later one; the reconcile allows several
  const timer = setInterval(() => void beat(), heartbeatMs());
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** A run being decided: whatever happens, it ends in one of the recorded outcomes (an error says what went wrong). */
export async function decide(deps: FireDeps, runId: number, now = new Date()): Promise<void> {
  const { db, log } = deps;
  const [row] = await db
    .select({ run: ruleRuns, rule: rules })
    .from(ruleRuns)
    .innerJoin(rules, eq(rules.id, ruleRuns.ruleId))
    .where(eq(ruleRuns.id, runId));
  if (!row) return;
  try {
    const outcome = await withHeartbeat(db, [runId], () => decideRun(deps, row.rule, row.run, now));
    log('rule.fired', { rule: row.rule.name, run: runId, ...outcome });
  } catch (err) {
    log('rule.fire.error', { rule: row.rule.name, run: runId, error: errorText(err) });
    await settle(db, runId, 'error', `pgherd could not fire it: ${errorText(err)}`).catch(() => {});
  }
}

/**
 * A later run for targets skipped for their conditions: after the rule's retry delay (with jitter),
 * while it has retries left. Its reason, or null when the rule retries no more.
 */
async function scheduleRetry(
  deps: FireDeps,
  rule: RuleRow,
  run: RunRow,
  targets: RunTarget[],
  now: Date,
  why: 'conditions' | 'failed' = 'conditions',
): Promise<string | null> {
  if (!rule.retry || !targets.length) return null;
  const retry = retrySchema.parse(rule.retry);
  const attempt = run.attempt + 1;
  if (attempt > retry.times) return `no retry left (${retry.times} done)`;
  const delayMs = (retry.afterSeconds + Math.random() * retry.jitterSeconds) * 1000;
  const at = new Date(now.getTime() + delayMs);
  const root = run.retryOf ?? run.id;
  const [made] = await deps.db
    .insert(ruleRuns)
    .values({
      ruleId: rule.id,
      kind: 'retry',
      // One retry a reason and attempt: targets skipped for conditions and targets that failed in the
      // operation are retried separately.
      fireKey: `retry:${String(root)}:${String(attempt)}:${why}`,
      dueAt: at,
      firedAt: at,
      attempt,
      retryOf: root,
      status: 'firing',
      targets: targets.map((t) => ({ id: t.id, label: t.label })),
    })
    .onConflictDoNothing()
    .returning({ id: ruleRuns.id });
  if (!made) return null;
  await deps.rules
    ?.add('run', { runId: made.id }, { jobId: runJobId(made.id), delay: Math.round(delayMs) })
    .catch((err: unknown) => deps.log('rule.retry.enqueue.deferred', { runId: made.id, error: errorText(err) }));
  return `retry ${String(attempt)} of ${String(retry.times)} at ${at.toISOString()} (run #${String(made.id)})`;
}

/**
 * After a rule's operation ended failed or partly failed: its failed targets (not those refused) fired
 * again on their own, when the rule retries and has retries left. Idempotent (a retry's key is its
 * attempt); the run's reason says when.
 */
export async function retryFailedTargets(deps: FireDeps, operationId: number, now = new Date()): Promise<string | null> {
  const [row] = await deps.db
    .select({ run: ruleRuns, rule: rules, status: operations.status })
    .from(ruleRuns)
    .innerJoin(rules, eq(rules.id, ruleRuns.ruleId))
    .innerJoin(operations, eq(operations.id, ruleRuns.operationId))
    .where(eq(ruleRuns.operationId, operationId));
  if (!row?.rule.retry || (row.status !== 'failed' && row.status !== 'partial')) return null;
  const failed = await deps.db.execute<{ id: number; label: string }>(sql`
    SELECT COALESCE(instance_id, herd_id) AS id, label FROM operation_targets
    WHERE operation_id = ${operationId} AND status IN ('failed', 'interrupted') AND refusal IS NULL AND COALESCE(instance_id, herd_id) IS NOT NULL
    ORDER BY id`);
  const note = await scheduleRetry(deps, row.rule, row.run, failed.rows, now, 'failed');
  if (note)
    await deps.db
      .update(ruleRuns)
      .set({ reason: sql`coalesce(${ruleRuns.reason}, '') || ${`; failed targets: ${note}`}` })
      .where(eq(ruleRuns.id, row.run.id));
  return note;
}

async function decideRun(deps: FireDeps, rule: RuleRow, run: RunRow, now: Date): Promise<{ status: string; operationId?: number }> {
  const { db } = deps;
  const runId = run.id;
  const requester = `rule: ${rule.name}`;
  const action = getAction(rule.action);
  if (!action) {
    await settle(db, runId, 'error', `the action ${rule.action} is not one this pgherd knows`);
    return { status: 'error' };
  }
  const blackouts = await activeBlackouts(db, now);
  const global = blackouts.find((b) => b.environment_id === null && b.herd_id === null);
  if (global) {
    await settle(
      db,
      runId,
      'skipped',
      `inside the blackout ${JSON.stringify(global.name)} (until ${new Date(global.ends_at).toISOString()})`,
    );
    return { status: 'skipped' };
  }
  // One run at a time: an operation of this rule not finished yet (a rolling one over the night, say).
  const [going] = await db
    .select({ id: operations.id })
    .from(operations)
    .where(and(eq(operations.ruleId, rule.id), isNull(operations.finishedAt), inArray(operations.status, ['queued', 'running'])))
    .limit(1);
  if (going) {
    await settle(db, runId, 'skipped', `overlap: its earlier run (operation #${going.id}) is still going`);
    return { status: 'skipped' };
  }
  const access = rule.ownerId === null ? noAccess(rule.ownerName) : await loadAccess(db, rule.ownerId);
  const refused = async (why: string) => {
    await settle(db, runId, 'refused', `refused: ${why}`);
    await writeAudit(db, {
      user: { id: rule.ownerId, username: requester },
      action: 'rule.refused',
      objectType: 'rules',
      objectId: String(rule.id),
      objectLabel: rule.name,
      changes: { run: [null, runId], reason: [null, why], owner: [null, rule.ownerName] },
    });
    return { status: 'refused' };
  };
  if (rule.ownerId === null)
    return refused(`its owner ${rule.ownerName} is no longer a pgherd user: a user must save the rule again to own it`);
  let ids: number[];
  try {
    // A retry runs again on the targets it was made for; any other run, on what the scope names now.
    ids = run.kind === 'retry' ? run.targets.map((x) => x.id) : await resolveScope(db, access, action, rule.scope as RuleScope);
  } catch (err) {
    if (err instanceof RuleError) {
      await settle(db, runId, 'error', err.message);
      return { status: 'error' };
    }
    throw err;
  }
  if (!ids.length) {
    await settle(db, runId, 'nothing', 'nothing to run: the scope names no target now (as its owner sees the inventory)');
    return { status: 'nothing' };
  }
  const facts = await targetFacts(db, isHerdAction(action), ids);
  const targets: RunTarget[] = [];
  const runnable: number[] = [];
  for (const id of ids) {
    const f = facts.get(id);
    if (!f) continue; // gone since the scope was read: the plan would call it missing
    const out = blackouts.find((b) => b.herd_id === f.herd_id || b.environment_id === f.environment_id);
    const skipped = out
      ? `inside the blackout ${JSON.stringify(out.name)} (until ${new Date(out.ends_at).toISOString()})`
      : f.automation === 'maintenance'
        ? `herd ${f.herd} is in maintenance`
        : undefined;
    targets.push({ id, label: f.label, ...(skipped ? { skipped } : {}) });
    if (!skipped) runnable.push(id);
  }
  // The conditions, measured now on each target still in.
  const conditions = rule.conditions.map((c) => conditionSchema.parse(c));
  const unmet: RunTarget[] = [];
  if (conditions.length && runnable.length) {
    const values = await measure(db, isHerdAction(action), runnable, conditions);
    for (const t of targets) {
      if (t.skipped) continue;
      const v = values.get(t.id) ?? {};
      t.values = v;
      const verdict = judge(conditions, rule.logic, v);
      if (!verdict.pass) {
        t.skipped = `conditions not met: ${verdict.failed.join('; ')}`;
        unmet.push(t);
      }
    }
    runnable.splice(0, runnable.length, ...targets.filter((t) => !t.skipped).map((t) => t.id));
  }
  const retryNote = await scheduleRetry(deps, rule, run, unmet, now);
  const retried = retryNote ? `; ${retryNote}` : '';
  const skippedCount = targets.length - runnable.length;
  if (!runnable.length) {
    const why =
      unmet.length === skippedCount && unmet.length ? 'no target met the conditions' : `every target was skipped (${String(skippedCount)})`;
    await settle(db, runId, 'nothing', `nothing to run: ${why}${retried}`, { targets });
    return { status: 'nothing' };
  }
  const waves = rule.waves ? wavesSchema.parse(rule.waves) : null;
  const actor = { id: rule.ownerId, username: requester, access };
  for (let attempt = 1; ; attempt++) {
    try {
      const plan = await planOperation(db, access, action, runnable, rule.params, waves);
      const made = await submitOperation(
        db,
        deps.queue,
        action,
        {
          ...(isHerdAction(action) ? { herdIds: runnable } : { instanceIds: runnable }),
          params: rule.params,
          digest: plan.digest,
          confirmation: plan.typeToConfirm ?? '',
          idempotencyKey: `rule-run-${runId}`,
          waves,
          ruleId: rule.id,
        },
        actor,
        deps.log,
      );
      const refusedByPlan = plan.targets.filter((t) => t.refused).length;
      const parts = [`${runnable.length - refusedByPlan} target${runnable.length - refusedByPlan === 1 ? '' : 's'} run`];
      if (refusedByPlan) parts.push(`${refusedByPlan} refused by the plan`);
      if (skippedCount) parts.push(`${skippedCount} skipped`);
      await settle(db, runId, 'started', `operation #${String(made.id)}: ${parts.join(', ')}${retried}`, { operationId: made.id, targets });
      return { status: 'started', operationId: made.id };
    } catch (err) {
      if (err instanceof AccessDenied) return refused(err.message);
      // Another fire of this rule started its operation since the overlap check above.
      if (pgError(err).constraint === 'operations_rule_open_key') {
        await settle(db, runId, 'skipped', 'overlap: another run of this rule started its operation at the same moment', { targets });
        return { status: 'skipped' };
      }
      // The inventory moved between the plan and the submit: plan again (twice, then say so).
      if (err instanceof StalePlanError && attempt < 3) continue;
      if (err instanceof NothingToRunError) {
        await settle(db, runId, 'nothing', 'nothing to run: the plan refused every target', { targets });
        return { status: 'nothing' };
      }
      if (err instanceof SubmitError) {
        await settle(db, runId, 'error', err.message, { targets });
        return { status: 'error' };
      }
      throw err;
    }
  }
}
