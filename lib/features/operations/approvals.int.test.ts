// Two people for production, against the lab's directory and a real worker: a production DBA's restart
// waits with nothing queued or held; the requester (any session or token of theirs), viewers and a
// staging-only admin cannot approve it, a production operator can; a plan that changed, an expiry, a
// denial each end it with nothing run; approved, it runs. Policies are a global admin's alone.
import { randomBytes } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalPolicies, auditEntries, environments, herdLeases, instances, operations, operationTargets } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { restartAction } from '@/lib/actions/control/restart.action';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { planOperation } from '@/lib/engine/plan';
import { submitOperation } from '@/lib/engine/submit';
import { AccessDenied, loadAccess, SYSTEM_ACCESS, type Actor } from '@/lib/engine/access';
import { OperationStateError } from '@/lib/engine/hold';
import { SubmitError } from '@/lib/engine/submit-errors';
import { authenticate } from '@/lib/features/auth/authenticate';
import { ldapConfigSchema, type LdapConfig } from '@/lib/adapters/ldap/ldap';
import { saveObject, deleteObjects } from '@/lib/features/admin/mutations';
import { getEditable } from '@/lib/features/admin/registry';
import { cancelOperation } from '@/lib/features/operations/operation-control';
import { decideOperation, expireApprovals, listWaiting } from '@/lib/features/operations/approvals';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { startTestWorker, waitForOperation, type TestWorker } from '@/lib/testing/operations';

let t: TestDb;
let cfg: LdapConfig;
let worker: TestWorker | undefined;
const env = new Map<string, number>();
let replica: number;

async function signIn(username: string): Promise<Actor & { id: number }> {
  const res = await authenticate(t.db, username, t.lab.ldap!.users.find((u) => u.username === username)!.password, '10.7.0.2', cfg);
  if (!res.ok) throw new Error(`${username}: ${res.code}`);
  return { id: res.user.id, username, access: await loadAccess(t.db, res.user.id), remoteAddr: '10.7.0.2' };
}

/** What `who` confirms on the confirmation page for `action` on these instances. */
async function request(who: Actor, action: typeof restartAction, ids: number[]) {
  const plan = await planOperation(t.db, who.access, action, ids);
  return submitOperation(
    t.db,
    worker?.queue ?? null,
    action,
    { instanceIds: ids, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: randomBytes(8).toString('hex') },
    who,
  );
}

const opRow = async (id: number) => (await t.db.select().from(operations).where(eq(operations.id, id)))[0]!;
const targetsOf = (id: number) => t.db.$count(operationTargets, eq(operationTargets.operationId, id));
const decide = (id: number, who: Actor, decision: 'approved' | 'denied', comment = '') =>
  decideOperation(t.db, worker?.queue ?? null, id, who, { decision, comment, via: 'console' });

beforeAll(async () => {
  t = await freshDatabase();
  const l = t.lab.ldap!;
  cfg = ldapConfigSchema.parse({
    urls: [l.url],
    bindDn: l.bindDn,
    bindPassword: l.bindPassword,
    userBase: l.userBase,
    groupBase: l.groupBase,
  });
  await seedLabFleet(t.db, t.lab);
  for (const e of await t.db.select().from(environments)) env.set(e.name, e.id);
  const rows = await t.db.execute<{ id: number }>(sql`
    SELECT i.id FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id
    WHERE e.name = 'production' AND h.name = 'orders' AND i.role = 'replica' ORDER BY i.id LIMIT 1`);
  replica = rows.rows[0]!.id;
  // Production: restarts and reloads need one approval from an operator (or higher) there.
  await t.db.insert(approvalPolicies).values({ environmentId: env.get('production')!, actions: ['restart', 'reload'] });
});
afterAll(async () => {
  await worker?.close();
  await ifAssigned(t)?.close();
});

