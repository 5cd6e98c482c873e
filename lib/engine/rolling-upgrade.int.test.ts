// Upgrading pgherd without stopping the fleet's work: two consoles behind HAProxy (checking GET /readyz,
// never trying a request twice)
// and two workers, each replaced in turn (SIGTERM, then a new process of the build) while a rolling
// restart of 20 instances runs and a client asks the API through the load balancer every 100 ms. Every
// target succeeds at its first attempt, no request fails, and a worker told to stop finishes the target
// it runs and is granted no herd after it was told. On a lab of its own: environment "rolling", five
// herds of four on 127.0.90.x.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '@/db/client';
import { instances, operations } from '@/db/schema';
import { buildConsole, prepareDatabase, startConsole, startWorkerProcess, type RunningConsole } from '@/lib/lab/console';
import { frontServers, startConsoleFront } from '@/lib/lab/control-plane';
import { PROJECT_ROOT, startLab, stopLab, trackProcess, type LabInfo } from '@/lib/lab/lab';
import { freePort } from '@/lib/lab/ports';
import { labIdentity, stopPid } from '@/lib/lab/proc';
import { waitFor } from '@/lib/testing/wait';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-rolling-upgrade-${String(process.pid)}.json`);
const DRAIN_MS = 2500;
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void> = () => Promise.resolve();
let token = '';
let front = '';
const secret = randomBytes(32).toString('base64url');
const consoles: { site: string; port: number; run: RunningConsole }[] = [];
const workers: ChildProcess[] = [];
const drainBefore = process.env.PGHERD_WEB_DRAIN_MS;

beforeAll(async () => {
  // The console as built for this commit (npm test builds it before the integration tests).
  if (!existsSync(path.join(PROJECT_ROOT, '.next', 'BUILD_ID'))) await buildConsole();
  lab = await startLab({
    file: LAB_FILE,
    aws: false,
    ldap: false,
    fleet: {
      environments: ['rolling'],
      herds: ['r1', 'r2', 'r3', 'r4', 'r5'],
      replicas: 3,
      sites: ['dc-east', 'dc-west'],
      subnet: '127.0.90',
    },
  });
  ({ apiToken: token } = await prepareDatabase(lab, { username: 'admin', password: randomBytes(12).toString('base64url') }));
  const c = createDb(lab.database.url, 2);
  db = c.db;
  closeDb = () => c.pool.end();
  // A console told to stop answers 503 on /readyz for this long before it closes: HAProxy (checks every
  // 500 ms, down after two misses) has taken it out by then.
  process.env.PGHERD_WEB_DRAIN_MS = String(DRAIN_MS);
  for (const site of ['a', 'b']) {
    const port = await freePort();
    consoles.push({ site, port, run: await startConsole(lab, { port, quiet: true, labFile: LAB_FILE, site, secret }) });
  }
  const frontPort = await freePort();
  const pid = await startConsoleFront(
    labIdentity(),
    frontDir(),
    frontPort,
    consoles.map((x) => ({ name: `console-${x.site}`, port: x.port })),
    // No second try: a request sent to a console that closed fails, as with many load balancers.
    { retries: 0 },
  );
  trackProcess(LAB_FILE, { name: 'haproxy-front', pid, program: 'haproxy', signal: 'SIGTERM' });
  front = `http://127.0.0.1:${String(frontPort)}`;
  for (const n of [1, 2]) workers.push(await startWorker(n));
}, 600_000);

afterAll(async () => {
  if (drainBefore === undefined) delete process.env.PGHERD_WEB_DRAIN_MS;
  else process.env.PGHERD_WEB_DRAIN_MS = drainBefore;
  await closeDb();
  await stopLab(LAB_FILE);
}, 120_000);

const frontDir = () => path.join(lab.dir, 'front');

const startWorker = (n: number) =>
  startWorkerProcess(lab, { quiet: true, labFile: LAB_FILE, name: `worker-${String(n)}`, env: { PGHERD_REFRESH_INTERVAL_MS: '0' } });

