// Rules in pgherd's database: saved only once they make sense against the inventory and the owner's
// roles; every change audited and announced to the workers, which rebuild their job schedulers from
// this table (the truth: Redis losing its data loses no schedule).
import { randomBytes } from 'node:crypto';
import { and, desc, eq, or, sql } from 'drizzle-orm';
import type { Db, Queries } from '@/db/client';
import { pgError } from '@/db/pg-error';
import { ruleRuns, rules } from '@/db/schema';
import { writeAudit, diffChanges } from '@/lib/engine/write-audit';
import { canSomewhere, type Access, type Actor } from '@/lib/engine/access';
import { getAdmin } from '@/lib/features/admin/registry';
import { parseListParams } from '@/lib/features/admin/list-params';
import { matchingIds } from '@/lib/features/admin/list-query';
import { isHerdAction, parseParams, scheduleProblems, type AnyAction } from '@/lib/engine/define-action';
import { planOperation } from '@/lib/engine/plan';
import { getAction } from '@/lib/actions/registry';
import { SubmitError } from '@/lib/engine/submit-errors';
import { fireGroupsOf, intervalProblem, nextFires, scheduleSchema, type Schedule } from './cron';
import { filterPairs, scopeOf, type ReverseScope, type RuleBody, type RuleScope } from './rule-body';
import { REVERSE_ACTION, reverseName } from './reverse';
import { ruleApproval } from './rule-shape';

/** The workers listen here: a rule changed (its id), so the job schedulers are reconciled at once. */
export const RULES_CHANNEL = 'pgherd_rules';

/** At most this many targets a fire (a filter matching more is refused, saying so). */
export const MAX_RULE_TARGETS = 10_000;

export type RuleRow = typeof rules.$inferSelect;

/** Why a rule was not taken: the API answers { error, details } with its status. */
export class RuleError extends SubmitError {
  constructor(status: 400 | 403 | 404 | 409, message: string, details: { path: string; message: string }[] = []) {
    // The API's details are a list of { path, message }, as for any invalid body.
    super(status === 404 ? 'not-found' : 'rule', status, message, details.length ? details : null);
    this.name = 'RuleError';
  }
}

const invalid = (path: string, message: string) => new RuleError(400, 'invalid rule', [{ path, message }]);

/** The model a scope's filter is read with: herds for herd actions, instances for the others. */
const modelFor = (action: AnyAction) => (isHerdAction(action) ? 'herds' : 'instances');

function modelDef(action: AnyAction) {
  const def = getAdmin(modelFor(action));
  if (!def) throw new Error(`no admin declaration for ${modelFor(action)}`);
  return def;
}

/** The one row an INSERT ... RETURNING gave. */
function one<T>(rows: T[]): T {
  const [row] = rows;
  if (!row) throw new Error('the database returned no row');
  return row;
}

/** A filter as the changelist keeps it, or the reason it is not one (unknown key, a value the list would drop). */
export function normalFilter(action: AnyAction, raw: string, access: Access): string {
  const got = filterPairs(raw);
  if ('problem' in got) throw invalid('filter', got.problem);
  const def = modelDef(action);
  const keys = ['q', ...def.listFilter.map((f) => f.key)];
  for (const [k] of got.pairs)
    if (!keys.includes(k)) throw invalid('filter', `${k} is not a filter of the ${modelFor(action)} list: one of ${keys.join(', ')}`);
  const p = parseListParams(def, Object.fromEntries(got.pairs), access);
  for (const [k, v] of got.pairs) {
    const kept = k === 'q' ? p.q : p.filters[k];
    if (kept !== v.trim() || (k !== 'q' && kept !== v))
      throw invalid('filter', `${k}=${v} is not a value the ${modelFor(action)} list filters by`);
  }
  return new URLSearchParams(got.pairs).toString();
}

/** The ids a scope names now, as `access` sees them (a filter: what its changelist lists for them). */
export async function resolveScope(db: Db, access: Access, action: AnyAction, scope: Exclude<RuleScope, ReverseScope>): Promise<number[]> {
  if ('instanceIds' in scope) return scope.instanceIds;
  if ('herdIds' in scope) return scope.herdIds;
  const def = modelDef(action);
  const got = filterPairs(scope.filter);
  if ('problem' in got) throw new Error(`a stored filter is not one: ${got.problem}`);
  try {
    return await matchingIds(db, def, parseListParams(def, Object.fromEntries(got.pairs), access), MAX_RULE_TARGETS);
  } catch (err) {
    if (/^More than/.test((err as Error).message))
      throw new RuleError(409, `the filter matches more than ${MAX_RULE_TARGETS} ${modelFor(action)}: narrow it`);
    throw err;
  }
}

