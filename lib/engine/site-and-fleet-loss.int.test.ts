// The worst day: the fleet's site dc-east and pgherd's own site A lost at the same moment (every
// dc-east primary's Postgres and every process lab.json places on site A SIGKILLed at once). A DBA
// signed in on the console of site B (an admin of production, reaching pgherd's database through site
// B's HAProxy and the queue through the sentinels) fails over every herd whose primary was in dc-east,
// as soon as site B answers. Measured: from the kill to the operation accepted, and to every herd
// writable with its write name moved (asked of BIND). Every herd ends with one primary, in dc-west.
// On a lab of its own: three herds of production on 127.0.84.x, pgherd's control plane on 127.0.85.1-3,
// a worker process on each of sites a and b.
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { roleBindings, users } from '@/db/schema';
import { startWorkerProcess } from '@/lib/lab/console';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { openQueue, waitForOperation } from '@/lib/testing/operations';
import { loseSiteAndFleet, writeAnswer } from '@/lib/testing/site-loss';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-site-fleet-loss-${String(process.pid)}.json`);
const PREFIX = 'site-fleet-loss';
const HERDS = ['billing', 'orders', 'ledger'];
let lab: LabInfo;
let dbA: Db;
let closeA: () => Promise<void> = () => Promise.resolve();
let q: ReturnType<typeof openQueue> | null = null;
let dbaId = 0;

beforeAll(async () => {
  lab = await startLab({
    file: LAB_FILE,
    aws: false,
    ldap: false,
    fleet: { environments: ['production'], herds: HERDS, replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.84' },
    controlPlane: { subnet: '127.0.85' },
  });
  const c = await seededDatabase(lab, 4);
  dbA = c.db;
  closeA = () => c.pool.end();
  // The DBA: a local user, admin of production (DR failover asks for admin), not a superuser.
  const [u] = await dbA.insert(users).values({ username: 'dba' }).returning({ id: users.id });
  dbaId = u!.id;
  const [prod] = await dbA.execute<{ id: number }>(sql`SELECT id FROM environments WHERE name = 'production'`).then((r) => r.rows);
  await dbA.insert(roleBindings).values({ role: 'admin', subjectType: 'user', subject: 'dba', environmentId: prod!.id });
  q = openQueue(lab, PREFIX);
  const env = { PGHERD_QUEUE_PREFIX: PREFIX, PGHERD_REFRESH_INTERVAL_MS: '0', PGHERD_LEASE_TTL_MS: '45000' };
  for (const site of ['a', 'b']) await startWorkerProcess(lab, { quiet: true, labFile: LAB_FILE, site, name: `worker-${site}`, env });
}, 300_000);

afterAll(async () => {
  await q?.close();
  await closeA().catch(() => {});
  await stopLab(LAB_FILE);
}, 120_000);

describe("the fleet's site and pgherd's site lost together", () => {
  it('site B takes the DR failover of every dc-east herd: accepted, then every herd writable with its name moved, one primary each', async () => {
    const east = lab.instances.filter((i) => i.site === 'dc-east');
    expect(east.map((i) => i.herd).sort()).toEqual([...HERDS].sort());
    for (const h of HERDS) expect(await writeAnswer(lab, h)).toBe(east.find((i) => i.herd === h)!.server);

    await closeA();
    const r = await loseSiteAndFleet(LAB_FILE, { fleetSite: 'dc-east', dbaId, queue: q!.queue });
    try {
      console.log(
        `dc-east and site A lost together: DR failover accepted on site B ${(r.acceptedMs / 1000).toFixed(1)} s after the kill (target 45 s; Patroni led pgherd's database again at ${(r.patroniMs / 1000).toFixed(1)} s); every herd writable with its name moved at ${(r.writableMs / 1000).toFixed(1)} s (target 60 s)`,
      );
      expect(r.herdIds).toHaveLength(HERDS.length);
      expect(r.acceptedMs).toBeLessThan(45_000);
      expect(r.writableMs).toBeLessThan(60_000);
      const done = await waitForOperation(r.b.db, r.operationId, { timeoutMs: 120_000 });
      expect(done.op.status, JSON.stringify(done.targets.map((t) => [t.label, t.status, t.error]))).toBe('succeeded');
      expect(done.op.requestedByName).toBe('dba');
      // One primary each: dc-west's member answers as one, dc-east's answers nothing.
      for (const h of HERDS) {
        const west = lab.instances.find((i) => i.herd === h && i.site === 'dc-west')!;
        expect((await query<{ r: boolean }>(west.dsn, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
        const old = east.find((i) => i.herd === h)!;
        expect(
          await query(old.dsn, 'SELECT 1').then(
            () => 'answers',
            () => 'silent',
          ),
        ).toBe('silent');
      }
    } finally {
      await r.b.end();
    }
  }, 400_000);
});
