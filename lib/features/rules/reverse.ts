// A rule's reverse (the morning scale-up after a night's scale-down): at a second schedule, each target
// the rule changed is put back as it was before the rule's runs: the instance type it had (a resize),
// the state it had (a power off, a power on). A companion rule does it, made, changed and deleted with
// its rule, so that it fires, skips, misses and shows its history as any rule does. Its targets are
// read at each fire from the runs themselves: each fire of the rule records, per target, what the plan
// saw before it.
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';

/** The actions that can be put back, and the action that does it. */
export const REVERSE_ACTION: Readonly<Record<string, string>> = { resize: 'resize', 'power-off': 'power-on', 'power-on': 'power-off' };

/** The companion's name: its rule's, marked. */
export const reverseName = (name: string) => `${name} (reverse)`;

/** The action a companion's rule runs, from the companion's (each reverse action is one rule action's). */
export const forwardActionOf = (reverseAction: string) => Object.entries(REVERSE_ACTION).find(([, r]) => r === reverseAction)?.[0] ?? null;

/** At most this many targets a reverse fire (a resize's backTo names each); the rest at its next fire. */
export const MAX_REVERSE_TARGETS = 10_000;

/** A target to put back: its label, and what it was before the rule first changed it. */
export interface ToPutBack {
  label: string;
  before: Record<string, string>;
}

/** How many of the two rules' latest runs are read to find what is not back yet. */
const RUNS_READ = 400;

/**
 * What the rule changed and its reverse has not put back yet, each target with what it was before the
 * first of the rule's runs that changed it (a retry after it does not move what "before" means). Only
 * the rule's runs since this reverse was made (a reverse removed and added again does not put back
 * twice), and of its action now (a rule changed from power off to power on does not read its power
 * offs' "before" backwards). A target counts as changed once its rule's operation attempted it
 * (succeeded; failed, interrupted or aborted part way: it may have changed), never when refused; it is
 * done once a reverse operation succeeded on it or refused it (what it would do no longer applies: a
 * host already running, say). `busy`: a run of the rule whose operation has not finished (the reverse
 * waits, not racing it).
 */
export async function toPutBack(
  db: Db,
  rule: { id: number; action: string },
  companion: { id: number; createdAt: Date },
): Promise<{ busy: number | null; targets: Map<number, ToPutBack> }> {
  const ruleId = rule.id;
  const rows = await db.execute<{
    rule_id: number;
    targets: { id: number; label: string; skipped?: string; before?: Record<string, string> }[];
    operation_id: number;
    op_status: string;
    statuses: Record<string, string> | null;
  }>(withParams(sqlFile('lib/features/rules/runs-to-put-back.sql'), [companion.id, ruleId, rule.action, companion.createdAt, RUNS_READ]));
  const targets = new Map<number, ToPutBack>();
  let busy: number | null = null;
  for (const r of rows.rows) {
    const status = (id: number) => r.statuses?.[String(id)];
    if (r.rule_id === ruleId) {
      if (r.op_status === 'queued' || r.op_status === 'running' || r.op_status === 'planned') busy = r.operation_id;
      for (const t of r.targets) {
        const s = status(t.id);
        if (
          t.before &&
          !t.skipped &&
          (s === 'succeeded' || s === 'failed' || s === 'interrupted' || s === 'attempted') &&
          !targets.has(t.id)
        )
          targets.set(t.id, { label: t.label, before: t.before });
      }
    } else {
      for (const t of r.targets) if (status(t.id) === 'succeeded' || status(t.id) === 'refused') targets.delete(t.id);
    }
  }
  return { busy, targets };
}

/** The reverse operation's parameters: a resize names each target's own type; power on and off take none. */
export function reverseParams(action: string, targets: Map<number, ToPutBack>): Record<string, unknown> {
  if (action !== 'resize') return {};
  return { backTo: Object.fromEntries([...targets].map(([id, t]) => [String(id), t.before.instanceType])) };
}

/**
 * The targets whose before is what the reverse action leads to: a type for a resize; running for a
 * power on, stopped for a power off. At most MAX_REVERSE_TARGETS.
 */
export function reversible(action: string, targets: Map<number, ToPutBack>): Map<number, ToPutBack> {
  const fits = (b: Record<string, string>) =>
    action === 'resize' ? typeof b.instanceType === 'string' : b.state === (action === 'power-on' ? 'running' : 'stopped');
  return new Map([...targets].filter(([, t]) => fits(t.before)).slice(0, MAX_REVERSE_TARGETS));
}
