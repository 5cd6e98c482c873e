// Two people for production: where an approval policy covers a plan's action in an environment of its
// targets, confirming it makes an operation that waits (status awaiting_approval: no targets written,
// nothing queued, no herd held) until enough other people approve the very plan confirmed (its digest,
// planned again as the requester at approval time). Denied, or not approved in time, it ends so. Every
// decision is audited with both people. See docs/approvals.md.
import { and, eq, sql } from 'drizzle-orm';
import type { Queue } from 'bullmq';
import type { Db } from '@/db/client';
import { environments, operationApprovals, operations, users } from '@/db/schema';
import { AccessDenied, can, demand, loadAccess, type Access, type Actor } from '@/lib/engine/access';
import { approverRefusal, approversText, plainWords, policiesSql, type PolicyRow } from '@/lib/engine/approval-policies';
import { standingOf } from '@/lib/engine/directory';
import { writeAudit } from '@/lib/engine/write-audit';
import { planOperation, type Plan } from '@/lib/engine/plan';
import { getAction } from '@/lib/actions/registry';
import { SubmitError } from '@/lib/engine/submit-errors';
import { OperationStateError } from '@/lib/engine/hold';
import type { TargetJob } from '@/lib/engine/queue';
import { wavesSchema } from '@/lib/engine/waves';
import { writeOperations } from '@/lib/engine/submit';
import { spendLink, type LinkClaims } from '@/lib/features/operations/approval-links';
import { wavesToForm } from '@/lib/engine/waves-form';
import { confirmationView, type ConfirmationView, type PlanView } from '@/lib/features/operations/confirmation-view';

/** A person's directory groups now (an API token's person too), for a policy that names a group. */
export async function groupsOf(db: Db, userId: number | null): Promise<string[]> {
  if (userId === null) return [];
  const [u] = await db
    .select({ id: users.id, username: users.username, source: users.source, isActive: users.isActive, groups: users.groups })
    .from(users)
    .where(eq(users.id, userId));
  if (!u) return [];
  const standing = await standingOf(db, u);
  return standing.active ? standing.groups : [];
}

/** The operation as a decision reads it. */
type Waiting = typeof operations.$inferSelect;

async function waiting(db: Db, id: number): Promise<Waiting> {
  const [op] = await db.select().from(operations).where(eq(operations.id, id));
  if (!op) throw new SubmitError('not-found', 404, `no operation #${id}`);
  return op;
}

/** The policies that hold now over a waiting operation (its action, its environments), or the default when all were removed. */
async function policiesNow(db: Db, op: Pick<Waiting, 'action' | 'environmentIds' | 'approvalsRequired' | 'pending'>): Promise<PolicyRow[]> {
  const typed = op.pending?.typed ?? true;
  const r = await db.execute<{ policies: PolicyRow[] }>(sql`SELECT ${policiesSql(op.action, op.environmentIds ?? [], typed)} AS policies`);
  const now = r.rows[0]?.policies ?? [];
  if (now.length) return now;
  // Every policy gone since: the operation still waits for the approval it was asked with.
  return [
    {
      id: 0,
      approvalsRequired: op.approvalsRequired ?? 1,
      approverRole: 'operator',
      approverGroup: null,
      ttlSeconds: 3600,
      requesterMayApprove: false,
      breakGlassForbidden: [],
    },
  ];
}

/** Ends a waiting operation short of running (denied, expired, stale, withdrawn); false when it no longer waits. */
async function endWaiting(
  tx: Pick<Db, 'execute'>,
  id: number,
  status: 'denied' | 'expired' | 'cancelled',
  reason: string,
): Promise<boolean> {
  const r = await tx.execute(sql`
    UPDATE operations SET status = ${status}, finished_at = now(), ended_reason = ${reason.slice(0, 1000)}, updated_at = now()
    WHERE id = ${id} AND status = 'awaiting_approval' RETURNING id`);
  return r.rows.length > 0;
}

const envOf = (op: Waiting) => (op.environmentIds?.length === 1 ? op.environmentIds[0] : null);

