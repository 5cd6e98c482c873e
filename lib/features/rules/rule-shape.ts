// A rule's approval as a fire and its page read it (docs/approvals.md): its shape, hashed, and the
// policies that cover it. Approving one is lib/features/rules/rule-approval.ts.
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { rules } from '@/db/schema';
import type { PolicyRow } from '@/lib/engine/approval-policies';

type RuleRow = typeof rules.$inferSelect;

/** Keys sorted at every depth: the same value always hashes the same. */
const canonical = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(canonical)
    : v && typeof v === 'object'
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([k, x]) => [k, canonical(x)]),
        )
      : v;

/**
 * The rule's shape, hashed: what an approval binds. Everything that decides what its fires run, on
 * what, when and how often: its action, parameters, scope, waves and environments, its schedule, its
 * conditions and their logic, its retries, its grace, its reverse and whether it waits for maintenance
 * windows. Not its name, description or whether it is enabled.
 */
export function ruleShape(
  r: Pick<
    RuleRow,
    | 'action'
    | 'params'
    | 'scope'
    | 'waves'
    | 'confirmedEnvironments'
    | 'schedule'
    | 'conditions'
    | 'logic'
    | 'retry'
    | 'graceSeconds'
    | 'reverse'
    | 'insideWindow'
  >,
): string {
  const shape = [
    r.action,
    r.params,
    r.scope,
    r.waves ?? null,
    [...r.confirmedEnvironments].sort((a, b) => a - b),
    r.schedule,
    r.conditions,
    r.logic,
    r.retry ?? null,
    r.graceSeconds,
    r.reverse ?? null,
    r.insideWindow,
  ];
  return createHash('sha256')
    .update(JSON.stringify(canonical(shape)))
    .digest('hex')
    .slice(0, 32);
}

/** Every approval policy (a short table), for a batch of fires to judge in memory. */
export async function allPolicies(
  db: Pick<Db, 'execute'>,
): Promise<(PolicyRow & { environmentId: number; actions: string[]; typed: boolean })[]> {
  const r = await db.execute<PolicyRow & { environmentId: number; actions: string[]; typed: boolean }>(sql`
    SELECT id, environment_id AS "environmentId", actions, typed_confirmation AS typed, approvals_required AS "approvalsRequired",
      approver_role AS "approverRole", approver_group AS "approverGroup", ttl_seconds AS "ttlSeconds",
      requester_may_approve AS "requesterMayApprove", break_glass_forbidden AS "breakGlassForbidden"
    FROM approval_policies ORDER BY id`);
  return r.rows;
}

/** The policies covering `action` in these environments (a rule's confirmation is typed: typed-confirmation policies count). */
export const covering = (all: Awaited<ReturnType<typeof allPolicies>>, action: string, environmentIds: number[], typed = true) =>
  all.filter((p) => environmentIds.includes(p.environmentId) && (p.actions.includes(action) || (p.typed && typed)));

/** What a rule's page and the API say of its approval: null where no policy covers it. */
export interface RuleApproval {
  /** Whether its shape as saved is the one approved. */
  approved: boolean;
  /** Approvals its shape now has, and needs (the most any covering policy asks). */
  approvals: number;
  required: number;
  /** Approved before, and changed since. */
  again: boolean;
  approvedBy: string | null;
  approvedAt: string | null;
}

export async function ruleApproval(db: Pick<Db, 'execute'>, r: RuleRow): Promise<RuleApproval | null> {
  const policies = covering(await allPolicies(db), r.action, r.confirmedEnvironments);
  if (!policies.length) return null;
  const shape = ruleShape(r);
  const approved = r.approvedShape === shape;
  const required = Math.max(...policies.map((p) => p.approvalsRequired));
  return {
    approved,
    approvals: approved ? required : r.approvalVotes?.shape === shape ? r.approvalVotes.by.length : 0,
    required,
    again: !approved && r.approvedShape !== null,
    approvedBy: approved ? r.approvedBy : null,
    approvedAt: approved && r.approvedAt ? r.approvedAt.toISOString() : null,
  };
}
