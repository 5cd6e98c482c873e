// Two people for production, against the lab's directory and a real worker: a production DBA's restart
// waits with nothing queued or held; the requester (any session or token of theirs), viewers and a
// staging-only admin cannot approve it, a production operator can; a plan that changed, an expiry, a
// denial each end it with nothing run; approved, it runs. Policies are a global admin's alone.
import { randomBytes } from 'node:crypto';
import { and, desc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  approvalPolicies,
  auditEntries,
  environments,
  herdLeases,
  instances,
  operationApprovals,
  operations,
  operationTargets,
  roleBindings,
  ruleRuns,
  rules,
  webhooks,
} from '@/db/schema';
import { checkLink, linkOperation, signLink, type LinkClaims } from '@/lib/features/operations/approval-links';
import { deliverDue, processEvents } from '@/lib/features/rules/webhooks';
import { startWebhookReceiver, type WebhookReceiver } from '@/lib/testing/webhook-receiver';
import { waitFor } from '@/lib/testing/wait';
import { ruleBody } from '@/lib/features/rules/rule-body';
import { createRule, updateRule } from '@/lib/features/rules/rules';
import { fireGroup } from '@/lib/features/rules/fire';
import { approveRule } from '@/lib/features/rules/rule-approval';
import { ruleApproval } from '@/lib/features/rules/rule-shape';
import { seedLabFleet } from '@/lib/lab/seed';
import { restartAction } from '@/lib/actions/control/restart.action';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { planOperation } from '@/lib/engine/plan';
import { BreakGlassError, submitOperation } from '@/lib/engine/submit';
import { AccessDenied, SYSTEM_ACCESS, type Actor } from '@/lib/engine/access';
import { OperationStateError } from '@/lib/engine/hold';
import { SubmitError } from '@/lib/engine/submit-errors';
import type { LdapConfig } from '@/lib/adapters/ldap/ldap';
import { labLdapConfig, signInLab } from '@/lib/testing/lab-people';
import { saveObject, deleteObjects } from '@/lib/features/admin/mutations';
import { getEditable } from '@/lib/features/admin/registry';
import { cancelOperation } from '@/lib/features/operations/operation-control';
import { approvalView, breakGlassUses, decideOperation, expireApprovals, listWaiting } from '@/lib/features/operations/approvals';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { startTestWorker, waitForOperation, type TestWorker } from '@/lib/testing/operations';

let t: TestDb;
let cfg: LdapConfig;
let worker: TestWorker | undefined;
const env = new Map<string, number>();
let replica: number;

async function signIn(username: string): Promise<Actor & { id: number }> {
  return signInLab(t.db, t.lab, cfg, username, '10.7.0.2');
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

/** The first replica (or, `other`, another member than `replica`) of a lab herd, by id. */
async function memberOf(environment: string, herd: string, other = false): Promise<number> {
  const r = await t.db.execute<{ id: number }>(sql`
    SELECT i.id FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id
    WHERE e.name = ${environment} AND h.name = ${herd} AND ${other ? sql`i.id <> ${replica}` : sql`i.role = 'replica'`} ORDER BY i.id LIMIT 1`);
  return r.rows[0]!.id;
}

const opRow = async (id: number) => (await t.db.select().from(operations).where(eq(operations.id, id)))[0]!;
const targetsOf = (id: number) => t.db.$count(operationTargets, eq(operationTargets.operationId, id));
const decide = (id: number, who: Actor, decision: 'approved' | 'denied', comment = '') =>
  decideOperation(t.db, worker?.queue ?? null, id, who, { decision, comment, via: 'console' });

beforeAll(async () => {
  // The worker a test starts tells webhooks too (its notify chore): its links must be the same absolute ones.
  process.env.PGHERD_CONSOLE_URL = 'https://pgherd.example';
  t = await freshDatabase();
  cfg = labLdapConfig(t.lab);
  await seedLabFleet(t.db, t.lab);
  for (const e of await t.db.select().from(environments)) env.set(e.name, e.id);
  replica = await memberOf('production', 'orders');
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
    const staging = await memberOf('staging', 'identity');
    const plan = await planOperation(t.db, bob.access, reloadAction, [staging]);
    const res = await submitOperation(
      t.db,
      null,
      reloadAction,
      { instanceIds: [staging], digest: plan.digest, confirmation: '', idempotencyKey: randomBytes(8).toString('hex') },
      bob,
    );
    expect(res.status).toBe('queued');
    expect(await targetsOf(res.id)).toBe(1);
    await cancelOperation(t.db, res.id, bob);
  });
});