export interface Decision {
  decision: 'approved' | 'denied';
  comment: string;
  via: 'console' | 'api' | 'link';
  /** A chat link's claims, checked by whoever read it (checkLink): spent with the decision. */
  link?: LinkClaims;
}

/** The idea of a comment: plain text, at most 500 characters. */
export const cleanComment = plainWords;

/**
 * Approves or denies an operation awaiting approval, as `actor`. Refused (AccessDenied) for someone the
 * policies do not let approve it; a 409 for one that no longer waits, has expired (it ends expired) or
 * whose plan changed since it was confirmed (it ends, the requester plans again). The approval that
 * completes the count writes the operation's targets and queues them, in the transaction that records it.
 * Answers the operation's status after the decision.
 */
export async function decideOperation(
  db: Db,
  queue: Queue<TargetJob> | null,
  id: number,
  actor: Actor,
  d: Decision,
  log: (e: string, f: object) => void = () => {},
): Promise<{ id: number; status: string; approvals: number; required: number }> {
  const op = await waiting(db, id);
  const envs = op.environmentIds ?? [];
  // Who may not see it learns nothing of it.
  await demand(db, actor.access, 'viewer', `Operation #${id}`, envs.length ? envs : [null]);
  if (op.status !== 'awaiting_approval')
    throw new OperationStateError(`operation #${id} is not awaiting approval: it is ${op.status.replace('_', ' ')}`);
  if (op.approvalExpiresAt && op.approvalExpiresAt.getTime() <= Date.now()) {
    await expireApprovals(db, [id]);
    throw new OperationStateError(`operation #${id} was not approved in time (by ${op.approvalExpiresAt.toISOString()}): it has expired`);
  }
  const policies = await policiesNow(db, op);
  const refusal = approverRefusal(policies, envs, actor.access, await groupsOf(db, actor.id), op.requestedByName);
  if (refusal)
    throw new AccessDenied(`Deciding on operation #${id}: ${refusal}`, {
      id: actor.id,
      username: actor.username,
      remoteAddr: actor.remoteAddr,
    });
  const comment = cleanComment(d.comment);
  const required = Math.max(op.approvalsRequired ?? 1, ...policies.map((p) => p.approvalsRequired));
  const audit = (action: string, extra: Record<string, [unknown, unknown]> = {}) => ({
    user: actor,
    remoteAddr: actor.remoteAddr,
    action,
    objectType: 'operations',
    objectId: String(id),
    objectLabel: `${op.action} asked by ${op.requestedByName}`,
    environmentId: envOf(op),
    changes: {
      requester: [null, op.requestedByName],
      approver: [null, actor.username],
      ...(comment ? { comment: [null, comment] } : {}),
      ...extra,
    } as Record<string, [unknown, unknown]>,
  });
  // Recorded first in whichever transaction carries the decision: the operation locked and still waiting.
  const record = async (tx: Pick<Db, 'execute'>) => {
    const locked = await tx.execute<{ status: string; live: boolean }>(
      sql`SELECT status, approval_expires_at IS NULL OR approval_expires_at > now() AS live FROM operations WHERE id = ${id} FOR UPDATE`,
    );
    if (locked.rows[0]?.status !== 'awaiting_approval') throw new OperationStateError(`operation #${id} is not awaiting approval any more`);
    // The database's clock is the one that counts: a decision that reaches it late is refused (the chore ends it expired).
    if (!locked.rows[0].live) throw new OperationStateError(`operation #${id} was not approved in time: it has expired`);
    const inserted = await tx.execute(sql`
      INSERT INTO operation_approvals (operation_id, user_id, username, decision, comment, digest, via)
      VALUES (${id}, ${actor.id}, ${actor.username}, ${d.decision}, ${comment}, ${op.planDigest}, ${d.via})
      ON CONFLICT DO NOTHING RETURNING id`);
    if (!inserted.rows.length) throw new OperationStateError(`you have decided on operation #${id} already`);
    // A decision through a chat link spends it: a second use (or one racing this) finds it spent.
    if (d.link && !(await spendLink(tx, d.link, actor.username))) throw new OperationStateError('the link has been used already');
    await tx.execute(sql`
      INSERT INTO notification_events (kind, operation_id, detail)
      VALUES (${d.decision === 'approved' ? 'approval.granted' : 'approval.denied'}, ${id}, ${JSON.stringify({ by: actor.username, comment })})`);
    await tx.execute(sql`SELECT pg_notify('pgherd_notifications', '')`);
    await writeAudit(
      tx,
      audit(d.decision === 'approved' ? 'approval.granted' : 'approval.denied', { digest: [null, op.planDigest], via: [null, d.via] }),
    );
  };
  if (d.decision === 'denied') {
    await db.transaction(async (tx) => {
      await record(tx);
      await endWaiting(tx, id, 'denied', `denied by ${actor.username}${comment ? `: ${comment}` : ''}`);
    });
    return { id, status: 'denied', approvals: await approvalsOf(db, id), required };
  }
  const have = (await approvalsOf(db, id)) + 1;
  if (have < required) {
    // Not the last one needed, as far as could be seen before the lock: recorded alone, unless another
    // approver's decision committed meanwhile made this one the last (then it goes the way of the last).
    const recorded = await db
      .transaction(async (tx) => {
        await record(tx);
        const n = await tx.execute<{ n: number }>(
          sql`SELECT count(*)::int AS n FROM operation_approvals WHERE operation_id = ${id} AND decision = 'approved'`,
        );
        if ((n.rows[0]?.n ?? 0) >= required) throw new LastApproval();
        return n.rows[0]?.n ?? have;
      })
      .catch((err: unknown) => {
        if (err instanceof LastApproval) return null;
        throw err;
      });
    if (recorded !== null) return { id, status: 'awaiting_approval', approvals: recorded, required };
  }
  const plan = await planAgain(db, op);
  if (typeof plan === 'string') {
    await db.transaction(async (tx) => {
      if (await endWaiting(tx, id, 'cancelled', plan)) await writeAudit(tx, audit('approval.stale', { reason: [null, plan] }));
    });
    throw new SubmitError('stale', 409, `operation #${id} cannot be approved: ${plan}`, { operationId: id });
  }
  const requester: Actor = { id: op.requestedBy, username: op.requestedByName, remoteAddr: '', access: plan.access };
  const spec = op.pending?.waves ? wavesSchema.parse(op.pending.waves) : null;
  await writeOperations(
    db,
    queue,
    [
      {
        action: plan.action,
        plan: plan.plan,
        actor: requester,
        confirmation: op.confirmation,
        idempotencyKey: op.idempotencyKey ?? `approved-${id}`,
        waves: spec,
        retryOf: op.pending?.retryOf ?? undefined,
        approved: { operationId: id, by: await approversOf(db, id, actor.username) },
      },
    ],
    log,
    record,
  );
  return { id, status: 'queued', approvals: have, required };
}

