// A rule whose action an approval policy covers in its environments is approved once, as saved (its
// shape: action, parameters, scope, waves and environments), by the policy's approvers, never its owner
// (docs/approvals.md). Its fires then run without asking, each operation naming the approval; a save
// that changes the shape needs approval again, and until then its fires are skipped, saying so.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { AccessDenied, type Actor } from '@/lib/engine/access';
import { approverRefusal } from '@/lib/engine/approval-policies';
import { writeAudit } from '@/lib/engine/write-audit';
import { groupsOf } from '@/lib/features/operations/approvals';
import { getRule, mayRead, RuleError } from './rules';
import { allPolicies, covering, ruleShape } from './rule-shape';
import type { rules } from '@/db/schema';

type RuleRow = typeof rules.$inferSelect;

/**
 * Approves the rule as it is saved now, as `actor`: one the policies let approve it (never its owner,
 * whatever session or token). 409 where no policy covers it, or it is approved already.
 */
export async function approveRule(db: Db, actor: Actor, id: number): Promise<void> {
  const rule = await getRule(db, id);
  const policies = covering(await allPolicies(db), rule.action, rule.confirmedEnvironments);
  const refusal = approverRefusal(policies, rule.confirmedEnvironments, actor.access, await groupsOf(db, actor.id), rule.ownerName);
  // Rules are their owners' and global roles' to read; an approver the policies name reads the one to approve.
  if (!mayRead(actor.access, rule) && (refusal !== null || !policies.length)) throw new RuleError(404, `no rule #${id}`);
  if (!policies.length) throw new RuleError(409, `no approval policy covers rule ${JSON.stringify(rule.name)}: it runs without approval`);
  const shape = ruleShape(rule);
  if (rule.approvedShape === shape) throw new RuleError(409, `rule ${JSON.stringify(rule.name)} is approved as it is already`);
  if (refusal)
    throw new AccessDenied(`Approving rule ${JSON.stringify(rule.name)}: ${refusal}`, {
      id: actor.id,
      username: actor.username,
      remoteAddr: actor.remoteAddr,
    });
  const required = Math.max(...policies.map((p) => p.approvalsRequired));
  await db.transaction(async (tx) => {
    // As it was read: a save meanwhile (another shape, another owner) is not approved by this.
    const locked = await tx.execute<{ votes: { shape: string; by: string[] } | null }>(sql`
      SELECT approval_votes AS votes FROM rules
      WHERE id = ${id} AND version = ${rule.version} AND owner_id IS NOT DISTINCT FROM ${rule.ownerId} FOR UPDATE`);
    if (!locked.rows.length) throw new RuleError(409, `rule ${JSON.stringify(rule.name)} was saved meanwhile: read it again, then approve`);
    const votes = locked.rows[0]?.votes ?? null;
    const before = votes !== null && votes.shape === shape ? votes.by : [];
    if (before.some((b) => b.toLowerCase() === actor.username.toLowerCase()))
      throw new RuleError(
        409,
        `you have approved rule ${JSON.stringify(rule.name)} as it is already: it needs another person's approval too`,
      );
    const by = [...before, actor.username];
    // Enough people: approved as it is; else one more approval kept for this shape.
    await tx.execute(
      by.length >= required
        ? sql`UPDATE rules SET approved_shape = ${shape}, approved_by = ${by.join(', ')}, approved_at = now(), approval_votes = NULL WHERE id = ${id}`
        : sql`UPDATE rules SET approval_votes = ${JSON.stringify({ shape, by })}::jsonb WHERE id = ${id}`,
    );
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'rule.approved',
      objectType: 'rules',
      objectId: String(id),
      objectLabel: rule.name,
      environmentId: rule.confirmedEnvironments.length === 1 ? rule.confirmedEnvironments[0] : null,
      changes: {
        owner: [null, rule.ownerName],
        approver: [null, actor.username],
        approvals: [null, `${String(by.length)} of ${String(required)}`],
        shape: [rule.approvedShape, shape],
      },
    });
  });
}

/** Whether `access` is one the policies covering this rule let approve it (so may read it to do so). */
export async function mayApproveRule(db: Db, actor: Pick<Actor, 'id' | 'access'>, rule: RuleRow): Promise<string | null> {
  const policies = covering(await allPolicies(db), rule.action, rule.confirmedEnvironments);
  if (!policies.length) return 'no approval policy covers it';
  return approverRefusal(policies, rule.confirmedEnvironments, actor.access, await groupsOf(db, actor.id), rule.ownerName);
}
