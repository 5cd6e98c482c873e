// A rule's reverse (issue 17, pygmy's morning scale-up): at a second schedule, each target the rule
// changed is put back as it was before the rule's runs: the instance type it had (a resize), the state
// it had (a power off, a power on). A companion rule does it, made, changed and deleted with its rule,
// so that it fires, skips, misses and shows its history as any rule does. Its targets are read at each
// fire from the runs themselves: each fire of the rule records, per target, what the plan saw before it.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';

/** The actions that can be put back, and the action that does it. */
export const REVERSE_ACTION: Readonly<Record<string, string>> = { resize: 'resize', 'power-off': 'power-on', 'power-on': 'power-off' };

/** The companion's name: its rule's, marked. */
export const reverseName = (name: string) => `${name} (reverse)`;

/** A target to put back: its label, and what it was before the rule first changed it. */
export interface ToPutBack {
  label: string;
  before: Record<string, string>;
}

/** How many of the two rules' latest runs are read to find what is not back yet. */
const RUNS_READ = 400;

/**
 * What the rule changed and its reverse has not put back yet, each target with what it was before the
 * first of the rule's runs that changed it (a retry after it does not move what "before" means). A
 * target counts as changed once its rule's operation attempted it (succeeded, or failed or was cut
 * short part way: it may have changed), never when refused; it is back once a reverse operation
 * succeeded on it. `busy`: a run of the rule whose operation has not finished (the reverse waits, not
 * racing it).
 */
export async function toPutBack(db: Db, ruleId: number, companionId: number): Promise<{ busy: number | null; targets: Map<number, ToPutBack> }> {
  const rows = await db.execute<{
    rule_id: number;
    targets: { id: number; label: string; skipped?: string; before?: Record<string, string> }[];
    operation_id: number;
    op_status: string;
    statuses: Record<string, string> | null;
  }>(sql`
    SELECT * FROM (
      SELECT rr.id, rr.rule_id, rr.targets, o.id AS operation_id, o.status AS op_status,
        (SELECT jsonb_object_agg(ot.instance_id, CASE WHEN ot.refusal IS NULL THEN ot.status::text ELSE 'refused' END)
           FROM operation_targets ot WHERE ot.operation_id = o.id AND ot.instance_id IS NOT NULL) AS statuses
      FROM rule_runs rr JOIN operations o ON o.id = rr.operation_id
      WHERE rr.rule_id IN (${ruleId}, ${companionId}) AND rr.status = 'started'
      ORDER BY rr.id DESC LIMIT ${RUNS_READ}
    ) latest ORDER BY id`);
  const targets = new Map<number, ToPutBack>();
  let busy: number | null = null;
  for (const r of rows.rows) {
    const status = (id: number) => r.statuses?.[String(id)];
    if (r.rule_id === ruleId) {
      if (r.op_status === 'queued' || r.op_status === 'running' || r.op_status === 'planned') busy = r.operation_id;
      for (const t of r.targets) {
        const s = status(t.id);
        if (t.before && !t.skipped && (s === 'succeeded' || s === 'failed' || s === 'interrupted') && !targets.has(t.id))
          targets.set(t.id, { label: t.label, before: t.before });
      }
    } else {
      for (const t of r.targets) if (status(t.id) === 'succeeded') targets.delete(t.id);
    }
  }
  return { busy, targets };
}

/** The reverse operation's parameters: a resize names each target's own type; power on and off take none. */
export function reverseParams(action: string, targets: Map<number, ToPutBack>): Record<string, unknown> {
  if (action !== 'resize') return {};
  return { backTo: Object.fromEntries([...targets].map(([id, t]) => [String(id), t.before.instanceType])) };
}

/** The targets whose before says what the reverse action needs (a type for a resize, a state for power). */
export function reversible(action: string, targets: Map<number, ToPutBack>): Map<number, ToPutBack> {
  const need = action === 'resize' ? 'instanceType' : 'state';
  return new Map([...targets].filter(([, t]) => typeof t.before[need] === 'string'));
}