/** The approval being recorded turned out to be the last one needed: it is recorded again as such. */
class LastApproval extends Error {}

async function approvalsOf(db: Db, id: number): Promise<number> {
  return db.$count(operationApprovals, and(eq(operationApprovals.operationId, id), eq(operationApprovals.decision, 'approved')));
}

async function approversOf(db: Db, id: number, last: string): Promise<string[]> {
  const rows = await db
    .select({ username: operationApprovals.username })
    .from(operationApprovals)
    .where(and(eq(operationApprovals.operationId, id), eq(operationApprovals.decision, 'approved')))
    .orderBy(operationApprovals.id);
  return [...rows.map((r) => r.username), last];
}

/**
 * The plan made again as its requester (their access now) from what was confirmed: the same digest, or
 * why it cannot run as approved (a string said to the approver and kept as the operation's end).
 */
async function planAgain(
  db: Db,
  op: Waiting,
): Promise<string | { plan: Plan; access: Access; action: NonNullable<ReturnType<typeof getAction>> }> {
  const action = getAction(op.action);
  if (!action) return `its action ${op.action} is not known to this version of pgherd`;
  if (op.requestedBy === null) return `${op.requestedByName} is no longer a pgherd user`;
  const access = await loadAccess(db, op.requestedBy);
  if (access.inactive) return `${op.requestedByName} ${access.inactive}`;
  const ids = Object.values(op.params as Record<string, number[]>)[0] ?? [];
  const spec = op.pending?.waves ? wavesSchema.parse(op.pending.waves) : null;
  let plan: Plan;
  try {
    plan = await planOperation(db, access, action, ids, op.actionParams, spec);
  } catch (err) {
    return `planned again as ${op.requestedByName}, it is refused (${(err as Error).message}): plan again`;
  }
  if (plan.digest !== op.planDigest || plan.missing.length)
    return `the plan changed since ${op.requestedByName} confirmed it (the inventory moved): ${op.requestedByName} must plan again`;
  return { plan, access, action };
}

