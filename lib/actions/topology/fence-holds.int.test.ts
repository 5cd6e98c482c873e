// A fence by "connection refused" holds only while it holds: a DR failover whose old primary refused
// connections when it was fenced, and which its host starts again (as a supervisor would) right after
// the promotion. On a lab of its own (environment "fence", herd delta on 127.0.31.x): it leaves a herd
// with two primaries, which no other test file may see.
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { herds, instances, operationSteps, operationTargets, webhookDeliveries, webhooks } from '@/db/schema';
import { crash, livePrimary } from '@/lib/lab/faults';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { labIdentity, run as runAs } from '@/lib/lab/proc';
import { seededDatabase } from '@/lib/lab/seed';
import { registerFleetGauges } from '@/lib/features/metrics/fleet';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { startWebhookReceiver, type WebhookReceiver } from '@/lib/testing/webhook-receiver';
import { startTestWorker, submitPlanned, waitForOperation, type TestWorker } from '@/lib/testing/operations';
import { waitFor } from '@/lib/testing/wait';
import { operationView } from '@/lib/engine/operation-view';
import { planOperation } from '@/lib/engine/plan';
import { drFailoverAction } from '@/lib/actions/topology/dr-failover.action';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-fence-${process.pid}.json`);
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker | null = null;
let herdId: number;
let receiver: WebhookReceiver;
const received = () => receiver.received;

beforeAll(async () => {
  lab = await startLab({
    aws: false,
    ldap: false,
    file: LAB_FILE,
    fleet: { environments: ['fence'], herds: ['delta'], replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.31' },
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  herdId = (await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'delta')))[0]!.id;
  receiver = await startWebhookReceiver();
  await db.insert(webhooks).values({
    name: 'fleet alarms',
    url: receiver.url('/alarms'),
    secret: 'fence-test',
    events: ['herd.two_primaries', 'operation.failed'],
  });
  worker = await startTestWorker(lab, 'fence', 2);
}, 180_000);

afterAll(async () => {
  await worker?.close();
  await ifAssigned(receiver)?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

const url = (i: Pick<LabInstance, 'address' | 'port'>) => `postgres://postgres@${i.address}:${i.port}/postgres`;

/** pgherd_herds_two_primaries for environment "fence", as a scrape reads it. */
async function scrapedTwoPrimaries(): Promise<number | undefined> {
  const registry = new Registry();
  registerFleetGauges(
    registry,
    () => db,
    () => [],
  );
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'pgherd_herds_two_primaries');
  return (metric as { values: { labels: Record<string, string>; value: number }[] } | undefined)?.values.find(
    (v) => v.labels.environment === 'fence',
  )?.value;
}

describe('DR failover whose old primary is started again after the promotion', () => {
  it('says the herd has two primaries: on the operation, in the inventory the metric counts, and in a herd.two_primaries webhook', async () => {
    const old = await livePrimary(lab, 'delta');
    const [cand] = lab.instances.filter((i) => i.herd === 'delta' && i.server !== old.server);
    expect(await scrapedTwoPrimaries()).toBe(0);
    // Its port refuses connections when it is fenced: it is stopped (a crash, as its host going down would).
    await crash(lab, old);
    const plan = await planOperation(db, SYSTEM_ACCESS, drFailoverAction, [herdId], {});
    const id = await submitPlanned(db, worker!.queue, drFailoverAction, { herdIds: [herdId] }, {}, plan, { username: 'fence-test' });
    // Right after the fence, its host starts it again, as a supervisor would: it comes back as the primary it was.
    const fenceStep = `fence ${old.server}:${old.port}`;
    await waitFor('the fence step succeeded', async () =>
      (
        await db
          .select({ s: operationSteps.status })
          .from(operationSteps)
          .innerJoin(operationTargets, eq(operationTargets.id, operationSteps.targetId))
          .where(and(eq(operationTargets.operationId, id), eq(operationSteps.name, fenceStep)))
      ).some((r) => r.s === 'succeeded'),
    );
    await runAs(labIdentity(), [
      `${lab.pgBin}/pg_ctl`,
      '-D',
      old.dataDirectory,
      '-l',
      `${old.dataDirectory}/pg_ctl.log`,
      '-w',
      '-t',
      '60',
      'start',
    ]);
    const { op, targets, steps } = await waitForOperation(db, id, { timeoutMs: 90_000 });

    // Both answer as primaries: the promotion happened, and the old one is back.
    const primaries = [];
    for (const m of [old, cand!])
      if (!(await query<{ r: boolean }>(url(m), 'SELECT pg_is_in_recovery() AS r'))[0]!.r) primaries.push(m.server);
    expect(primaries.sort()).toEqual([old.server, cand!.server].sort());

    // The operation says so (its last step: the write name and PgBouncers were moved first).
    expect(op.status).toBe('failed');
    const said = new RegExp(
      `${old.server}:\\d+ answers as a primary again \\(timeline \\d+\\) after ${cand!.server}:\\d+ was promoted: the herd has two primaries`,
    );
    expect(targets[0]!.error).toMatch(new RegExp(`^two primaries: ${said.source}`));
    expect(targets[0]!.outcome).toMatch(new RegExp(`^TWO PRIMARIES: ${said.source}`));
    expect(steps.find((s) => s.name === fenceStep)?.stdoutTail).toContain(`its host refuses connections on port ${old.port}`);
    expect(steps.find((s) => s.name === `keep ${old.server}:${old.port} stopped`)?.status).toBe('succeeded');
    expect(steps.at(-2)).toMatchObject({ name: `watch ${old.server}:${old.port} stay fenced`, status: 'failed' });
    // The failover stopped there: the herd is looked at again, and it has primaries (not none).
    expect(steps.at(-1)).toMatchObject({ name: 'look at the herd again if the failover stopped', status: 'succeeded' });
    expect(steps.at(-1)!.stdoutTail).toMatch(/the herd has a primary: /);
    const view = await operationView(db, id, SYSTEM_ACCESS);
    expect(view!.targets[0]!.outcome).toMatch(/^TWO PRIMARIES: /);
    expect(view!.targets[0]!.error).toMatch(/^two primaries: /);

    // The inventory has it as what was seen (a running primary, no longer fenced), and the metric counts the herd.
    const rows = await db
      .select({ id: instances.id, role: instances.role, state: instances.state })
      .from(instances)
      .where(eq(instances.herdId, herdId));
    expect(rows.filter((r) => r.role === 'primary' && r.state === 'running')).toHaveLength(2);
    expect(await scrapedTwoPrimaries()).toBe(1);

    // The webhook receiver is told, with the herd and the operation.
    const told = await waitFor('the herd.two_primaries delivery', async () => received().find((r) => r.event === 'herd.two_primaries'));
    expect(told.body).toMatchObject({
      event: 'herd.two_primaries',
      herd: { id: herdId, name: 'delta', environment: 'fence' },
      operation: { id, action: 'dr-failover' },
      text: expect.stringMatching(/^pgherd: herd fence\/delta has two primaries: /),
    });
    const [delivery] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.event, 'herd.two_primaries'));
    expect(delivery).toMatchObject({ status: 'delivered' });
  }, 180_000);
});