const api = (p: string, init: { method?: string; body?: string } = {}) =>
  fetch(`${front}${p}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });

/** A client of the API through the load balancer: every 100 ms, the operation; every answer that is not a 200 is a failure. */
function client(id: number) {
  const failures: string[] = [];
  let asked = 0;
  const state = { stop: false };
  const done = (async () => {
    while (!state.stop) {
      asked++;
      const res = await api(`/api/v1/operations/${String(id)}`).catch((err: unknown) => err as Error);
      if (res instanceof Error) failures.push(`${new Date().toISOString()} ${res.message}`);
      else if (res.status !== 200) failures.push(`${new Date().toISOString()} ${String(res.status)} ${await res.text()}`);
      else await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    failures,
    asked: () => asked,
    stop: async () => {
      state.stop = true;
      await done;
    },
  };
}

/** The leases granted while watched (holder, generation), sampled every 50 ms. */
function leaseWatch() {
  const seen = new Map<string, { holder: string; at: number }>();
  const state = { stop: false };
  const done = (async () => {
    while (!state.stop) {
      const rows = await db
        .execute<{ holder: string; generation: string }>(sql`SELECT holder, generation FROM herd_leases`)
        .catch(() => null);
      for (const r of rows?.rows ?? []) if (!seen.has(r.generation)) seen.set(r.generation, { holder: r.holder, at: performance.now() });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    grantedTo: (pid: number, after: number) =>
      [...seen.values()].filter((g) => g.holder.includes(`:${String(pid)}:`) && g.at > after).map((g) => g.holder),
    stop: async () => {
      state.stop = true;
      await done;
    },
  };
}

describe('a rolling upgrade of pgherd', () => {
  it('replaces each console and each worker in turn during a rolling restart of 20: no target fails, no request fails', async () => {
    const ids = (await db.select({ id: instances.id }).from(instances).orderBy(instances.id)).map((r) => r.id);
    expect(ids).toHaveLength(20);
    const waves = { size: 1, gate: { soakSeconds: 2 } };
    const planRes = await api('/api/v1/operations/plan', {
      method: 'POST',
      body: JSON.stringify({ action: 'restart', instanceIds: ids, waves }),
    });
    expect(planRes.status, await planRes.clone().text()).toBe(200);
    const plan = (await planRes.json()) as { digest: string; confirm: string | null };
    const made = await api('/api/v1/operations', {
      method: 'POST',
      body: JSON.stringify({ action: 'restart', instanceIds: ids, waves, digest: plan.digest, confirm: plan.confirm ?? '' }),
    });
    expect(made.status, await made.clone().text()).toBe(202);
    const { id } = (await made.json()) as { id: number };
    const running = async () => !(await db.select({ f: operations.finishedAt }).from(operations).where(eq(operations.id, id)))[0]?.f;
    const c = client(id);
    const leases = leaseWatch();
    const told: { pid: number; at: number }[] = [];
    try {
      await waitFor('the first targets to end', async () => {
        const r = await db.execute<{ n: number }>(
          sql`SELECT count(*)::int AS n FROM operation_targets WHERE operation_id = ${id} AND status = 'succeeded'`,
        );
        return (r.rows[0]?.n ?? 0) >= 2 ? true : undefined;
      });
      // Each worker in turn: told to stop (it finishes what it runs, takes nothing new), then a new one.
      for (const [k, old] of workers.entries()) {
        expect(await running()).toBe(true);
        told.push({ pid: old.pid!, at: performance.now() });
        await stopPid(old.pid!, 'SIGTERM', 60_000);
        workers[k] = await startWorker(k + 1);
      }
      // Each console in turn: it drains (503 on /readyz while it serves), closes, and a new one takes its
      // port; the next is stopped once the front sends requests to the new one (as an operator waits for
      // the balancer's green light), not when the new one first answers: the front needs two checks.
      for (const x of consoles) {
        expect(await running()).toBe(true);
        await x.run.stop();
        await waitFor(`the front to take console ${x.site} out`, async () =>
          (await frontServers(frontDir())).get(`console-${x.site}`)?.startsWith('DOWN') ? true : undefined,
        );
        x.run = await startConsole(lab, { port: x.port, quiet: true, labFile: LAB_FILE, site: x.site, secret });
        await waitFor(`console ${x.site} back behind the front`, async () =>
          (await frontServers(frontDir())).get(`console-${x.site}`) === 'UP' ? true : undefined,
        );
      }
      const op = await waitFor(
        'the rolling restart to end',
        async () =>
          (await db.select().from(operations).where(eq(operations.id, id)))[0]?.finishedAt &&
          (await db.select().from(operations).where(eq(operations.id, id)))[0],
        300_000,
      );
      const targets = await db.execute<{ status: string; attempts: number }>(
        sql`SELECT status, attempts FROM operation_targets WHERE operation_id = ${id}`,
      );
      expect(op.status).toBe('succeeded');
      expect(targets.rows.map((t) => [t.status, t.attempts])).toEqual(ids.map(() => ['succeeded', 1]));
    } finally {
      await c.stop();
      await leases.stop();
    }
    console.log(
      `rolling upgrade of pgherd under a rolling restart of 20: ${String(c.asked())} API requests through the front, ${String(c.failures.length)} failed`,
    );
    expect(c.failures).toEqual([]);
    expect(c.asked()).toBeGreaterThan(100);
    // No worker was granted a herd after it was told to stop (a grant first seen within 300 ms of the signal was made before it).
    for (const t of told) expect(leases.grantedTo(t.pid, t.at + 300)).toEqual([]);
  }, 600_000);
});