/**
 * Ends every operation whose approval time ran out (or those of `ids` among them), audited: the expiry
 * chore's round, and a decision that finds it late. Only the database's clock counts, so a worker
 * restarted meanwhile changes nothing. Answers how many ended.
 */
export async function expireApprovals(db: Db, ids?: number[]): Promise<number> {
  return db.transaction(async (tx) => {
    const r = await tx.execute<{ id: number; action: string; who: string; envs: number[] | null; expired: string }>(sql`
      UPDATE operations SET status = 'expired', finished_at = now(), updated_at = now(),
        ended_reason = 'not approved in time (by ' || to_char(approval_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') || ')'
      WHERE status = 'awaiting_approval' AND approvals_required IS NOT NULL AND finished_at IS NULL AND approval_expires_at <= now()
        ${ids ? sql`AND id = ANY(${sql.param(ids)}::bigint[])` : sql``}
      RETURNING id, action, requested_by_name AS who, environment_ids AS envs, ended_reason AS expired`);
    await writeAudit(
      tx,
      r.rows.map((o) => ({
        user: { id: null, username: 'system' },
        action: 'approval.expired',
        objectType: 'operations',
        objectId: String(o.id),
        objectLabel: `${o.action} asked by ${o.who}`,
        environmentId: o.envs?.length === 1 ? o.envs[0] : null,
        changes: { requester: [null, o.who], reason: [null, o.expired] },
      })),
    );
    return r.rows.length;
  });
}

/** The requester (or whoever may abort it) takes a waiting request back: it ends cancelled. False: it was not waiting. */
export async function withdrawWaiting(db: Db, id: number, actor: Actor): Promise<boolean> {
  return db.transaction(async (tx) => {
    const ended = await endWaiting(tx, id, 'cancelled', `withdrawn by ${actor.username} before approval`);
    if (ended) {
      const [op] = await tx.select().from(operations).where(eq(operations.id, id));
      await writeAudit(tx, {
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: 'approval.withdrawn',
        objectType: 'operations',
        objectId: String(id),
        objectLabel: op ? `${op.action} asked by ${op.requestedByName}` : '',
        environmentId: op ? envOf(op) : null,
        changes: { requester: [null, op?.requestedByName ?? null], withdrawnBy: [null, actor.username] },
      });
    }
    return ended;
  });
}

/** What the operation page and the API say of an operation's approval. */
export interface ApprovalView {
  required: number;
  expiresAt: string | null;
  /** Who may approve, in words. */
  approvers: string;
  decisions: { username: string; decision: 'approved' | 'denied'; comment: string; via: string; at: string }[];
  /** Why the viewer may not decide (null: they may, while it waits). */
  viewerRefusal: string | null;
  endedReason: string | null;
  breakGlassReason: string | null;
}