export interface CheckedRule {
  action: AnyAction;
  scope: RuleScope;
  /** The targets it would run on now. */
  ids: number[];
  params: Record<string, unknown>;
  /** The environments of the targets its plan runs on now: a fire runs on these only. */
  confirmedEnvironments: number[];
}

/**
 * Whether `body` can be saved by `actor`: the action exists and runs on what the scope names, the
 * parameters and waves are the action's, and the actor may run it on every target the scope names now
 * (AccessDenied otherwise: the caller answers it). A filter matching nothing yet is fine.
 */
export async function checkRule(db: Db, actor: Actor, body: RuleBody): Promise<CheckedRule> {
  const action = getAction(body.action);
  if (!action) throw invalid('action', `unknown action ${body.action}`);
  // Before anything is planned: an action a person decides at the moment, or a person's word, is
  // refused whatever the scope.
  const unschedulable = scheduleProblems(action, parseParams(action, body.params ?? {}));
  if (unschedulable.length) throw new RuleError(400, 'invalid rule', unschedulable);
  if (isHerdAction(action) && body.instanceIds)
    throw invalid('instanceIds', `${action.name} runs on herds: give herdIds or a filter of herds`);
  if (!isHerdAction(action) && body.herdIds)
    throw invalid('herdIds', `${action.name} runs on instances: give instanceIds or a filter of instances`);
  const tooOften = intervalProblem(body.schedule);
  if (tooOften) throw invalid('schedule.cron', tooOften);
  // A one-time rule whose time has passed would never fire: said now, not found out at the time (a rule
  // turned off may keep it, as a record).
  const passed = (s: Schedule) => ('at' in s && body.enabled && Date.parse(s.at) <= Date.now() ? s.at : null);
  const gone = passed(body.schedule);
  if (gone) throw invalid('schedule.at', `${gone} has passed: a one-time rule fires at a time to come`);
  const goneBack = body.reverse && passed(body.reverse.schedule);
  if (goneBack) throw invalid('reverse.schedule.at', `${goneBack} has passed: a one-time reverse fires at a time to come`);
  if (body.reverse) {
    const back = REVERSE_ACTION[action.name];
    if (!back)
      throw invalid(
        'reverse',
        `${action.label} has nothing to put back: a reverse is for ${Object.keys(REVERSE_ACTION).join(', ')} (the type, or the state, each target had)`,
      );
    const often = intervalProblem(body.reverse.schedule);
    if (often) throw invalid('reverse.schedule.cron', often);
  }
  let scope = scopeOf(body);
  if ('filter' in scope) scope = { filter: normalFilter(action, scope.filter, actor.access) };
  if (!canSomewhere(actor.access, action.permission))
    throw new RuleError(400, `${action.label} needs the ${action.permission} role: you hold it nowhere, so no rule of yours could run it`);
  const ids = await resolveScope(db, actor.access, action, scope);
  // Planned as a fire would plan it: parameters, waves and the actor's roles on every target now.
  const plan = ids.length ? await planOperation(db, actor.access, action, ids, body.params ?? {}, body.waves ?? null) : null;
  if (plan?.missing.length)
    throw new RuleError(404, `unknown ${plan.on === 'herd' ? 'herds' : 'instances'}: ${plan.missing.join(', ')}`, [
      { path: plan.on === 'herd' ? 'herdIds' : 'instanceIds', message: `unknown: ${plan.missing.join(', ')}` },
    ]);
  const typed = plan?.typeToConfirm ?? null;
  if (typed !== null && body.confirmation?.trim() !== typed)
    throw new RuleError(400, 'confirmation needed', [
      {
        path: 'confirmation',
        message: `its plan runs on ${confirmWhat(plan?.targets ?? [])}: type ${JSON.stringify(typed)} to confirm, as for the same operation on the console`,
      },
    ]);
  const confirmedEnvironments = [...new Set((plan?.targets ?? []).filter((t) => !t.refused).map((t) => t.environmentId))].sort(
    (a, b) => a - b,
  );
  return { action, scope, ids, params: plan?.params ?? body.params ?? {}, confirmedEnvironments };
}

