// Webhooks: received on an HTTP endpoint of the test's own, signatures checked, a failed delivery tried
// again with backoff until the receiver takes it, or given up after the last attempt.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import { and, asc, eq, sql } from 'drizzle-orm';
import IORedis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blackouts, environments, herds, instances, roleBindings, users, webhookDeliveries, webhooks } from '@/db/schema';
import { loadAccess } from '@/lib/engine/access';
import { seedLabFleet } from '@/lib/lab/seed';
import { startWorker } from '@/jobs/start-worker';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { waitFor } from '@/lib/testing/wait';
import { fireRequested } from './fire';
import { ruleBody } from './rule-body';
import { createRule, requestRun } from './rules';
import type { Actor } from '@/lib/engine/access';
import { createWebhook, deleteWebhook, deliverDue, MAX_ATTEMPTS, processEvents, webhookBody } from './webhooks';

let t: TestDb;
let root: Actor;
let server: http.Server;
let base: string;
const received: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
/** How the receiver answers each path: a list of statuses, the last one repeated. */
const answers = new Map<string, number[]>();
const prefix = `hooks-${randomBytes(4).toString('hex')}`;

const deliveriesOf = (webhookId: number) =>
  t.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, webhookId)).orderBy(asc(webhookDeliveries.id));
/** What a worker does on each tick: the outbox, then the deliveries due. */
const tick = async () => {
  while ((await processEvents(t.db, 'https://pgherd.example')) > 0);
  await deliverDue(t.db);
};