describe('a production restart that needs a second person', () => {
  it('waits with nothing queued or held, and only another production operator may approve it', async () => {
    const alice = await signIn('alice');
    const res = await request(alice, restartAction, [replica]);
    expect(res.status).toBe('awaiting_approval');
    const op = await opRow(res.id);
    expect(op.status).toBe('awaiting_approval');
    expect(op.approvalsRequired).toBe(1);
    expect(op.environmentIds).toEqual([env.get('production')]);
    expect(await targetsOf(res.id)).toBe(0);
    expect(await t.db.$count(herdLeases)).toBe(0);

    // Alice again: a second session (a new sign-in) is still alice; so is any token of hers (it acts as her).
    const aliceAgain = await signIn('alice');
    await expect(decide(res.id, aliceAgain, 'approved')).rejects.toThrow(/another person must approve it/);
    const aliceToken: Actor = { id: alice.id, username: 'ALICE', access: alice.access, remoteAddr: '10.9.9.9' };
    await expect(decide(res.id, aliceToken, 'approved')).rejects.toThrow(AccessDenied);
    // Bob views production, carol views everything, erin is admin in staging only.
    for (const name of ['bob', 'carol', 'erin']) {
      const who = await signIn(name);
      await expect(decide(res.id, who, 'approved'), name).rejects.toThrow(AccessDenied);
    }
    // A rule's run acts as its owner (alice): the same person, refused the same way.
    const asRule: Actor = { id: alice.id, username: 'alice', access: alice.access };
    await expect(decide(res.id, asRule, 'approved')).rejects.toThrow(/another person/);
    expect((await opRow(res.id)).status).toBe('awaiting_approval');
    expect(await targetsOf(res.id)).toBe(0);

    // What waits for whom.
    const frank = await signIn('frank');
    expect((await listWaiting(t.db, frank, true)).map((w) => w.id)).toContain(res.id);
    expect((await listWaiting(t.db, alice, true)).map((w) => w.id)).not.toContain(res.id);
    expect((await listWaiting(t.db, await signIn('erin'), false)).map((w) => w.id)).not.toContain(res.id);

    const approved = await decide(res.id, frank, 'approved', 'checked the replica lag');
    expect(approved.status).toBe('queued');
    expect((await opRow(res.id)).status).toBe('queued');
    expect(await targetsOf(res.id)).toBe(1);
    const [granted] = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'approval.granted'), eq(auditEntries.objectId, String(res.id))));
    expect(granted!.username).toBe('frank');
    expect(granted!.changes).toMatchObject({
      requester: [null, 'alice'],
      approver: [null, 'frank'],
      comment: [null, 'checked the replica lag'],
    });
    // A second decision on it is refused: it no longer waits.
    await expect(decide(res.id, await signIn('alice'), 'denied')).rejects.toThrow();
    // Nothing works this database's queue: take it back before the next test starts a worker.
    await cancelOperation(t.db, res.id, alice);
  });

  it('refuses an approval once the inventory moved, and the operation ends with nothing run', async () => {
    const alice = await signIn('alice');
    const res = await request(alice, restartAction, [replica]);
    const [before] = await t.db.select({ port: instances.port }).from(instances).where(eq(instances.id, replica));
    await t.db
      .update(instances)
      .set({ port: before!.port + 1000 })
      .where(eq(instances.id, replica));
    try {
      const err = await decide(res.id, await signIn('frank'), 'approved').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SubmitError);
      expect((err as SubmitError).code).toBe('stale');
    } finally {
      await t.db.update(instances).set({ port: before!.port }).where(eq(instances.id, replica));
    }
    const op = await opRow(res.id);
    expect(op.status).toBe('cancelled');
    expect(op.endedReason).toMatch(/plan changed/);
    expect(await targetsOf(res.id)).toBe(0);
  });

  it('expires: by the chore, and when decided on late with no chore run (a worker restarted meanwhile)', async () => {
    const alice = await signIn('alice');
    const frank = await signIn('frank');
    const swept = await request(alice, restartAction, [replica]);
    const late = await request(alice, restartAction, [replica]);
    await t.db
      .update(operations)
      .set({ approvalExpiresAt: new Date(Date.now() - 1000) })
      .where(sql`${operations.id} IN (${swept.id}, ${late.id})`);
    expect(await expireApprovals(t.db, [swept.id])).toBe(1);
    expect((await opRow(swept.id)).status).toBe('expired');
    await expect(decide(swept.id, frank, 'approved')).rejects.toThrow(OperationStateError);
    await expect(decide(late.id, frank, 'approved')).rejects.toThrow(/expired/);
    expect((await opRow(late.id)).status).toBe('expired');
    expect(await targetsOf(swept.id)).toBe(0);
    expect(await targetsOf(late.id)).toBe(0);
    const audited = await t.db.$count(auditEntries, and(eq(auditEntries.action, 'approval.expired')));
    expect(audited).toBeGreaterThanOrEqual(2);
  });

  it('ends denied with the denial and both people in the audit log', async () => {
    const res = await request(await signIn('alice'), restartAction, [replica]);
    const out = await decide(res.id, await signIn('frank'), 'denied', 'not during the sale');
    expect(out.status).toBe('denied');
    const op = await opRow(res.id);
    expect(op.status).toBe('denied');
    expect(op.endedReason).toBe('denied by frank: not during the sale');
    expect(op.finishedAt).not.toBeNull();
    expect(await targetsOf(res.id)).toBe(0);
  });

  it('approved, runs on the real worker as the requester asked', async () => {
    worker = await startTestWorker(
      { ...t.lab, database: { ...t.lab.database, url: t.url } },
      `approvals-${randomBytes(4).toString('hex')}`,
      2,
    );
    const res = await request(await signIn('alice'), reloadAction, [replica]);
    expect(res.status).toBe('awaiting_approval');
    await decide(res.id, await signIn('frank'), 'approved');
    const done = await waitForOperation(t.db, res.id);
    expect(done.op.status).toBe('succeeded');
    expect(done.op.requestedByName).toBe('alice');
    const [entry] = await t.db
      .select()
      .from(auditEntries)
      .where(
        and(
          eq(auditEntries.action, 'operation.reload'),
          eq(auditEntries.objectType, 'operations'),
          eq(auditEntries.objectId, String(res.id)),
        ),
      );
    expect(entry!.changes).toMatchObject({ approvedBy: [null, 'frank'] });
  });

  it('runs at once where no policy covers the action', async () => {
    const bob = await signIn('bob');
    const staging = await t.db.execute<{ id: number }>(sql`
      SELECT i.id FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id
      WHERE e.name = 'staging' AND h.name = 'identity' AND i.role = 'replica' ORDER BY i.id LIMIT 1`);
    const plan = await planOperation(t.db, bob.access, reloadAction, [staging.rows[0]!.id]);
    const res = await submitOperation(
      t.db,
      null,
      reloadAction,
      { instanceIds: [staging.rows[0]!.id], digest: plan.digest, confirmation: '', idempotencyKey: randomBytes(8).toString('hex') },
      bob,
    );
    expect(res.status).toBe('queued');
    expect(await targetsOf(res.id)).toBe(1);
    await cancelOperation(t.db, res.id, bob);
  });
});

