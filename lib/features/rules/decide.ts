// Deciding a rule's runs: blackouts, an earlier run still going, the scope as the owner
// sees it now, herds in maintenance, the conditions, and the owner's roles; what is left becomes an
// ordinary operation, requested by "rule: NAME" on the owner's authority (the worker checks the owner's
// roles again at each target). Runs are decided together, whatever their number (one run now, or
// 10,000 rules due at 02:00): each fact is read once for all of them (blackouts, overlaps, owners, the
// targets' herds, the inventory a plan needs), and the operations, targets and audit entries are
// written in one transaction a chunk; only a filter's scope and the live conditions are per rule.
import { allPolicies, covering, ruleShape } from './rule-shape';
import { eq, inArray, sql } from 'drizzle-orm';
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { ruleRuns, rules } from '@/db/schema';
import { writeAudit, type AuditInput } from '@/lib/engine/write-audit';
import { AccessDenied, canSomewhere, loadAccess, noAccess, type Access } from '@/lib/engine/access';
import { isHerdAction, scheduleProblems, type AnyAction } from '@/lib/engine/define-action';
import { errorText } from '@/lib/engine/errors';
import { planFrom, readPlanSource, type Plan, type PlanSource } from '@/lib/engine/plan';
import { getAction } from '@/lib/actions/registry';
import { writeOperations } from '@/lib/engine/submit';
import { wavesSchema, type WaveSpec } from '@/lib/engine/waves';
import { conditionSchema, judge, measure, type Condition } from './conditions';
import { scheduleRetry, withHeartbeat, type FireDeps, type RunRow, type RunTarget } from './rule-runs';
import { MAX_RULE_TARGETS, resolveScope, RuleError, type RuleRow } from './rules';
import { forwardActionOf, reverseParams, reversible, toPutBack } from './reverse';
import { herdWindowAt, outsideWords, windowsOfHerds, type HerdWindow } from '@/lib/engine/windows';
import type { RuleScope } from './rule-body';
import { notifyRunsEnded } from './webhooks';

type Status = 'skipped' | 'refused' | 'nothing' | 'error' | 'started';
type Outcome = { status: Status; reason: string; operationId?: number; targets?: RunTarget[] };

/** How many runs are decided (and their operations written) together: the first ones' operations are queued early. */
const CHUNK = 500;

/** A run on its way: what it runs, as whom, on what; `done` once it has its outcome. */
interface Pending {
  rule: RuleRow;
  run: RunRow;
  action?: AnyAction;
  access?: Access;
  targets: RunTarget[];
  runnable: number[];
  retried: string;
  conditions?: Condition[];
  waves?: WaveSpec | null;
  /** The parameters this run plans with, when not the rule's own (a reverse's, read from what it puts back). */
  params?: Record<string, unknown>;
  plan?: Plan;
  done?: Outcome;
  audit?: AuditInput;
  /** Who approved the rule, where a policy asks for an approval (its operation names them). */
  approvedBy?: string;
}

/** Decides these runs (each one 'deciding'); every one ends in a recorded outcome, whatever happens. */
export async function decideMany(deps: FireDeps, runIds: number[], now = new Date()): Promise<void> {
  if (!runIds.length) return;
  await withHeartbeat(deps.db, runIds, async () => {
    for (let i = 0; i < runIds.length; i += CHUNK) {
      const chunk = runIds.slice(i, i + CHUNK);
      const rows = await deps.db
        .select({ run: ruleRuns, rule: rules })
        .from(ruleRuns)
        .innerJoin(rules, eq(rules.id, ruleRuns.ruleId))
        .where(inArray(ruleRuns.id, chunk));
      const pending: Pending[] = rows.map((r) => ({ ...r, targets: [], runnable: [], retried: '' }));
      try {
        await decideChunk(deps, pending, now);
      } catch (err) {
        // Something under all of them failed (the database went away): each run says so.
        for (const p of pending) p.done ??= { status: 'error', reason: `pgherd could not fire it: ${errorText(err)}` };
        deps.log('rule.fire.error', { runs: pending.length, error: errorText(err) });
      }
      await settleMany(deps, pending).catch((err: unknown) =>
        deps.log('rule.settle.error', { runs: pending.length, error: errorText(err) }),
      );
    }
  });
}