describe('approve from chat', () => {
  it('a Slack webhook hears of the request with signed links that open the page; each misuse of a link is refused', async () => {
    const receiver = await startWebhookReceiver();
    try {
      await t.db.insert(webhooks).values({
        name: 'approvals channel',
        url: receiver.url('/slack'),
        secret: 'chat-test',
        events: ['approval.requested', 'approval.granted', 'approval.denied'],
        format: 'slack',
      });
      const res = await request(await signIn('alice'), reloadAction, [replica]);
      await processEvents(t.db, 'https://pgherd.example');
      await deliverDue(t.db);
      const asked = await waitFor('the approval.requested delivery', () =>
        receiver.received.find((r) => r.event === 'approval.requested' && (r.body.text as string).includes(`#${res.id}`)),
      );
      type Block = { type: string; elements?: { text: { text: string }; url: string }[]; text?: { text: string } };
      const blocks = asked.body.blocks as Block[];
      expect(blocks[0]!.text!.text).toContain(`alice asks for approval of operation #${res.id}: reload of 1 target in production`);
      const buttons = blocks.find((b) => b.type === 'actions')!.elements!;
      expect(buttons.map((b) => b.text.text)).toEqual(['Approve…', 'Deny…', 'Open in pgherd']);
      const approve = new URL(buttons[0]!.url);
      expect(approve.origin + approve.pathname).toBe('https://pgherd.example/approval-link');
      const token = approve.searchParams.get('t')!;
      expect(linkOperation(token)).toBe(res.id);
      const denyToken = new URL(buttons[1]!.url).searchParams.get('t')!;

      // The link is good for this operation only, unchanged, and decides nothing by being opened.
      expect(await checkLink(t.db, token, res.id)).toMatchObject({ ok: true, claims: { o: res.id, a: 'approved' } });
      expect((await opRow(res.id)).status).toBe('awaiting_approval');
      const other = await request(await signIn('alice'), reloadAction, [replica]);
      expect(await checkLink(t.db, token, other.id)).toMatchObject({ ok: false, why: expect.stringMatching(/not this one/) });
      const [body, sig] = token.split('.');
      const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), o: other.id })).toString(
        'base64url',
      );
      expect(await checkLink(t.db, `${forged}.${sig!}`, other.id)).toMatchObject({ ok: false, why: expect.stringMatching(/changed/) });
      const otherDigest = await signLink(t.db, { id: res.id, digest: 'f'.repeat(32) }, 'approved', new Date(Date.now() + 60_000));
      expect(await checkLink(t.db, otherDigest, res.id)).toMatchObject({ ok: false, why: expect.stringMatching(/another plan/) });
      const [op] = await t.db.select({ d: operations.planDigest }).from(operations).where(eq(operations.id, res.id));
      const expired = await signLink(t.db, { id: res.id, digest: op!.d }, 'approved', new Date(Date.now() - 1000));
      expect(await checkLink(t.db, expired, res.id)).toMatchObject({ ok: false, why: expect.stringMatching(/expired/) });

      // The person who opened it decides, as themselves: a viewer's click is refused, the link stays unspent.
      const claims = ((await checkLink(t.db, token, res.id)) as { claims: LinkClaims }).claims;
      await expect(
        decideOperation(t.db, null, res.id, await signIn('bob'), { decision: 'approved', comment: '', via: 'link', link: claims }),
      ).rejects.toThrow(AccessDenied);
      expect((await checkLink(t.db, token, res.id)).ok).toBe(true);
      const frank = await signIn('frank');
      const done = await decideOperation(t.db, null, res.id, frank, {
        decision: 'approved',
        comment: 'from chat',
        via: 'link',
        link: claims,
      });
      expect(done.status).toBe('queued');
      // Used once: replayed (its twin, the Deny link, names another nonce and a decision no longer possible).
      expect(await checkLink(t.db, token, res.id)).toMatchObject({ ok: false, why: expect.stringMatching(/used already/) });
      expect((await checkLink(t.db, denyToken, res.id)).ok).toBe(true);
      await expect(
        decideOperation(t.db, null, res.id, await signIn('carol'), { decision: 'approved', comment: '', via: 'link', link: claims }),
      ).rejects.toThrow();
      const [decision] = await t.db.select().from(operationApprovals).where(eq(operationApprovals.operationId, res.id));
      expect(decision).toMatchObject({ username: 'frank', via: 'link', comment: 'from chat' });
      await processEvents(t.db, 'https://pgherd.example');
      await deliverDue(t.db);
      await waitFor('the approval.granted delivery', () =>
        receiver.received.find(
          (r) => r.event === 'approval.granted' && (r.body.text as string).includes(`frank approved operation #${res.id}`),
        ),
      );
      await cancelOperation(t.db, res.id, await signIn('alice'));
      await cancelOperation(t.db, other.id, await signIn('alice'));
    } finally {
      await t.db.delete(webhooks);
      await receiver.close();
    }
  });
});

