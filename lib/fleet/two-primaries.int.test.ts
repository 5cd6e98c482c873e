// No false alarm for a planned switchover, and an alarm for a real split. A switchover records its
// promoted member as the primary before it records the old one otherwise: for that while (and until the
// next worker ends the operation of one that died) the inventory names two running primaries while
// Postgres has one. pgherd_herds_two_primaries, the fleet health finding and the herd.two_primaries
// webhook stay silent through two switchovers and one whose worker is killed with SIGKILL after its
// promotion; then a replica promoted by hand beside the primary (two members accepting writes) raises
// all three. On a lab of its own (environment "twin", herd echo on 127.0.93.x): no other file sees it.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { and, eq, sql } from 'drizzle-orm';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { herds, instances, operationSteps, operationTargets, servers, webhooks } from '@/db/schema';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { labIdentity, run as runAs } from '@/lib/lab/proc';
import { seededDatabase } from '@/lib/lab/seed';
import { registerFleetGauges } from '@/lib/features/metrics/fleet';
import { fleetHealth } from '@/lib/features/agents/health';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { refreshFleet } from '@/lib/fleet/refresher';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { runOperation, startTestWorker, submitPlanned, waitForOperation, openQueue, type TestWorker } from '@/lib/testing/operations';
import { waitFor } from '@/lib/testing/wait';
import { startWebhookReceiver, type WebhookReceiver } from '@/lib/testing/webhook-receiver';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-twin-${process.pid}.json`);
const PREFIX = 'twin';
const TTL_MS = 6000;
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker | null = null;
let herdId: number;
let receiver: WebhookReceiver;
/** The herd.two_primaries deliveries the receiver got. */
const alarms = () => receiver.received.filter((r) => r.event === 'herd.two_primaries');

beforeAll(async () => {
  process.env.PGHERD_LEASE_TTL_MS = String(TTL_MS);
  lab = await startLab({
    aws: false,
    ldap: false,
    file: LAB_FILE,
    fleet: { environments: ['twin'], herds: ['echo'], replicas: 2, sites: ['dc-east', 'dc-west'], subnet: '127.0.93' },
    pgbouncer: [],
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  herdId = (await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'echo')))[0]!.id;
  receiver = await startWebhookReceiver();
  await db
    .insert(webhooks)
    .values({ name: 'fleet alarms', url: receiver.url('/alarms'), secret: 'twin-test', events: ['herd.two_primaries'] });
  worker = await startTestWorker(lab, PREFIX, 2);
}, 180_000);

afterAll(async () => {
  await worker?.close();
  await ifAssigned(receiver)?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

/** pgherd_herds_two_primaries for environment "twin", as a scrape reads it. */
async function scraped(): Promise<number | undefined> {
  const registry = new Registry();
  registerFleetGauges(
    registry,
    () => db,
    () => [],
  );
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'pgherd_herds_two_primaries');
  return (metric as { values: { labels: Record<string, string>; value: number }[] } | undefined)?.values.find(
    (v) => v.labels.environment === 'twin',
  )?.value;
}

const recordedPrimaries = async () =>
  db.$count(instances, and(eq(instances.herdId, herdId), eq(instances.role, 'primary'), eq(instances.state, 'running')));

/**
 * Reads the metric, the finding and the inventory again and again until `done` settles: the highest
 * the metric and the finding said, how many reads found the inventory naming two running primaries,
 * and how many scrapes left the gauge out.
 */
async function watchWhile(done: Promise<unknown>) {
  const state = { over: false };
  const ended = done.finally(() => {
    state.over = true;
  });
  const seen = { metric: 0, finding: 0, recordedTwo: 0, reads: 0, unscraped: 0 };
  while (!state.over) {
    const [recorded, metric, health] = await Promise.all([recordedPrimaries(), scraped(), fleetHealth(db, null, { herdId })]);
    seen.reads++;
    if (recorded > 1) seen.recordedTwo++;
    if (metric === undefined) seen.unscraped++;
    seen.metric = Math.max(seen.metric, metric ?? 0);
    seen.finding = Math.max(seen.finding, health.twoPrimaries.total);
  }
  await ended;
  return seen;
}

/** The herd's members as the inventory has them, each with what Postgres says now (down: no answer). */
async function members() {
  const rows = await db
    .select({ id: instances.id, port: instances.port, dataDirectory: instances.dataDirectory, host: servers.address })
    .from(instances)
    .innerJoin(servers, eq(servers.id, instances.serverId))
    .where(eq(instances.herdId, herdId));
  return Promise.all(
    rows.map(async (r) => {
      const x = await query<{ r: boolean }>(`postgres://postgres@${r.host}:${r.port}/postgres`, 'SELECT pg_is_in_recovery() AS r').catch(
        () => null,
      );
      return { ...r, now: !x ? ('down' as const) : x[0]!.r ? ('replica' as const) : ('primary' as const) };
    }),
  );
}
const writable = async () => (await members()).filter((m) => m.now === 'primary');