/** What a confirmation covers, in words: the runnable targets' number and environments. */
function confirmWhat(targets: { refused?: string; environment: string }[]): string {
  const runnable = targets.filter((t) => !t.refused);
  const envs = [...new Set(runnable.map((t) => t.environment))];
  return `${String(runnable.length)} target${runnable.length === 1 ? '' : 's'} in ${envs.join(', ')}`;
}

const announce = (db: Queries, id: number) => db.execute(sql`SELECT pg_notify(${RULES_CHANNEL}, ${String(id)})`);

/** The rule as stored: what the API shows and a change compares. */
function stored(body: RuleBody, checked: CheckedRule) {
  return {
    name: body.name,
    description: body.description,
    action: checked.action.name,
    params: checked.params,
    scope: checked.scope as Record<string, unknown>,
    schedule: body.schedule as Record<string, unknown>,
    conditions: body.conditions as Record<string, unknown>[],
    logic: body.logic,
    retry: body.retry as Record<string, unknown> | null,
    reverse: body.reverse as Record<string, unknown> | null,
    waves: (body.waves ?? null) as Record<string, unknown> | null,
    graceSeconds: body.graceSeconds,
    insideWindow: body.insideWindow,
    enabled: body.enabled,
    confirmedEnvironments: checked.confirmedEnvironments,
  };
}

/** A reverse's companion rule as stored: its rule's owner, waves, grace and enabled; the reverse's schedule and action. */
function companionOf(body: RuleBody, ruleId: number, confirmedEnvironments: number[]) {
  if (!body.reverse) throw new Error('no reverse');
  return {
    name: reverseName(body.name),
    description: `Puts back what rule ${JSON.stringify(body.name)} changed: each target as it was before the rule's runs.`,
    action: REVERSE_ACTION[body.action] ?? body.action,
    params: {},
    scope: { reverseOf: ruleId } satisfies ReverseScope,
    schedule: body.reverse.schedule as Record<string, unknown>,
    conditions: [],
    logic: 'all' as const,
    retry: null,
    reverse: null,
    waves: (body.waves ?? null) as Record<string, unknown> | null,
    graceSeconds: body.graceSeconds,
    insideWindow: body.insideWindow,
    enabled: body.enabled,
    fireGroups: fireGroupsOf(body.reverse.schedule),
    reverseOf: ruleId,
    // It puts back what its rule changed: where its rule was confirmed.
    confirmedEnvironments,
  };
}

/**
 * Makes, changes or deletes a rule's companion as its body's reverse says, in the rule's transaction:
 * audited and announced as any rule (the workers reconcile its schedulers).
 */
async function syncCompanion(tx: Queries, actor: Actor, rule: RuleRow, body: RuleBody) {
  const [old] = await tx.select().from(rules).where(eq(rules.reverseOf, rule.id));
  const audit = (action: string, id: number, name: string, changes: Record<string, [unknown, unknown]>) =>
    writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action,
      objectType: 'rules',
      objectId: String(id),
      objectLabel: name,
      changes,
    });
  if (!body.reverse) {
    if (!old) return;
    await tx.delete(rules).where(eq(rules.id, old.id));
    await audit('rule.deleted', old.id, old.name, diffChanges({ ...pick(old), owner: old.ownerName }, {}));
    await announce(tx, old.id);
    return;
  }
  const values = companionOf(body, rule.id, rule.confirmedEnvironments);
  const owner = { ownerId: actor.id, ownerName: actor.username };
  if (!old) {
    const row = one(
      await tx
        .insert(rules)
        .values({ ...values, ...owner })
        .returning(),
    );
    await audit('rule.created', row.id, row.name, diffChanges(null, { ...values, owner: actor.username }));
    await announce(tx, row.id);
    return;
  }
  const restart = JSON.stringify(old.schedule) !== JSON.stringify(values.schedule) || (!old.enabled && values.enabled);
  await tx
    .update(rules)
    .set({ ...values, ...owner, version: sql`${rules.version} + 1`, ...(restart ? { firesFrom: new Date() } : {}) })
    .where(eq(rules.id, old.id));
  await audit(
    'rule.changed',
    old.id,
    values.name,
    diffChanges({ ...pick(old), owner: old.ownerName }, { ...values, owner: actor.username }),
  );
  await announce(tx, old.id);
}