describe('break glass', () => {
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    await t.db
      .insert(webhooks)
      .values({ name: 'alarms', url: receiver.url('/alarms'), secret: 'glass-test', events: ['approval.break_glass'] });
  });
  afterAll(async () => {
    await t.db.delete(webhooks);
    await receiver.close();
  });

  it('runs at once for an admin with a reason, said everywhere; refused to an operator and where a policy forbids it', async () => {
    const alice = await signIn('alice');
    const plan = await planOperation(t.db, alice.access, reloadAction, [replica]);
    const input = (reason: string) => ({
      instanceIds: [replica],
      digest: plan.digest,
      confirmation: plan.typeToConfirm ?? '',
      idempotencyKey: randomBytes(8).toString('hex'),
      breakGlass: reason,
    });
    // Too short a reason, or an operator: refused, nothing made.
    const before = await t.db.$count(operations);
    await expect(submitOperation(t.db, null, reloadAction, input('now'), alice)).rejects.toThrow(BreakGlassError);
    await expect(submitOperation(t.db, null, reloadAction, input('\u200b'.repeat(12)), alice)).rejects.toThrow(/at least 10/);
    await expect(submitOperation(t.db, null, reloadAction, input(`ab${'\u0007'.repeat(9)}cd`), alice)).rejects.toThrow(/at least 10/);
    const frank = await signIn('frank');
    const franks = await planOperation(t.db, frank.access, reloadAction, [replica]);
    await expect(
      submitOperation(t.db, null, reloadAction, { ...input('the pager says so'), digest: franks.digest }, frank),
    ).rejects.toThrow(/admin/);
    expect(await t.db.$count(operations)).toBe(before);

    const res = await submitOperation(t.db, worker?.queue ?? null, reloadAction, input('primary disk full, approvers asleep'), alice);
    expect(res.status).toBe('queued');
    const op = await opRow(res.id);
    expect(op.breakGlassReason).toBe('primary disk full, approvers asleep');
    expect(await targetsOf(res.id)).toBe(1);
    const [entry] = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'approval.break_glass'), eq(auditEntries.objectId, String(res.id))));
    expect(entry).toMatchObject({ username: 'alice', changes: { reason: [null, 'primary disk full, approvers asleep'] } });
    await processEvents(t.db, 'https://pgherd.example');
    await deliverDue(t.db);
    const heard = await waitFor('the approval.break_glass delivery', () =>
      receiver.received.find((r) => r.event === 'approval.break_glass' && (r.body.text as string).includes(`#${res.id}`)),
    );
    expect(heard.body.text).toContain('BREAK GLASS: alice ran operation');
    expect(heard.body).toMatchObject({ approval: { breakGlass: true, by: 'alice', reason: 'primary disk full, approvers asleep' } });
    expect((await breakGlassUses(t.db, [env.get('production')!])).map((b) => b.id)).toContain(res.id);
    expect((await breakGlassUses(t.db, [env.get('staging')!])).map((b) => b.id)).not.toContain(res.id);
    const view = await approvalView(t.db, res.id, frank);
    expect(view?.breakGlassReason).toBe('primary disk full, approvers asleep');
    await waitForOperation(t.db, res.id);

    // A policy that forbids it for this action: even an admin asks for approval.
    const [strict] = await t.db
      .insert(approvalPolicies)
      .values({ environmentId: env.get('production')!, actions: ['reload'], breakGlassForbidden: ['reload'] })
      .returning();
    try {
      await expect(submitOperation(t.db, null, reloadAction, input('the pager says so again'), alice)).rejects.toThrow(
        /forbids break glass/,
      );
    } finally {
      await t.db.delete(approvalPolicies).where(eq(approvalPolicies.id, strict!.id));
    }
  });
});