/** The approval of operation `id` as `viewer` reads it; null for an operation that never needed one. */
export async function approvalView(db: Db, id: number, viewer: Actor): Promise<ApprovalView | null> {
  const [op] = await db.select().from(operations).where(eq(operations.id, id));
  if (!op || (op.approvalsRequired === null && op.breakGlassReason === null)) return null;
  const envs = op.environmentIds ?? [];
  const [decisions, names, policies] = await Promise.all([
    db.select().from(operationApprovals).where(eq(operationApprovals.operationId, op.id)).orderBy(operationApprovals.id),
    envs.length
      ? db
          .select({ id: environments.id, name: environments.name })
          .from(environments)
          .where(sql`${environments.id} = ANY(${sql.param(envs)}::int[])`)
      : Promise.resolve([]),
    policiesNow(db, op),
  ]);
  const required = Math.max(op.approvalsRequired ?? 1, ...policies.map((p) => p.approvalsRequired));
  const envNames = names.filter((n) => can(viewer.access, 'viewer', n.id)).map((n) => n.name);
  const refusal =
    op.status !== 'awaiting_approval'
      ? 'it is not awaiting approval'
      : decisions.some((x) => x.username.toLowerCase() === viewer.username.toLowerCase())
        ? 'you have decided on it already'
        : approverRefusal(policies, envs, viewer.access, await groupsOf(db, viewer.id), op.requestedByName);
  return {
    required,
    expiresAt: op.approvalExpiresAt?.toISOString() ?? null,
    approvers: approversText(
      { policies, approvalsRequired: required, requesterMayApprove: policies.every((p) => p.requesterMayApprove) },
      envNames.length ? envNames : ['its environments'],
      op.requestedByName,
    ),
    decisions: decisions.map((x) => ({
      username: x.username,
      decision: x.decision,
      comment: x.comment,
      via: x.via,
      at: x.at.toISOString(),
    })),
    viewerRefusal: refusal,
    endedReason: op.endedReason,
    breakGlassReason: op.breakGlassReason,
  };
}

/**
 * The plan awaiting approval, as the confirmation page showed it to its requester: planned again as
 * them from what they confirmed (the same digest is the same plan). `stale`: it is not the plan they
 * confirmed any more (approving it is refused). A string: why it is not shown to this viewer.
 */
export async function requestedPlan(
  db: Db,
  id: number,
  viewer: Access,
): Promise<string | { view: PlanView & { actionLabel: string; back: string }; stale: boolean }> {
  const [op] = await db.select().from(operations).where(eq(operations.id, id));
  if (!op || op.status !== 'awaiting_approval') return 'it is not awaiting approval';
  const envs = op.environmentIds ?? [];
  if (!envs.every((e) => can(viewer, 'viewer', e))) return 'its plan spans environments you have no role in';
  if (op.requestedBy === null) return `${op.requestedByName} is no longer a pgherd user`;
  const access = await loadAccess(db, op.requestedBy);
  const spec = op.pending?.waves ? wavesSchema.safeParse(op.pending.waves) : null;
  const raw: Record<string, string> = {
    action: op.action,
    ids: (Object.values(op.params as Record<string, number[]>)[0] ?? []).join(','),
    ...Object.fromEntries(Object.entries(op.actionParams).map(([k, v]) => [`p.${k}`, String(v)])),
    ...wavesToForm(spec?.success ? spec.data : null),
  };
  let view: ConfirmationView;
  try {
    view = await confirmationView(db, access, raw);
  } catch (err) {
    return `planned again as ${op.requestedByName}, it is refused (${(err as Error).message})`;
  }
  if (view.kind !== 'plan')
    return view.kind === 'unknown-action'
      ? `its action ${op.action} is not known`
      : `planned again as ${op.requestedByName}, it is refused`;
  const digest = view.confirm?.hidden.find(([k]) => k === 'digest')?.[1];
  return {
    view: { ...view, paramsForm: null, wavesForm: null, confirm: null, notices: { stale: false, mistyped: false, nothing: false } },
    stale: digest !== op.planDigest || view.missing.length > 0,
  };
}

/** One operation awaiting approval, as GET /api/v1/approvals lists it. */
export interface WaitingItem {
  id: number;
  action: string;
  requestedBy: string;
  createdAt: string;
  expiresAt: string | null;
  required: number;
  approvals: number;
  environments: string[];
  /** Whether the caller may decide on it now. */
  yours: boolean;
}