/** A companion is changed through its rule, never on its own. */
function refuseCompanion(rule: RuleRow, verb: string) {
  if (rule.reverseOf !== null)
    throw new RuleError(
      409,
      `${JSON.stringify(rule.name)} is the reverse of rule #${String(rule.reverseOf)}: ${verb} that rule's reverse instead`,
    );
}

const isNameTaken = (err: unknown) => pgError(err).constraint === 'rules_name_key';
const nameTaken = (body: RuleBody) =>
  new RuleError(
    409,
    body.reverse
      ? `a rule named ${JSON.stringify(body.name)} or ${JSON.stringify(reverseName(body.name))} (its reverse's name) exists`
      : `a rule named ${JSON.stringify(body.name)} exists`,
    [{ path: 'name', message: 'taken' }],
  );

export async function createRule(db: Db, actor: Actor, body: RuleBody): Promise<RuleRow> {
  const checked = await checkRule(db, actor, body);
  const values = stored(body, checked);
  try {
    return await db.transaction(async (tx) => {
      const row = one(
        await tx
          .insert(rules)
          .values({ ...values, fireGroups: fireGroupsOf(body.schedule), ownerId: actor.id, ownerName: actor.username })
          .returning(),
      );
      await writeAudit(tx, {
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: 'rule.created',
        objectType: 'rules',
        objectId: String(row.id),
        objectLabel: row.name,
        changes: diffChanges(null, { ...values, owner: actor.username }),
      });
      await announce(tx, row.id);
      if (body.reverse) await syncCompanion(tx, actor, row, body);
      return row;
    });
  } catch (err) {
    if (isNameTaken(err)) throw nameTaken(body);
    throw err;
  }
}

/** May `actor` change or delete (or run now) this rule: its owner, or an admin everywhere (superusers too). */
export function mayManage(actor: Actor, rule: Pick<RuleRow, 'ownerId'>): boolean {
  return (actor.id !== null && rule.ownerId === actor.id) || actor.access.superuser || actor.access.global === 'admin';
}

/**
 * May `access` read this rule (its scope, schedule and runs): its owner, and whoever holds a global
 * role. A rule names targets and a filter across environments, which a role in one environment does
 * not cover; those users see their own rules only.
 */
export const mayRead = (access: Access, rule: Pick<RuleRow, 'ownerId'>): boolean =>
  access.superuser || access.global !== null || (access.userId !== null && rule.ownerId === access.userId);

export async function getRule(db: Queries, id: number): Promise<RuleRow> {
  const [row] = await db.select().from(rules).where(eq(rules.id, id));
  if (!row) throw new RuleError(404, `no rule #${id}`);
  return row;
}

/** A rule the caller may read; one they may not is a 404, as one that does not exist (its name says nothing). */
export async function readableRule(db: Queries, access: Access, id: number): Promise<RuleRow> {
  const rule = await getRule(db, id);
  if (!mayRead(access, rule)) throw new RuleError(404, `no rule #${id}`);
  return rule;
}

function refuseUnlessManager(actor: Actor, rule: RuleRow, verb: string) {
  if (!mayRead(actor.access, rule)) throw new RuleError(404, `no rule #${rule.id}`);
  if (!mayManage(actor, rule))
    throw new RuleError(403, `only its owner (${rule.ownerName}) or a global admin may ${verb} rule ${JSON.stringify(rule.name)}`);
}

/**
 * Saves a changed rule. Whoever saves it becomes its owner (their roles are what its fires are checked
 * against from now on: nobody makes a rule run what only its former owner could). A new schedule, or
 * enabling it, starts its fires from now: nothing before is caught up.
 */
export async function updateRule(db: Db, actor: Actor, id: number, body: RuleBody): Promise<RuleRow> {
  const before = await getRule(db, id);
  refuseUnlessManager(actor, before, 'change');
  refuseCompanion(before, 'change');
  const checked = await checkRule(db, actor, body);
  const values = stored(body, checked);
  const restart = JSON.stringify(before.schedule) !== JSON.stringify(values.schedule) || (!before.enabled && values.enabled);
  try {
    return await db.transaction(async (tx) => {
      const [row] = await tx
        .update(rules)
        .set({
          ...values,
          fireGroups: fireGroupsOf(body.schedule),
          ownerId: actor.id,
          ownerName: actor.username,
          version: sql`${rules.version} + 1`,
          ...(restart ? { firesFrom: new Date() } : {}),
        })
        .where(eq(rules.id, id))
        .returning();
      if (!row) throw new RuleError(404, `no rule #${id}`);
      await writeAudit(tx, {
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: 'rule.changed',
        objectType: 'rules',
        objectId: String(id),
        objectLabel: row.name,
        changes: diffChanges({ ...pick(before), owner: before.ownerName }, { ...values, owner: actor.username }),
      });
      await announce(tx, id);
      await syncCompanion(tx, actor, row, body);
      return row;
    });
  } catch (err) {
    if (isNameTaken(err)) throw nameTaken(body);
    throw err;
  }
}