describe('two approvals asked for', () => {
  it('queues it once when both approvers decide at the same moment', async () => {
    const [policy] = await t.db
      .insert(approvalPolicies)
      .values({ environmentId: env.get('staging')!, actions: ['reload'], approvalsRequired: 2 })
      .returning();
    try {
      const bob = await signIn('bob');
      const res = await request(bob, reloadAction, [await memberOf('staging', 'identity')]);
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

describe('a rule under a policy', () => {
  it('is approved once by an approver, never its owner; edited, its next fire is skipped until approved again', async () => {
    const [alice, frank, bob] = [await signIn('alice'), await signIn('frank'), await signIn('bob')];
    const group = 'UTC|0 4 * * *';
    const make = (name: string, ids: number[]) =>
      ruleBody.parse({
        name,
        schedule: { cron: ['0 4 * * *'], timezone: 'UTC' },
        action: 'reload',
        instanceIds: ids,
        confirmation: 'production',
      });
    const rule = await createRule(t.db, alice, make('nightly production reload', [replica]));
    expect(await ruleApproval(t.db, rule)).toMatchObject({ approved: false, again: false });
    let due = Date.now() + 1000;
    const fire = async () => {
      due += 60_000;
      await fireGroup({ db: t.db, queue: null, log: () => {} }, group, new Date(due), 5000, new Date(due));
      const [run] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.ruleId, rule.id)).orderBy(desc(ruleRuns.id)).limit(1);
      return run!;
    };
    expect(await fire()).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^needs approval: /) });

    // Its owner (any session or token of hers) and a production viewer cannot approve it.
    await expect(approveRule(t.db, await signIn('alice'), rule.id)).rejects.toThrow(/another person must approve it/);
    // bob may not even read it (a 404, as for a rule that does not exist).
    await expect(approveRule(t.db, bob, rule.id)).rejects.toThrow(/no rule/);
    expect((await t.db.select().from(rules).where(eq(rules.id, rule.id)))[0]!.approvedShape).toBeNull();
    await approveRule(t.db, frank, rule.id);
    expect(await ruleApproval(t.db, (await t.db.select().from(rules).where(eq(rules.id, rule.id)))[0]!)).toMatchObject({
      approved: true,
      approvedBy: 'frank',
    });
    const ran = await fire();
    expect(ran.status).toBe('started');
    const [entry] = await t.db
      .select()
      .from(auditEntries)
      .where(
        and(
          eq(auditEntries.action, 'operation.reload'),
          eq(auditEntries.objectType, 'operations'),
          eq(auditEntries.objectId, String(ran.operationId)),
        ),
      );
    expect(entry!.changes).toMatchObject({ ruleApprovedBy: [null, 'frank'] });
    await cancelOperation(t.db, ran.operationId!, alice);
    await waitForOperation(t.db, ran.operationId!);

    // Alice changes what it runs on: approval again before any fire runs.
    await updateRule(t.db, alice, rule.id, make('nightly production reload', [await memberOf('production', 'orders', true)]));
    expect(await fire()).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^needs approval again/) });
    // Approved again, then widened in when it runs only (its grace): approval again all the same.
    await approveRule(t.db, frank, rule.id);
    await updateRule(t.db, alice, rule.id, {
      ...make('nightly production reload', [await memberOf('production', 'orders', true)]),
      graceSeconds: 0,
    });
    expect(await fire()).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^needs approval again/) });

    // Where a policy asks for two approvals, one is not enough, and one person twice is one.
    const [two] = await t.db
      .insert(approvalPolicies)
      .values({ environmentId: env.get('production')!, actions: ['reload'], approvalsRequired: 2 })
      .returning();
    await t.db
      .insert(roleBindings)
      .values({ role: 'operator', subjectType: 'user', subject: 'dave', environmentId: env.get('production')! });
    try {
      await approveRule(t.db, frank, rule.id);
      expect(await fire()).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^needs approval again/) });
      await expect(approveRule(t.db, await signIn('frank'), rule.id)).rejects.toThrow(/another person's approval too/);
      await approveRule(t.db, await signIn('dave'), rule.id);
      const row = (await t.db.select().from(rules).where(eq(rules.id, rule.id)))[0]!;
      expect(await ruleApproval(t.db, row)).toMatchObject({ approved: true, approvals: 2, required: 2, approvedBy: 'frank, dave' });
    } finally {
      await t.db.delete(approvalPolicies).where(eq(approvalPolicies.id, two!.id));
      await t.db.delete(roleBindings).where(eq(roleBindings.subject, 'dave'));
    }
    await t.db.delete(rules).where(eq(rules.id, rule.id));
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
    // Nor can she choose her approvers: binding a role in production (which has a policy) is a global admin's.
    const bindings = getEditable('role-bindings')!;
    const binding = { role: 'operator', subjectType: 'user', subject: 'dave', environmentId: String(env.get('production')) };
    await expect(saveObject(t.db, bindings, null, binding, await signIn('alice'))).rejects.toThrow(/needs the admin role globally/);
    expect(await t.db.$count(roleBindings, eq(roleBindings.subject, 'dave'))).toBe(0);
    // In staging (no policy) her operator role there is not enough anyway; erin, staging's admin, still binds there.
    const staged = await saveObject(t.db, bindings, null, { ...binding, environmentId: String(env.get('staging')) }, await signIn('erin'));
    expect(staged.ok).toBe(true);
    await t.db.delete(roleBindings).where(eq(roleBindings.subject, 'dave'));
    const admin: Actor = { id: null, username: 'system', access: SYSTEM_ACCESS };
    const bad = await saveObject(t.db, def, null, { ...form, actions: 'restart, drop-everything' }, admin);
    expect(bad.ok).toBe(false);
    const good = await saveObject(t.db, def, null, form, admin);
    expect(good.ok).toBe(true);
    const [saved] = await t.db.select().from(approvalPolicies).where(eq(approvalPolicies.approvalsRequired, 2));
    expect(saved!.actions).toEqual(['switchover']);
  });
});