const open = (ps: Pending[]) => ps.filter((p) => !p.done);

async function decideChunk(deps: FireDeps, pending: Pending[], now: Date): Promise<void> {
  const { db } = deps;
  const blackouts = await activeBlackouts(db, now);
  const global = blackouts.find((b) => b.environment_id === null && b.herd_id === null);
  // One run at a time a rule: an operation of it not finished yet (a rolling one over the night, say).
  // A rule and its reverse are one: neither starts while the other's operation runs.
  const companions = await db.execute<{ id: number; reverse_of: number }>(
    sql`SELECT id, reverse_of FROM rules WHERE reverse_of = ANY(${sql.param(pending.map((p) => p.rule.id))}::int[])`,
  );
  const partnerOf = new Map<number, number>(companions.rows.map((r) => [r.reverse_of, r.id]));
  for (const p of pending) if (p.rule.reverseOf !== null) partnerOf.set(p.rule.id, p.rule.reverseOf);
  const going = await db.execute<{ rule_id: number; id: number }>(sql`
    SELECT DISTINCT ON (rule_id) rule_id, id FROM operations
    WHERE rule_id = ANY(${sql.param([...new Set([...pending.map((p) => p.rule.id), ...partnerOf.values()])])}::int[])
      AND finished_at IS NULL AND status IN ('queued', 'running')`);
  const ownOf = new Map(going.rows.map((r) => [r.rule_id, r.id]));
  const goingOf = new Map(pending.map((p) => [p.rule.id, ownOf.get(p.rule.id) ?? ownOf.get(partnerOf.get(p.rule.id) ?? -1)]));
  const owners = new Map<number, Promise<Access>>();
  for (const p of pending) {
    const action = getAction(p.rule.action);
    const earlier = goingOf.get(p.rule.id);
    // A stored row is not trusted to have been checked when saved (written by hand, or before the check).
    const unschedulable = action ? scheduleProblems(action, p.rule.params) : [];
    if (p.run.ruleVersion !== null && p.run.ruleVersion !== p.rule.version)
      p.done = {
        status: 'refused',
        reason: `refused: stale: the rule was saved or disabled since this ${p.run.kind === 'retry' ? 'retry' : 'run'} was asked for (version ${String(p.run.ruleVersion)}, now ${String(p.rule.version)}); nothing was run`,
      };
    else if (!action) p.done = { status: 'error', reason: `the action ${p.rule.action} is not one this pgherd knows` };
    else if (unschedulable.length) refuse(p, unschedulable.map((u) => u.message).join('; '));
    else if (global)
      p.done = {
        status: 'skipped',
        reason: `inside the blackout ${JSON.stringify(global.name)} (until ${new Date(global.ends_at).toISOString()})`,
      };
    else if (earlier !== undefined)
      p.done = {
        status: 'skipped',
        reason: ownOf.has(p.rule.id)
          ? `overlap: its earlier run (operation #${earlier}) is still going`
          : `overlap: operation #${earlier} of ${p.rule.reverseOf !== null ? 'the rule it reverses' : 'its reverse'} is still going`,
      };
    else if (p.rule.ownerId === null)
      refuse(p, `its owner ${p.rule.ownerName} is no longer a pgherd user: a user must save the rule again to own it`);
    else {
      p.action = action;
      const owner = p.rule.ownerId;
      if (!owners.has(owner)) owners.set(owner, loadAccess(db, owner));
    }
  }
  for (const p of open(pending)) p.access = p.rule.ownerId === null ? noAccess(p.rule.ownerName) : await owners.get(p.rule.ownerId);
  // The scope: a retry's own targets; fixed ids; a filter, as the owner sees the inventory now.
  const ids = new Map<Pending, number[]>();
  await eachRun(open(pending), async (p) => {
    const action = need(p.action);
    // An owner who is no longer active (disabled, gone from the directory) is refused as such.
    const inactive = need(p.access).inactive;
    if (inactive) {
      refuse(p, `its owner ${p.rule.ownerName} ${inactive}`);
      return;
    }
    // An owner who holds the action's role nowhere is refused, not shown an empty filter.
    if (!canSomewhere(need(p.access), action.permission)) {
      refuse(p, `${action.label} needs the ${action.permission} role: its owner ${p.rule.ownerName} holds it nowhere now`);
      return;
    }
    p.conditions = p.rule.conditions.map((c) => conditionSchema.parse(c));
    p.waves = p.rule.waves ? wavesSchema.parse(p.rule.waves) : null;
    const scope = p.rule.scope as RuleScope;
    if ('reverseOf' in scope) {
      const list = await reverseScope(db, p, scope.reverseOf);
      if (list.length) ids.set(p, list);
      return;
    }
    const list = p.run.kind === 'retry' ? p.run.targets.map((x) => x.id) : await resolveScope(db, need(p.access), action, scope);
    if (list.length) ids.set(p, list);
    else p.done = { status: 'nothing', reason: 'nothing to run: the scope names no target now (as its owner sees the inventory)' };
  });
  // What planning needs of the inventory, read once for every run (a run's targets are in it, or gone).
  const sources = await readSources(db, open(pending), (p) => ids.get(p) ?? []);
  const windows = await windowsFor(db, open(pending), ids, sources, now);
  leaveOut(open(pending), ids, sources, blackouts, windows);
  const measured = open(pending).some((p) => p.rule.conditions.length);
  await checkConditions(deps, open(pending), now);
  // The conditions took a while to measure (live, on each target): plan on the inventory as it is now.
  await plan(db, open(pending), measured ? await readSources(db, open(pending), (p) => p.runnable) : sources);
  await needsApproval(db, open(pending));
  await write(deps, open(pending));
}