beforeAll(async () => {
  process.env.PGHERD_WEBHOOK_RETRY_MS = '20';
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  const [u] = await t.db.insert(users).values({ username: 'root', source: 'local', isSuperuser: true }).returning();
  root = { id: u!.id, username: 'root', access: await loadAccess(t.db, u!.id) };
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body });
      const list = answers.get(req.url ?? '') ?? [200];
      res.writeHead(list.length > 1 ? list.shift()! : list[0]!).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
});
afterAll(async () => {
  delete process.env.PGHERD_WEBHOOK_RETRY_MS;
  await new Promise((r) => server.close(r));
  if (ifAssigned(t)) {
    const redis = new IORedis(t.lab.redis!.url);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
  await ifAssigned(t)?.close();
});

const replicaOf = async (env: string, herd: string) =>
  (
    await t.db
      .select({ id: instances.id })
      .from(instances)
      .innerJoin(herds, eq(herds.id, instances.herdId))
      .innerJoin(environments, eq(environments.id, herds.environmentId))
      .where(and(eq(environments.name, env), eq(herds.name, herd), eq(instances.role, 'replica')))
      .orderBy(asc(instances.id))
  )[0]!.id;

describe('webhooks', () => {
  it('a skipped run reaches a global and a rule webhook, signed; a 500 is tried again until the receiver takes it', async () => {
    answers.set('/global', [500, 200]);
    const global = await createWebhook(t.db, root, webhookBody.parse({ name: 'pager', url: `${base}/global` }));
    const rule = await createRule(
      t.db,
      root,
      ruleBody.parse({
        name: 'frozen',
        action: 'reload',
        instanceIds: [await replicaOf('staging', 'orders')],
        schedule: { cron: ['0 3 * * *'], timezone: 'UTC' },
      }),
    );
    const mine = await createWebhook(
      t.db,
      root,
      webhookBody.parse({ name: 'team', url: `${base}/team`, ruleId: rule.id, events: ['rule.run.skipped'] }),
    );
    const [freeze] = await t.db
      .insert(blackouts)
      .values({ name: 'freeze', startsAt: new Date(Date.now() - 60_000), endsAt: new Date(Date.now() + 3600_000) })
      .returning();
    try {
      const { runId } = await requestRun(t.db, root, rule.id);
      await fireRequested({ db: t.db, queue: null, log: () => {} }, runId);
    } finally {
      await t.db.delete(blackouts).where(eq(blackouts.id, freeze!.id));
    }
    await waitFor('both delivered', async () => {
      await tick();
      const all = [...(await deliveriesOf(global.id)), ...(await deliveriesOf(mine.id))];
      return all.length === 2 && all.every((d) => d.status === 'delivered');
    });
    const [g] = await deliveriesOf(global.id);
    expect(g).toMatchObject({ event: 'rule.run.skipped', status: 'delivered', attempts: 2, responseStatus: 200, error: null });
    const globalPosts = received.filter((r) => r.path === '/global');
    expect(globalPosts).toHaveLength(2);
    for (const r of [...globalPosts, ...received.filter((x) => x.path === '/team')]) {
      const secret = r.path === '/global' ? global.secret : mine.secret;
      const ts = String(r.headers['x-pgherd-timestamp']);
      expect(r.headers['x-pgherd-signature']).toBe(`sha256=${createHmac('sha256', secret).update(`${ts}.${r.body}`).digest('hex')}`);
      expect(r.headers['x-pgherd-event']).toBe('rule.run.skipped');
      const body = JSON.parse(r.body) as { text: string; rule: { name: string }; run: { status: string; reason: string } };
      expect(body.rule.name).toBe('frozen');
      expect(body.run).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^inside the blackout "freeze"/) });
      expect(body.text).toMatch(/^pgherd: rule "frozen": run skipped \(inside the blackout "freeze"/);
    }
    // A signature made with another secret does not match: the receiver can tell.
    expect(globalPosts[0]!.headers['x-pgherd-signature']).not.toBe(
      `sha256=${createHmac('sha256', mine.secret)
        .update(`${String(globalPosts[0]!.headers['x-pgherd-timestamp'])}.${globalPosts[0]!.body}`)
        .digest('hex')}`,
    );
  });

  it("a rule's operation that succeeds is told to a webhook that asked for successes, by a worker alone", async () => {
    answers.set('/global', [200]);
    const rule = await createRule(
      t.db,
      root,
      ruleBody.parse({
        name: 'works',
        action: 'reload',
        instanceIds: [await replicaOf('staging', 'billing')],
        schedule: { cron: ['0 3 * * *'], timezone: 'UTC' },
      }),
    );
    const hook = await createWebhook(
      t.db,
      root,
      webhookBody.parse({ name: 'wins', url: `${base}/wins`, ruleId: rule.id, events: ['rule.run.succeeded'] }),
    );
    const w = await startWorker({
      databaseUrl: t.url,
      redisUrl: t.lab.redis!.url,
      sshKeyPath: t.lab.ssh!.privateKeyPath,
      concurrency: 2,
      refreshEveryMs: 0,
      reconcileEveryMs: 200,
      queuePrefix: prefix,
      quiet: true,
    });
    try {
      await requestRun(t.db, root, rule.id);
      // The worker alone: it takes the run, runs the operation, hears it finished and delivers.
      const [d] = await waitFor('the success delivered', async () => {
        const ds = await deliveriesOf(hook.id);
        return ds.length && ds[0]!.status === 'delivered' ? ds : null;
      });
      expect(d).toMatchObject({ event: 'rule.run.succeeded', attempts: 1 });
      expect((d!.payload as { operation: { status: string; url: string } }).operation).toMatchObject({ status: 'succeeded' });
    } finally {
      await w.close();
    }
  });

  it('a receiver that never answers is given up after the last attempt, every attempt recorded', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const hook = await createWebhook(
      t.db,
      root,
      webhookBody.parse({ name: 'gone', url: `http://127.0.0.1:${String(port)}/x`, events: ['operation.failed'] }),
    );
    // An operation ending failed (as the engine's settling leaves one): the trigger writes the event.
    const { rows } = await t.db.execute<{ id: number }>(
      sql`INSERT INTO operations (action, status, plan_digest, requested_by_name) VALUES ('restart', 'running', 'x', 'someone') RETURNING id`,
    );
    await t.db.execute(sql`UPDATE operations SET status = 'failed', finished_at = now() WHERE id = ${rows[0]!.id}`);
    const [d] = await waitFor('given up', async () => {
      await tick();
      const ds = await deliveriesOf(hook.id);
      return ds.length && ds[0]!.status === 'failed' ? ds : null;
    });
    expect(d).toMatchObject({ event: 'operation.failed', attempts: MAX_ATTEMPTS, responseStatus: null });
    expect(d!.error).toMatch(/ECONNREFUSED/);
  });

  it('a webhook whose address webhooks may not reach is refused when saved, and a delivery to one is refused once, never sent', async () => {
    const hook = await createWebhook(
      t.db,
      root,
      webhookBody.parse({ name: 'inside', url: `${base}/inside`, events: ['operation.failed'] }),
    );
    const saved = process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS;
    // The operator no longer lets webhooks reach loopback (or the name now resolves there): nothing reaches it.
    process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS = '';
    try {
      await expect(createWebhook(t.db, root, webhookBody.parse({ name: 'inside again', url: `${base}/inside` }))).rejects.toMatchObject({
        status: 400,
        details: [{ path: 'url', message: expect.stringMatching(/127\.0\.0\.1 is a loopback/) }],
      });
      const before = received.length;
      await t.db
        .insert(webhookDeliveries)
        .values({ webhookId: hook.id, event: 'operation.failed', payload: { event: 'operation.failed' } });
      await deliverDue(t.db);
      const [d] = await deliveriesOf(hook.id);
      expect(d).toMatchObject({ status: 'failed', attempts: 1, responseStatus: null });
      expect(d!.error).toMatch(/^refused: 127\.0\.0\.1 is a loopback/);
      expect(received.length).toBe(before);
    } finally {
      process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS = saved;
    }
  });
  it("another user's rule and webhook are not there for someone who may not read them: no name, no delete", async () => {
    const staging = (await t.db.select().from(environments).where(eq(environments.name, 'staging')))[0]!.id;
    const made = await t.db
      .insert(users)
      .values([
        { username: 'pat', source: 'local' },
        { username: 'quinn', source: 'local' },
      ])
      .returning();
    await t.db
      .insert(roleBindings)
      .values(
        ['pat', 'quinn'].map((subject) => ({ role: 'operator' as const, subjectType: 'user' as const, subject, environmentId: staging })),
      );
    const [pat, quinn] = await Promise.all(
      made.map(async (u): Promise<Actor> => ({ id: u.id, username: u.username, access: await loadAccess(t.db, u.id) })),
    );
    const rule = await createRule(
      t.db,
      pat!,
      ruleBody.parse({
        name: 'pat secret rule',
        action: 'reload',
        instanceIds: [await replicaOf('staging', 'orders')],
        schedule: { cron: ['0 3 * * *'], timezone: 'UTC' },
      }),
    );
    const hook = await createWebhook(t.db, pat!, webhookBody.parse({ name: 'pat pager', url: `${base}/pat`, ruleId: rule.id }));
    // quinn asks to hear about pat's rule: answered as a rule that does not exist, its name not given.
    const err = await createWebhook(t.db, quinn!, webhookBody.parse({ name: 'snoop', url: `${base}/snoop`, ruleId: rule.id })).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ status: 400, details: [{ path: 'ruleId', message: `no rule #${String(rule.id)}` }] });
    expect(JSON.stringify(err)).not.toContain('pat secret rule');
    // ...and deleting pat's webhook is a 404, the webhook still there.
    await expect(deleteWebhook(t.db, quinn!, hook.id)).rejects.toMatchObject({ status: 404, message: `no webhook #${String(hook.id)}` });
    expect(await t.db.$count(webhooks, eq(webhooks.id, hook.id))).toBe(1);
    await deleteWebhook(t.db, pat!, hook.id);
    expect(await t.db.$count(webhooks, eq(webhooks.id, hook.id))).toBe(0);
  });
});