const pick = (r: RuleRow) => ({
  name: r.name,
  description: r.description,
  action: r.action,
  params: r.params,
  scope: r.scope,
  schedule: r.schedule,
  conditions: r.conditions,
  logic: r.logic,
  retry: r.retry,
  reverse: r.reverse,
  waves: r.waves,
  graceSeconds: r.graceSeconds,
  insideWindow: r.insideWindow,
  enabled: r.enabled,
  confirmedEnvironments: r.confirmedEnvironments,
});

export async function deleteRule(db: Db, actor: Actor, id: number): Promise<void> {
  const before = await getRule(db, id);
  refuseUnlessManager(actor, before, 'delete');
  refuseCompanion(before, 'delete');
  await db.transaction(async (tx) => {
    // Its reverse goes with it (audited as itself).
    await syncCompanion(tx, actor, before, { reverse: null } as RuleBody);
    await tx.delete(rules).where(eq(rules.id, id));
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'rule.deleted',
      objectType: 'rules',
      objectId: String(id),
      objectLabel: before.name,
      changes: diffChanges({ ...pick(before), owner: before.ownerName }, {}),
    });
    await announce(tx, id);
  });
}

/**
 * Run now: a run waiting for a worker (its job is added by the caller; a worker's reconcile adds it
 * again if Redis lost it). Fired like a scheduled one: checked against the owner's roles.
 */
export async function requestRun(db: Db, actor: Actor, id: number): Promise<{ runId: number }> {
  const rule = await getRule(db, id);
  refuseUnlessManager(actor, rule, 'run');
  return db.transaction(async (tx) => {
    const run = one(
      await tx
        .insert(ruleRuns)
        .values({
          ruleId: id,
          kind: 'manual',
          fireKey: `manual:${randomBytes(8).toString('hex')}`,
          dueAt: new Date(),
          status: 'firing',
          requestedBy: actor.username,
          // Decided only if the rule is as it was asked of: saved or disabled meanwhile, it is refused.
          ruleVersion: rule.version,
        })
        .returning({ id: ruleRuns.id }),
    );
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'rule.run_requested',
      objectType: 'rules',
      objectId: String(id),
      objectLabel: rule.name,
      changes: { run: [null, run.id] },
    });
    // The workers hear of it at once, whether or not the caller gets its job into Redis.
    await tx.execute(sql`SELECT pg_notify(${RULES_CHANNEL}, ${`run:${String(run.id)}`})`);
    return { runId: run.id };
  });
}

/**
 * A stored schedule, read back through the schema it was saved with; null when it no longer reads (a
 * time zone this runtime's ICU dropped, a row written by hand): such a rule is shown with the problem
 * and fires never, and the other rules go on.
 */
export function scheduleOf(r: Pick<RuleRow, 'schedule'>): Schedule | null {
  const parsed = scheduleSchema.safeParse(r.schedule);
  return parsed.success ? parsed.data : null;
}

/** Why a stored rule's schedule does not read, for the pages and the API. */
export const scheduleProblem = (r: Pick<RuleRow, 'schedule'>): string | null => {
  const parsed = scheduleSchema.safeParse(r.schedule);
  return parsed.success ? null : `its stored schedule does not read: ${parsed.error.issues.map((i) => i.message).join('; ')}`;
};

/**
 * Enables or disables one rule, and only that: it is not planned again and keeps its owner (each fire
 * is checked against the owner's roles anyway), so a rule whose targets are gone can still be turned
 * off, and turning one off never makes anyone its owner. Audited and announced; enabling starts its
 * fires from now (nothing from while it was off is caught up). False when it already was so.
 */