describe('two primaries', () => {
  it('stays silent through two switchovers while the inventory names two primaries for a moment', async () => {
    let recordedTwo = 0;
    for (let k = 0; k < 2; k++) {
      const op = runOperation(db, worker!.queue, switchoverAction, { herdIds: [herdId] });
      const seen = await watchWhile(op);
      const r = await op;
      expect(r.op.status, JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
      console.log(`switchover ${k + 1}: ${seen.reads} reads, ${seen.recordedTwo} with two running primaries recorded`);
      expect(seen).toMatchObject({ metric: 0, finding: 0, unscraped: 0 });
      recordedTwo += seen.recordedTwo;
      expect(await writable()).toHaveLength(1);
    }
    // The moment was there to be misread (the inventory named two), and nothing said so.
    expect(recordedTwo).toBeGreaterThan(0);
    expect(alarms()).toEqual([]);
  }, 240_000);

  it('stays silent while a switchover whose worker was killed after its promotion waits for the next worker', async () => {
    // This file's worker stops: a worker process of its own takes the switchover and is killed.
    await worker!.close();
    worker = null;
    let child: ChildProcess | null = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'jobs/worker.ts')], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        DATABASE_URL: lab.database.url,
        REDIS_URL: lab.redis!.url,
        PGHERD_SSH_KEY: lab.ssh!.privateKeyPath,
        PGHERD_QUEUE_PREFIX: PREFIX,
        PGHERD_REFRESH_INTERVAL_MS: '0',
        PGHERD_LEASE_TTL_MS: String(TTL_MS),
      },
      stdio: 'ignore',
    });
    const q = openQueue(lab, PREFIX);
    try {
      const plan = await planOperation(db, SYSTEM_ACCESS, switchoverAction, [herdId]);
      const id = await submitPlanned(db, q.queue, switchoverAction, { herdIds: [herdId] }, {}, plan);
      await waitFor(
        'the promotion done',
        async () =>
          (
            await db
              .select({ id: operationSteps.id })
              .from(operationSteps)
              .innerJoin(operationTargets, eq(operationTargets.id, operationSteps.targetId))
              .where(
                and(
                  eq(operationTargets.operationId, id),
                  sql`${operationSteps.name} LIKE 'promote %'`,
                  eq(operationSteps.status, 'succeeded'),
                ),
              )
          ).length > 0,
        60_000,
      );
      child.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
      child = null;
      // Until the next worker ends the dead target (its lease expired) and a refresh reads the herd as it is.
      const settled = (async () => {
        worker = await startTestWorker(lab, PREFIX, 2);
        const r = await waitForOperation(db, id, { timeoutMs: 60_000 });
        await refreshFleet(db, { ids: (await members()).map((m) => m.id), timeoutMs: 2000 });
        return r;
      })();
      const seen = await watchWhile(settled);
      console.log(`killed worker: ${seen.reads} reads, ${seen.recordedTwo} with two running primaries recorded`);
      expect((await settled).targets[0]!.status).not.toBe('succeeded');
      expect(seen.recordedTwo).toBeGreaterThan(0);
      expect(seen).toMatchObject({ metric: 0, finding: 0, unscraped: 0 });
      expect(await writable()).toHaveLength(1);
      expect(alarms()).toEqual([]);
    } finally {
      child?.kill('SIGKILL');
      await q.close();
    }
  }, 180_000);

  it('raises the metric, the finding and the webhook when two members accept writes at once', async () => {
    // A replica still in recovery (it streamed from the old primary, which stays stopped) promoted by hand.
    const now = await members();
    const primary = now.find((m) => m.now === 'primary')!;
    const other = now.find((m) => m.now === 'replica')!;
    await runAs(labIdentity(), [`${lab.pgBin}/pg_ctl`, '-D', other.dataDirectory, '-w', 'promote']);
    expect((await writable()).map((m) => m.id).sort()).toEqual([primary.id, other.id].sort());
    await refreshFleet(db, { ids: now.map((m) => m.id), timeoutMs: 2000 });
    expect(await scraped()).toBe(1);
    const health = await fleetHealth(db, null, { herdId });
    expect(health.twoPrimaries.total).toBe(1);
    expect(health.twoPrimaries.rows[0]!.primaries.map((p) => p.id).sort()).toEqual([primary.id, other.id].sort());
    // The webhook is told, once: the first herd.two_primaries delivery of this file is this split's, so
    // none came from the switchovers before it.
    const told = await waitFor('the herd.two_primaries delivery', async () => alarms()[0]);
    expect(told.body).toMatchObject({
      event: 'herd.two_primaries',
      herd: { id: herdId, name: 'echo', environment: 'twin' },
      text: expect.stringMatching(/^pgherd: herd twin\/echo has two primaries: .* accept writes at once, each asked/),
    });
    expect(alarms()).toHaveLength(1);
  }, 60_000);
});