type Sources = { herd?: PlanSource; instance?: PlanSource };

/**
 * A reverse's targets: what its rule changed and is not back yet, with the parameters that put each back
 * (a resize: each one's own type). Not while the rule's own operation runs: it would race it.
 */
async function reverseScope(db: Db, p: Pending, ruleId: number): Promise<number[]> {
  const action = need(p.action).name;
  const forward = forwardActionOf(action);
  if (!forward) throw new RuleError(400, `${action} puts nothing back`);
  const { busy, targets } = await toPutBack(db, { id: ruleId, action: forward }, p.rule);
  if (busy !== null) {
    p.done = {
      status: 'skipped',
      reason: `overlap: its rule's operation #${String(busy)} is still going; what it changes is put back at the next fire`,
    };
    return [];
  }
  const back = reversible(action, targets);
  if (!back.size) {
    p.done = { status: 'nothing', reason: 'nothing to put back: its rule changed nothing that is not back already' };
    return [];
  }
  p.params = reverseParams(action, back);
  return [...back.keys()];
}

/** The plan sources of the runs' targets: one read for the herd actions', one for the instance actions'. */
async function readSources(db: Db, pending: Pending[], idsOf: (p: Pending) => number[]): Promise<Sources> {
  const out: Sources = {};
  for (const onHerds of [false, true]) {
    const ps = pending.filter((p) => isHerdAction(need(p.action)) === onHerds);
    if (!ps.length) continue;
    out[onHerds ? 'herd' : 'instance'] = await readPlanSource(db, need(ps[0]?.action), [...new Set(ps.flatMap(idsOf))]);
  }
  return out;
}

const sourceOf = (sources: Sources, p: Pending) => need(isHerdAction(need(p.action)) ? sources.herd : sources.instance);