describe('two approvals asked for', () => {
  it('queues it once when both approvers decide at the same moment', async () => {
    const [policy] = await t.db
      .insert(approvalPolicies)
      .values({ environmentId: env.get('staging')!, actions: ['reload'], approvalsRequired: 2 })
      .returning();
    try {
      const staging = await t.db.execute<{ id: number }>(sql`
        SELECT i.id FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id
        WHERE e.name = 'staging' AND h.name = 'identity' AND i.role = 'replica' ORDER BY i.id LIMIT 1`);
      const bob = await signIn('bob');
      const res = await request(bob, reloadAction, [staging.rows[0]!.id]);
      expect(res.status).toBe('awaiting_approval');
      const [alice, erin] = [await signIn('alice'), await signIn('erin')];
      const outs = await Promise.all([decide(res.id, alice, 'approved'), decide(res.id, erin, 'approved')]);
      expect(outs.map((o) => o.status).sort()).toEqual(['awaiting_approval', 'queued']);
      const op = await opRow(res.id);
      expect(op.status === 'queued' || op.status === 'running' || op.status === 'succeeded').toBe(true);
      expect(await targetsOf(res.id)).toBe(1);
      await waitForOperation(t.db, res.id);
    } finally {
      await t.db.delete(approvalPolicies).where(eq(approvalPolicies.id, policy!.id));
    }
  });
});

describe('approval policies', () => {
  it('are a global admin\u2019s to add, change and delete: an environment\u2019s own admin cannot lift its rule', async () => {
    const def = getEditable('approval-policies')!;
    const form = {
      environmentId: String(env.get('production')),
      actions: 'switchover',
      typedConfirmation: 'false',
      approvalsRequired: '2',
      approverRole: 'admin',
      approverGroup: '',
      ttlSeconds: '3600',
      requesterMayApprove: 'false',
      breakGlassForbidden: '',
    };
    for (const name of ['alice', 'erin'])
      await expect(saveObject(t.db, def, null, form, await signIn(name)), name).rejects.toThrow(/globally/);
    const [existing] = await t.db.select().from(approvalPolicies);
    await expect(deleteObjects(t.db, def, [existing!.id], await signIn('alice'))).rejects.toThrow(AccessDenied);
    expect(await t.db.$count(approvalPolicies)).toBe(1);
    const admin: Actor = { id: null, username: 'system', access: SYSTEM_ACCESS };
    const bad = await saveObject(t.db, def, null, { ...form, actions: 'restart, drop-everything' }, admin);
    expect(bad.ok).toBe(false);
    const good = await saveObject(t.db, def, null, form, admin);
    expect(good.ok).toBe(true);
    const [saved] = await t.db.select().from(approvalPolicies).where(eq(approvalPolicies.approvalsRequired, 2));
    expect(saved!.actions).toEqual(['switchover']);
  });
});
