// A rule's fires: each due time recorded once per rule however many workers see it, then
// decided (lib/features/rules/decide.ts). Fires come from a fire group's job scheduler (every rule sharing a
// cron expression and time zone at once), a one-time rule's job, a worker catching up, run now, or a
// retry; they are recorded and decided in batches, so 10,000 rules due at 02:00 are a few statements.
import { and, eq, sql } from 'drizzle-orm';
import { withParams } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { operations, ruleRuns, rules } from '@/db/schema';
import { firesBetween } from './cron';
import { decideMany } from './decide';
import { scheduleRetry, type FireDeps } from './rule-runs';
import { notifyRunsEnded } from './webhooks';
import { scheduleOf, type RuleRow } from './rules';

export type { RuleRow };
/** A due time is run once: the same key for every worker that sees it. */
export const dueKey = (dueAt: Date) => `at:${dueAt.getTime()}`;

/** A due time of a rule: its version when the fire came from a job made for one (a one-time rule's), its group when from a group's. */
export interface Due {
  ruleId: number;
  version: number | null;
  dueAt: Date;
  group?: string;
}

/**
 * Scheduled fires, any number at once. Each (rule, due time) is recorded once: nothing when the rule is
 * gone, disabled, changed since (`version`, or no longer in `group`), or when this due time (or a later
 * one) was already recorded; recorded as missed when it is later than the rule's grace (beyond
 * `onTimeMs`, what counts as on time: a busy worker's delay is not a miss). The rest are decided
 * together. Returns the runs made.
 */
export async function fireDueMany(
  deps: FireDeps,
  dues: Due[],
  kind: 'schedule' | 'catch-up',
  onTimeMs: number,
  now = new Date(),
): Promise<number[]> {
  if (!dues.length) return [];
  const col = <T>(f: (d: Due) => T) => dues.map(f);
  const recorded = await deps.db.transaction(async (tx) => {
    // The rules' rows locked in id order (two batches sharing rules wait for each other, never deadlock);
    // the latest due time moves under the lock, so a second worker with the same due time finds it taken.
    await tx.execute(sql`SELECT id FROM rules WHERE id = ANY(${sql.param(col((d) => d.ruleId))}::int[]) ORDER BY id FOR UPDATE`);
    const { rows } = await tx.execute<{ id: number; status: string }>(
      withParams(sqlFile('lib/features/rules/record-due-fires.sql'), [
        col((d) => d.ruleId),
        col((d) => d.version),
        col((d) => d.dueAt.toISOString()),
        col((d) => d.group ?? null),
        now.toISOString(),
        kind,
        onTimeMs,
      ]),
    );
    return rows;
  });
  const missed = recorded.filter((r) => r.status === 'missed').map((r) => r.id);
  if (missed.length) {
    deps.log('rule.missed', { runs: missed });
    await notifyRunsEnded(deps.db, missed);
  }
  await decideMany(
    deps,
    recorded.filter((r) => r.status === 'deciding').map((r) => r.id),
    now,
  );
  return recorded.map((r) => r.id);
}

/** One rule's scheduled fire (a one-time rule's job, a test): fireDueMany of one. The run, or null. */
export async function fireDue(
  deps: FireDeps,
  ruleId: number,
  version: number | null,
  dueAt: Date,
  kind: 'schedule' | 'catch-up',
  onTimeMs: number,
  now = new Date(),
): Promise<number | null> {
  return (await fireDueMany(deps, [{ ruleId, version, dueAt }], kind, onTimeMs, now))[0] ?? null;
}

/** A fire group's due time: every enabled rule with that cron expression in that time zone, at once. */
export async function fireGroup(deps: FireDeps, group: string, dueAt: Date, onTimeMs: number, now = new Date()): Promise<number[]> {
  const members = await deps.db.execute<{ id: number; schedule: Record<string, unknown> }>(
    sql`SELECT id, schedule FROM rules WHERE enabled AND fire_groups @> ARRAY[${group}]::text[] ORDER BY id`,
  );
  // A rule whose stored schedule no longer reads (a row written by hand) fires never, whatever group it
  // says. The group's rules mostly share one stored schedule: each distinct one is read once.
  const reads = new Map<string, boolean>();
  const readsOf = (r: { schedule: Record<string, unknown> }) => {
    const key = JSON.stringify(r.schedule);
    let ok = reads.get(key);
    if (ok === undefined) reads.set(key, (ok = scheduleOf(r) !== null));
    return ok;
  };
  const readable = members.rows.filter(readsOf);
  if (readable.length < members.rows.length)
    deps.log('rules.group.unreadable_rules', { group, rules: members.rows.filter((r) => !readsOf(r)).map((r) => r.id) });
  return fireDueMany(
    deps,
    readable.map((r) => ({ ruleId: r.id, version: null, dueAt, group })),
    'schedule',
    onTimeMs,
    now,
  );
}

/**
 * What a worker does when it starts (and now and then): the fires that fell while none ran, or that
 * Redis lost, looked for in the database. The last one runs if within the rule's grace; those before
 * it are recorded as one missed run that says how many. `slackMs`: fires younger than this are left
 * to the job schedulers, which are on time.
 */
export async function catchUp(deps: FireDeps, slackMs: number, now = new Date()): Promise<number[]> {
  const upTo = new Date(now.getTime() - slackMs);
  const rows = await deps.db
    .select({ id: rules.id, version: rules.version, schedule: rules.schedule, firesFrom: rules.firesFrom, last: rules.lastDueAt })
    .from(rules)
    .where(eq(rules.enabled, true));
  const dues: Due[] = [];
  const missed: number[] = [];
  for (const r of rows) {
    const after = new Date(Math.max(r.firesFrom.getTime() - 1, r.last ? r.last.getTime() : 0));
    const schedule = scheduleOf(r);
    if (!schedule) continue; // one that does not read fires never (its pages say why); the others go on
    const found = firesBetween(schedule, after, upTo);
    const latest = found.last.at(-1);
    if (!found.count || !latest) continue;
    const before = found.last.at(-2);
    if (found.count > 1 && before) {
      const n = found.count - 1;
      const [run] = await deps.db
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
      if (run) missed.push(run.id);
    }
    dues.push({ ruleId: r.id, version: r.version, dueAt: latest });
  }
  await notifyRunsEnded(deps.db, missed);
  return fireDueMany(deps, dues, 'catch-up', slackMs, now);
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

/** One run being decided (run now, a retry): decideMany of one. */
export async function decide(deps: FireDeps, runId: number, now = new Date()): Promise<void> {
  await decideMany(deps, [runId], now);
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
  // A run preempted by an urgent operation (an evacuation) is tried again like a failed one.
  if (!row?.rule.retry || !['failed', 'partial', 'preempted'].includes(row.status)) return null;
  const failed = await deps.db.execute<{ id: number; label: string }>(sql`
    SELECT COALESCE(instance_id, herd_id) AS id, label FROM operation_targets
    WHERE operation_id = ${operationId} AND status IN ('failed', 'interrupted', 'preempted') AND refusal IS NULL AND COALESCE(instance_id, herd_id) IS NOT NULL
    ORDER BY id`);
  const note = await scheduleRetry(deps, row.rule, row.run, failed.rows, now, 'failed');
  if (note)
    await deps.db
      .update(ruleRuns)
      .set({ reason: sql`coalesce(${ruleRuns.reason}, '') || ${`; failed targets: ${note}`}` })
      .where(eq(ruleRuns.id, row.run.id));
  return note;
}