/** What the maintenance windows say now of each herd a run marked insideWindow would act on (read once for all). */
async function windowsFor(db: Db, pending: Pending[], ids: Map<Pending, number[]>, sources: Sources, now: Date) {
  const herdIds = new Set<number>();
  for (const p of pending.filter((x) => x.rule.insideWindow))
    for (const id of ids.get(p) ?? []) {
      const f = factOf(sourceOf(sources, p), id);
      if (f) herdIds.add(f.herdId);
    }
  const byHerd = await windowsOfHerds(db, [...herdIds]);
  return new Map([...byHerd].map(([h, ws]) => [h, herdWindowAt(ws, now)]));
}

/** The runs' targets, each with its label and, when it is left out, why (a blackout, a herd in maintenance, outside its windows). */
function leaveOut(
  pending: Pending[],
  ids: Map<Pending, number[]>,
  sources: Sources,
  blackouts: Blackout[],
  windows: Map<number, HerdWindow>,
) {
  for (const p of pending) {
    const source = sourceOf(sources, p);
    for (const id of ids.get(p) ?? []) {
      const f = factOf(source, id);
      if (!f) continue; // gone since the scope was read: the plan would call it missing
      const out = blackouts.find((b) => b.herd_id === f.herdId || b.environment_id === f.environmentId);
      const skipped = !p.rule.confirmedEnvironments.includes(f.environmentId)
        ? `not confirmed in ${f.environment}: the rule was saved for ${confirmedWords(p, sources)}; save it again, with its confirmation, to run there`
        : out
          ? `inside the blackout ${JSON.stringify(out.name)} (until ${new Date(out.ends_at).toISOString()})`
          : f.automation === 'maintenance'
            ? `herd ${f.herd} is in maintenance`
            : p.rule.insideWindow
              ? (outsideWords(f.herd, windows.get(f.herdId) ?? { open: false, none: true, next: null }) ?? undefined)
              : undefined;
      p.targets.push({ id, label: f.label, ...(skipped ? { skipped } : {}) });
      if (!skipped) p.runnable.push(id);
    }
    if (!p.runnable.length)
      p.done = { status: 'nothing', reason: `nothing to run: every target was skipped (${String(p.targets.length)})`, targets: p.targets };
  }
}

/** A target as a fire sees it: its label, its herd and environment, and whether its herd is in maintenance. */
function factOf(source: PlanSource, id: number) {
  if (source.on === 'herd') {
    const h = source.herds.get(id);
    return (
      h && {
        label: h.label,
        herdId: h.id,
        environmentId: h.environmentId,
        environment: h.environment,
        herd: h.name,
        automation: h.automation,
      }
    );
  }
  const r = source.refs.get(id);
  return (
    r && {
      label: r.label,
      herdId: r.herdId,
      environmentId: r.environmentId,
      environment: r.environment,
      herd: r.herd,
      automation: r.herdAutomation,
    }
  );
}

/** The environments a rule was confirmed for, by name where its targets show them (else by id). */
function confirmedWords(p: Pending, sources: Sources): string {
  const names = new Map<number, string>();
  const source = sourceOf(sources, p);
  for (const x of source.on === 'herd' ? source.herds.values() : source.refs.values()) names.set(x.environmentId, x.environment);
  const ids = p.rule.confirmedEnvironments;
  return ids.length
    ? ids.map((e) => names.get(e) ?? `environment #${String(e)}`).join(', ')
    : 'no environment (saved before pgherd kept them)';
}

