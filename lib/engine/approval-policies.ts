// Approval policies as submit and the approvers read them (lib/features/operations/approvals.ts has the
// decisions): which policies cover a plan, what they ask added up, who they let approve. Plain values,
// but for the one SQL expression that submit folds into a statement it runs anyway.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { Role } from '@/db/types';
import { canOnAll, type Access } from '@/lib/engine/access';
import type { Plan } from '@/lib/engine/plan';

/** One policy as the decisions read it (a row of approval_policies). */
export type PolicyRow = {
  id: number;
  approvalsRequired: number;
  approverRole: Role;
  approverGroup: string | null;
  ttlSeconds: number;
  requesterMayApprove: boolean;
  breakGlassForbidden: string[];
};

/** What the policies covering a plan ask, added up. */
export interface Requirement {
  policies: PolicyRow[];
  approvalsRequired: number;
  ttlSeconds: number;
  requesterMayApprove: boolean;
  /** The environments of the plan's runnable targets. */
  environmentIds: number[];
}

/**
 * The policies covering an action in these environments, as one SQL expression (a JSON array, empty
 * when none): submit reads it in the statement it runs anyway, so a plan that needs no approval costs
 * no round trip more.
 */
export function policiesSql(action: string, environmentIds: number[], typed: boolean) {
  return sql`(SELECT coalesce(json_agg(json_build_object('id', p.id, 'approvalsRequired', p.approvals_required,
      'approverRole', p.approver_role, 'approverGroup', p.approver_group, 'ttlSeconds', p.ttl_seconds,
      'requesterMayApprove', p.requester_may_approve, 'breakGlassForbidden', p.break_glass_forbidden) ORDER BY p.id), '[]'::json)
    FROM approval_policies p
    WHERE p.environment_id = ANY(${sql.param(environmentIds)}::int[])
      AND (${action} = ANY(p.actions) OR (p.typed_confirmation AND ${typed})))`;
}

/** The policies added up: the most approvals asked, the shortest time, the requester only if every one lets them. */
export function requirementOf(policies: PolicyRow[], environmentIds: number[]): Requirement | null {
  if (!policies.length) return null;
  return {
    policies,
    approvalsRequired: Math.max(...policies.map((p) => p.approvalsRequired)),
    ttlSeconds: Math.min(...policies.map((p) => p.ttlSeconds)),
    requesterMayApprove: policies.every((p) => p.requesterMayApprove),
    environmentIds,
  };
}

/** The environments whose policies a plan answers to: those of its runnable targets. */
export const planEnvironments = (plan: Plan): number[] => [...new Set(plan.targets.filter((t) => !t.refused).map((t) => t.environmentId))];

/** The policies covering `plan` now (one query). */
export async function requirementFor(db: Pick<Db, 'execute'>, plan: Plan): Promise<Requirement | null> {
  const envs = planEnvironments(plan);
  const r = await db.execute<{ policies: PolicyRow[] }>(
    sql`SELECT ${policiesSql(plan.action, envs, plan.typeToConfirm !== null)} AS policies`,
  );
  return requirementOf(r.rows[0]?.policies ?? [], envs);
}

/** Who may approve, in words: "1 approval from an operator or admin of production, not alice". */
export function approversText(
  req: Pick<Requirement, 'policies' | 'approvalsRequired' | 'requesterMayApprove'>,
  envNames: string[],
  requester: string,
): string {
  const who = [
    ...new Set(
      req.policies.map((p) =>
        p.approverGroup ? `a member of ${p.approverGroup}` : p.approverRole === 'admin' ? 'an admin' : 'an operator or admin',
      ),
    ),
  ].join(' who is also ');
  const n = req.approvalsRequired;
  return `${n} approval${n === 1 ? '' : 's'} from ${who} of ${envNames.join(', ')}${req.requesterMayApprove ? '' : `, other than ${requester}`}`;
}

/**
 * Why `approver` may not decide on an operation under these policies (null: they may). A policy's group
 * counts with a view of every environment; otherwise its role in every one. The requester is refused
 * by name whatever token or session they come with, unless every policy lets them.
 */
export function approverRefusal(
  policies: PolicyRow[],
  environmentIds: number[],
  approver: Access,
  groups: string[],
  requester: string,
): string | null {
  const lower = new Set(groups.map((g) => g.toLowerCase()));
  if (approver.username.toLowerCase() === requester.toLowerCase() && !policies.every((p) => p.requesterMayApprove))
    return `you asked for it: another person must approve it (a second session or token of yours is still you)`;
  for (const p of policies) {
    if (p.approverGroup) {
      if (!lower.has(p.approverGroup.toLowerCase()) || !canOnAll(approver, 'viewer', environmentIds))
        return `approving it needs membership of ${p.approverGroup} and a role in each of its environments`;
    } else if (!canOnAll(approver, p.approverRole, environmentIds)) {
      return `approving it needs the ${p.approverRole} role in each of its environments`;
    }
  }
  return null;
}

/**
 * A person's words kept with a decision (a comment, a break glass reason): control, format, line and
 * direction characters are spaces (they could hide or reorder what a reader sees), runs of space one,
 * at most 500 characters.
 */
export const plainWords = (text: string): string =>
  text
    .replace(/[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 500);

/** Text from a person, for Slack's mrkdwn (where <...> is a link or a mention): &, < and > escaped. */
export const slackEscaped = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