export async function setRuleEnabled(db: Db, actor: Actor, id: number, enabled: boolean): Promise<boolean> {
  const before = await getRule(db, id);
  refuseUnlessManager(actor, before, enabled ? 'enable' : 'disable');
  // A reverse goes on and off with its rule, as a PUT of the rule turns both.
  refuseCompanion(before, enabled ? 'enable' : 'disable');
  if (before.enabled === enabled) return false;
  return db.transaction(async (tx) => {
    const flipped = await tx
      .update(rules)
      .set({ enabled, version: sql`${rules.version} + 1`, ...(enabled ? { firesFrom: new Date() } : {}) })
      .where(and(or(eq(rules.id, id), eq(rules.reverseOf, id)), eq(rules.enabled, !enabled)))
      .returning({ id: rules.id, name: rules.name });
    if (!flipped.some((r) => r.id === id)) return false;
    for (const r of flipped) {
      await writeAudit(tx, {
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: enabled ? 'rule.enabled' : 'rule.disabled',
        objectType: 'rules',
        objectId: String(r.id),
        objectLabel: r.name,
        changes: { enabled: [!enabled, enabled] },
      });
      await announce(tx, r.id);
    }
    return true;
  });
}

/** A stored rule's next fires (none when its schedule does not read). */
export function nextFiresOf(r: Pick<RuleRow, 'schedule'>, from: Date, n: number): Date[] {
  const s = scheduleOf(r);
  return s ? nextFires(s, from, n) : [];
}

/** A stored rule as the body that would save it again (POST and PUT take it; the API shows it). */
export const bodyOf = (r: RuleRow) => ({
  name: r.name,
  description: r.description,
  action: r.action,
  params: r.params,
  ...r.scope,
  schedule: r.schedule,
  conditions: r.conditions,
  logic: r.logic,
  retry: r.retry,
  ...(r.reverseOf === null ? { reverse: r.reverse } : {}),
  waves: r.waves,
  graceSeconds: r.graceSeconds,
  insideWindow: r.insideWindow,
  enabled: r.enabled,
});

/** The rule as the API shows it: the stored fields, its next fires, and its last run. */
export async function ruleView(db: Queries, r: RuleRow, now = new Date()) {
  const [last] = await db
    .select({ id: ruleRuns.id, at: ruleRuns.firedAt, status: ruleRuns.status, reason: ruleRuns.reason, operationId: ruleRuns.operationId })
    .from(ruleRuns)
    .where(eq(ruleRuns.ruleId, r.id))
    .orderBy(desc(ruleRuns.id))
    .limit(1);
  const [companion] = r.reverse ? await db.select({ id: rules.id, name: rules.name }).from(rules).where(eq(rules.reverseOf, r.id)) : [];
  return {
    id: r.id,
    owner: r.ownerName,
    ...bodyOf(r),
    /** The companion rule that puts back what this one changes; or, on a companion, the rule it reverses. */
    reverseRule: companion ?? null,
    nextFires: r.enabled ? nextFiresOf(r, now, 5).map((d) => d.toISOString()) : [],
    problem: scheduleProblem(r),
    lastRun: last ?? null,
    /** Where an approval policy covers it: whether it is approved as saved, by whom (null: none needed). */
    approval: await ruleApproval(db, r),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/** A rule's runs, newest first, with their operations' outcomes. */
export async function ruleRunsView(db: Queries, ruleId: number, limit = 50, before?: number) {
  const rows = await db.execute<{
    id: number;
    kind: string;
    due_at: Date;
    fired_at: Date;
    status: string;
    reason: string | null;
    operation_id: number | null;
    operation_status: string | null;
    targets: unknown;
    requested_by: string | null;
  }>(sql`
    SELECT r.id, r.kind, r.due_at, r.fired_at, r.status, r.reason, r.operation_id, o.status AS operation_status, r.targets, r.requested_by
    FROM rule_runs r LEFT JOIN operations o ON o.id = r.operation_id
    WHERE r.rule_id = ${ruleId} ${before ? sql`AND r.id < ${before}` : sql``}
    ORDER BY r.id DESC LIMIT ${limit}`);
  return rows.rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    dueAt: new Date(r.due_at).toISOString(),
    firedAt: new Date(r.fired_at).toISOString(),
    status: r.status,
    outcome: r.status === 'started' ? r.operation_status : r.status,
    reason: r.reason,
    operationId: r.operation_id,
    targets: r.targets,
    requestedBy: r.requested_by,
  }));
}