/** The conditions, measured now on each target still in; those that fail them are skipped, and retried if the rule says so. */
async function checkConditions(deps: FireDeps, pending: Pending[], now: Date) {
  await eachRun(pending, async (p) => {
    const conditions = p.conditions ?? [];
    const unmet: RunTarget[] = [];
    if (conditions.length) {
      const values = await measure(deps.db, isHerdAction(need(p.action)), p.runnable, conditions);
      for (const t of p.targets) {
        if (t.skipped) continue;
        t.values = values.get(t.id) ?? {};
        const verdict = judge(conditions, p.rule.logic, t.values);
        if (!verdict.pass) {
          t.skipped = `conditions not met: ${verdict.failed.join('; ')}`;
          unmet.push(t);
        }
      }
      p.runnable = p.targets.filter((t) => !t.skipped).map((t) => t.id);
    }
    const note = await scheduleRetry(deps, p.rule, p.run, unmet, now);
    p.retried = note ? `; ${note}` : '';
    if (!p.runnable.length) {
      const skipped = p.targets.length;
      const why =
        unmet.length === skipped && unmet.length ? 'no target met the conditions' : `every target was skipped (${String(skipped)})`;
      p.done = { status: 'nothing', reason: `nothing to run: ${why}${p.retried}`, targets: p.targets };
    }
  });
}

/**
 * Runs `step` on each run on its own: whatever one rule's step throws (a stored condition that no
 * longer reads, a target that cannot be measured) is that run's error, never another run's.
 */
async function eachRun(pending: Pending[], step: (p: Pending) => Promise<void> | void): Promise<void> {
  for (const p of pending) {
    try {
      await step(p);
    } catch (err) {
      p.done = {
        status: 'error',
        reason: err instanceof RuleError ? err.message : `pgherd could not fire it: ${errorText(err)}`,
        ...(p.targets.length ? { targets: p.targets } : {}),
      };
    }
  }
}

/** Each run planned on the owner's roles, from the inventory read for all of them. */
async function plan(db: Db, pending: Pending[], sources: Sources) {
  for (const p of pending) {
    try {
      p.plan = await planFrom(
        db,
        sourceOf(sources, p),
        need(p.access),
        need(p.action),
        p.runnable,
        p.params ?? p.rule.params,
        p.waves ?? null,
      );
      if (!p.plan.targets.some((t) => !t.refused))
        p.done = { status: 'nothing', reason: 'nothing to run: the plan refused every target', targets: p.targets };
    } catch (err) {
      if (err instanceof AccessDenied) refuse(p, err.message);
      else p.done = { status: 'error', reason: `pgherd could not fire it: ${errorText(err)}`, targets: p.targets };
    }
  }
}

/**
 * A plan an approval policy covers runs only for a rule approved as it is saved (docs/approvals.md); one
 * changed since its approval, or never approved, is skipped, saying so. The policies are read once for
 * the whole batch.
 */
async function needsApproval(db: Db, pending: Pending[]) {
  if (!pending.length) return;
  const policies = await allPolicies(db);
  if (!policies.length) return;
  for (const p of pending) {
    const plan = need(p.plan);
    const envs = [...new Set(plan.targets.filter((t) => !t.refused).map((t) => t.environmentId))];
    if (!covering(policies, p.rule.action, envs, plan.typeToConfirm !== null).length) continue;
    if (p.rule.approvedShape !== null && p.rule.approvedShape === ruleShape(p.rule)) {
      p.approvedBy = p.rule.approvedBy ?? '';
      continue;
    }
    p.done = {
      status: 'skipped',
      reason:
        p.rule.approvedShape === null
          ? 'needs approval: an approval policy covers its action there, and no approver has approved the rule yet'
          : 'needs approval again: the rule was changed since it was approved',
      targets: p.targets,
    };
  }
}