/**
 * What waits for approval where `actor` may see it (every environment of it), the soonest to expire
 * first; `mine`: only what they may decide on now (not theirs to approve, not decided by them). At most 1,000.
 */
export async function listWaiting(db: Db, actor: Actor, mine: boolean): Promise<WaitingItem[]> {
  const rows = await db.execute<{
    id: number;
    action: string;
    who: string;
    created: Date;
    expires: Date | null;
    required: number;
    envs: number[];
    names: string[];
    approvals: number;
    decided: boolean;
    pending: Waiting['pending'];
  }>(sql`
    SELECT o.id, o.action, o.requested_by_name AS who, o.created_at AS created, o.approval_expires_at AS expires,
      o.approvals_required AS required, o.environment_ids AS envs, o.pending,
      ARRAY(SELECT e.name FROM environments e WHERE e.id = ANY(o.environment_ids) ORDER BY e.name) AS names,
      (SELECT count(*)::int FROM operation_approvals a WHERE a.operation_id = o.id AND a.decision = 'approved') AS approvals,
      EXISTS (SELECT 1 FROM operation_approvals a WHERE a.operation_id = o.id AND lower(a.username) = lower(${actor.username})) AS decided
    FROM operations o
    WHERE o.status = 'awaiting_approval' AND o.approvals_required IS NOT NULL AND o.finished_at IS NULL AND o.approval_expires_at > now()
    ORDER BY o.approval_expires_at, o.id
    LIMIT 4000`);
  const seen = rows.rows.filter((r) => r.envs.every((e) => can(actor.access, 'viewer', e)));
  const groups = seen.length ? await groupsOf(db, actor.id) : [];
  const out: WaitingItem[] = [];
  const policyCache = new Map<string, PolicyRow[]>();
  for (const r of seen) {
    let yours = false;
    if (!r.decided) {
      const key = `${r.action}|${[...r.envs].sort().join(',')}|${String(r.pending?.typed ?? true)}`;
      let policies = policyCache.get(key);
      if (!policies) {
        policies = await policiesNow(db, { action: r.action, environmentIds: r.envs, approvalsRequired: r.required, pending: r.pending });
        policyCache.set(key, policies);
      }
      yours = approverRefusal(policies, r.envs, actor.access, groups, r.who) === null;
    }
    if (mine && !yours) continue;
    out.push({
      id: r.id,
      action: r.action,
      requestedBy: r.who,
      createdAt: new Date(r.created).toISOString(),
      expiresAt: r.expires ? new Date(r.expires).toISOString() : null,
      required: r.required,
      approvals: r.approvals,
      environments: r.names,
      yours,
    });
    if (out.length >= 1000) break;
  }
  return out;
}

/** One operation an admin ran without the approval it needed (break glass). */
export interface BreakGlassUse {
  id: number;
  action: string;
  by: string;
  reason: string;
  at: string;
  status: string;
}

/**
 * Break glass in the last 30 days, where the reader sees (scope: environment ids, null for all): the
 * dashboard lists them, newest first, at most 20.
 */
export async function breakGlassUses(db: Db, scope: number[] | null): Promise<BreakGlassUse[]> {
  if (scope !== null && !scope.length) return [];
  const r = await db.execute<{ id: number; action: string; by: string; reason: string; at: Date; status: string }>(sql`
    SELECT o.id, o.action, o.requested_by_name AS by, o.break_glass_reason AS reason, o.created_at AS at, o.status::text AS status
    FROM operations o
    WHERE o.break_glass_reason IS NOT NULL AND o.created_at > now() - interval '30 days'
      ${
        scope === null
          ? sql``
          : sql`AND (o.environment_ids && ${sql.param(scope)}::int[] OR EXISTS (SELECT 1 FROM operation_targets t JOIN herds h ON h.id = t.herd_id
              WHERE t.operation_id = o.id AND h.environment_id = ANY(${sql.param(scope)}::int[])))`
      }
    ORDER BY o.created_at DESC LIMIT 20`);
  return r.rows.map((x) => ({ ...x, at: new Date(x.at).toISOString() }));
}