/** The operations, written together; a run whose rule started one meanwhile is an overlap. */
async function write(deps: FireDeps, pending: Pending[]) {
  const made = await writeOperations(
    deps.db,
    deps.queue,
    pending.map((p) => ({
      action: need(p.action),
      plan: need(p.plan),
      actor: { id: p.rule.ownerId, username: requester(p.rule), access: need(p.access) },
      confirmation: need(p.plan).typeToConfirm ?? '',
      idempotencyKey: `rule-run-${String(p.run.id)}`,
      waves: p.waves ?? null,
      ruleId: p.rule.id,
      windowBound: p.rule.insideWindow,
      ...(p.approvedBy !== undefined ? { ruleApprovedBy: p.approvedBy } : {}),
    })),
    deps.log,
  );
  pending.forEach((p, k) => {
    const id = made[k];
    const plan = need(p.plan);
    if (id === undefined || id === null) {
      p.done = {
        status: 'skipped',
        reason: 'overlap: another run of this rule started its operation at the same moment',
        targets: p.targets,
      };
      return;
    }
    // A rule with a reverse keeps what each target was before (its reverse puts it back to that).
    if (p.rule.reverse) {
      const before = new Map(plan.targets.flatMap((t) => (t.before && t.instanceId !== null ? [[t.instanceId, t.before] as const] : [])));
      p.targets = p.targets.map((t) => (before.has(t.id) ? { ...t, before: before.get(t.id) } : t));
    }
    const refusedByPlan = plan.targets.filter((t) => t.refused).length;
    const run = plan.targets.length - refusedByPlan;
    const skipped = p.targets.length - p.runnable.length;
    const parts = [`${String(run)} target${run === 1 ? '' : 's'} run`];
    if (refusedByPlan) parts.push(`${String(refusedByPlan)} refused by the plan`);
    if (skipped) parts.push(`${String(skipped)} skipped`);
    p.done = {
      status: 'started',
      reason: `operation #${String(id)}: ${parts.join(', ')}${p.retried}`,
      operationId: id,
      targets: p.targets,
    };
  });
}

const requester = (rule: RuleRow) => `rule: ${rule.name}`;

function refuse(p: Pending, why: string) {
  p.done = { status: 'refused', reason: `refused: ${why}` };
  p.audit = {
    user: { id: p.rule.ownerId, username: requester(p.rule) },
    action: 'rule.refused',
    objectType: 'rules',
    objectId: String(p.rule.id),
    objectLabel: p.rule.name,
    changes: { run: [null, p.run.id], reason: [null, why], owner: [null, p.rule.ownerName] },
  };
}

/** What the steps before guaranteed is there. */
function need<T>(v: T | undefined): T {
  if (v === undefined) throw new Error('a run was decided out of order');
  return v;
}

/**
 * The outcomes, written in one statement. A run closed meanwhile (its decider was silent too long)
 * keeps what it was closed as, unless this decision made an operation: that is what happened, and it
 * wins. Runs that ended without an operation are told to the webhooks (one that made an operation is
 * told when it finishes).
 */
async function settleMany(deps: FireDeps, pending: Pending[]) {
  const done = pending.filter((p): p is Pending & { done: Outcome } => p.done !== undefined);
  if (!done.length) return;
  const col = <T>(f: (p: (typeof done)[number]) => T) => done.map(f);
  const settled = await deps.db.execute<{ id: number; status: string }>(
    withParams(sqlFile('lib/features/rules/settle-rule-runs.sql'), [
      col((p) => p.run.id),
      col((p) => p.done.status),
      col((p) => p.done.reason.slice(0, 2000)),
      col((p) => p.done.operationId ?? null),
      col((p) => (p.done.targets ? JSON.stringify(p.done.targets.slice(0, MAX_RULE_TARGETS)) : null)),
    ]),
  );
  const audits = done.flatMap((p) => (p.audit ? [p.audit] : []));
  if (audits.length) await writeAudit(deps.db, audits);
  await notifyRunsEnded(
    deps.db,
    settled.rows.filter((r) => r.status !== 'started').map((r) => r.id),
  );
  for (const p of done)
    deps.log('rule.fired', { rule: p.rule.name, run: p.run.id, status: p.done.status, operationId: p.done.operationId });
}

type Blackout = { name: string; ends_at: Date; environment_id: number | null; herd_id: number | null };

/** The blackouts holding at `now`: global ones, and those of an environment or a herd. */
async function activeBlackouts(db: Db, now: Date): Promise<Blackout[]> {
  const rows = await db.execute<Blackout>(
    sql`SELECT name, ends_at, environment_id, herd_id FROM blackouts WHERE starts_at <= ${now} AND ends_at > ${now}`,
  );
  return rows.rows;
}
