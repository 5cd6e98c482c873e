// A switchover whose worker loses pgherd's database, or dies, while the herd's PgBouncer is paused:
// traffic through PgBouncer is answered again within the pause budget with no resume by hand, what the
// target owed clients is settled by the next worker, and the inventory says what the herd was left as.
// On a lab of its own (environment "bad", herd alpha on 127.0.13.x, a PgBouncer in front of it).
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { herds, owedCleanups } from '@/db/schema';
import { seededDatabase } from '@/lib/lab/seed';
import { livePrimary as labPrimary } from '@/lib/lab/faults';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { labIdentity, run as runAs } from '@/lib/lab/proc';
import { showDatabases } from '@/lib/adapters/pgbouncer/admin';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { openQueue, runOperation, submitPlanned, waitForOperation } from '@/lib/testing/operations';
import { startTcpProxy, type TcpProxy } from '@/lib/testing/tcp-proxy';
import { startWriter } from '@/lib/testing/writer';
import { waitFor } from '@/lib/testing/wait';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { planOperation } from '@/lib/engine/plan';
import { poolerConsole } from '@/lib/fleet/pooler';
import { refreshFleet } from '@/lib/fleet/refresher';
import { startWorker } from '@/jobs/start-worker';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { startAction } from '@/lib/actions/control/start.action';
import { rebuildAction } from './rebuild.action';
import { remasterAction } from './remaster.action';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-pooler-bad-${process.pid}.json`);
const PREFIX = 'pooler-bad';
const TTL_MS = 10_000;
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let queue: ReturnType<typeof openQueue>;
let herdId: number;

beforeAll(async () => {
  // A short lease: the worker cut off from its database gives the herd up after 7.5 s, and it is no one
  // else's for 2.5 s more.
  process.env.PGHERD_LEASE_TTL_MS = String(TTL_MS);
  lab = await startLab({
    aws: false,
    file: LAB_FILE,
    fleet: { environments: ['bad'], herds: ['alpha'], replicas: 2, sites: ['dc-east', 'dc-west'], subnet: '127.0.13' },
    pgbouncer: [{ environment: 'bad', herd: 'alpha' }],
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  herdId = (await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'alpha')))[0]!.id;
  queue = openQueue(lab, PREFIX);
  await query(lab.pgbouncer[0]!.dsn, 'CREATE TABLE writes (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
}, 180_000);

afterAll(async () => {
  await queue.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

const pooler = () => lab.pgbouncer[0]!;
const url = (i: Pick<LabInstance, 'address' | 'port'>) => `postgres://postgres@${i.address}:${i.port}/postgres`;
const paused = async () => {
  const p = pooler();
  const dbs = await showDatabases(
    poolerConsole({ host: p.address, port: p.port, adminUser: p.adminUser, serverEnvironment: p.environment }),
  );
  return dbs.get(p.databases[0]!)!;
};
const inRecovery = async (i: LabInstance) => (await query<{ r: boolean }>(url(i), 'SELECT pg_is_in_recovery() AS r'))[0]!.r;
/** The resume processes armed on the lab's hosts (all local): their command lines. */
const armed = () => {
  try {
    return execFileSync('pgrep', ['-af', 'pgherd-resume-'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
};
const owedRows = () => db.select().from(owedCleanups).where(eq(owedCleanups.herdId, herdId)).orderBy(desc(owedCleanups.id));

/** A writer through PgBouncer numbering its rows from 1 again (the table emptied first). */
async function freshWriter() {
  await query(pooler().dsn, 'TRUNCATE writes');
  return startWriter(pooler().dsn);
}

/** The writer commits through PgBouncer; else its last errors say why not. */
const writerCommits = (writer: ReturnType<typeof startWriter>) =>
  waitFor('the writer commits', async () => writer.acked.length > 20).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: ${writer.errors.slice(-3).join(' | ')}`);
  });

async function submitSwitchover(params: Record<string, unknown>) {
  const plan = await planOperation(db, SYSTEM_ACCESS, switchoverAction, [herdId], params);
  expect(plan.targets[0]!.refused).toBeUndefined();
  return { plan, id: await submitPlanned(db, queue.queue, switchoverAction, { herdIds: [herdId] }, params, plan) };
}

const dbEndpoint = () => {
  const u = new URL(lab.database.url);
  return { host: u.hostname, port: Number(u.port) };
};
const viaProxy = (port: number) => {
  const u = new URL(lab.database.url);
  u.host = `127.0.0.1:${port}`;
  return u.toString();
};

const members = () => lab.instances.filter((i) => i.herd === 'alpha');
const refs = () => loadInstanceRefs(db, [], { herdIds: [herdId] });
const byServer = async () => new Map((await refs()).map((r) => [r.hostname, r]));
const workerOpts = (databaseUrl: string) => ({
  databaseUrl,
  redisUrl: lab.redis!.url,
  sshKeyPath: lab.ssh!.privateKeyPath,
  queuePrefix: PREFIX,
  reconcileEveryMs: 300,
  refreshEveryMs: 0,
  quiet: true,
});

/** Starts a member's Postgres with pg_ctl on its host, as a person would. */
const startByHand = (m: LabInstance) =>
  runAs(labIdentity(), [`${lab.pgBin}/pg_ctl`, '-D', m.dataDirectory, '-w', 'start', '-l', path.join(m.dataDirectory, 'log.txt')]);

/** After a test: every member answers, the one primary is where it is, the others stream from it. */
async function mend() {
  const w = await startWorker(workerOpts(lab.database.url));
  try {
    await refreshFleet(db, { ids: (await refs()).map((r) => r.id), timeoutMs: 2000 });
    let inv = await byServer();
    if (![...inv.values()].some((r) => r.role === 'primary' && r.state === 'running')) {
      // Stopped before any promotion: the old primary is started again by hand, as a person would.
      const old = members().find((m) => inv.get(m.server)!.role === 'primary')!;
      await startByHand(old);
      await refreshFleet(db, { ids: (await refs()).map((r) => r.id), timeoutMs: 2000 });
      inv = await byServer();
    }
    for (const r of inv.values()) {
      if (r.state === 'fenced' || r.state === 'needs_rebuild' || r.state === 'stopped') {
        const { op } = await runOperation(db, queue.queue, rebuildAction, { instanceIds: [r.id] }, {}, { timeoutMs: 120_000 });
        expect(op.status).toBe('succeeded');
      }
    }
    const primary = await labPrimary(lab, 'alpha');
    for (const m of members().filter((x) => x.server !== primary.server)) {
      const [w2] = await query<{ h: string | null }>(
        url(m),
        "SELECT sender_host AS h FROM pg_stat_wal_receiver WHERE status = 'streaming'",
      );
      if (w2?.h !== primary.address) {
        const { op } = await runOperation(db, queue.queue, remasterAction, { instanceIds: [(await byServer()).get(m.server)!.id] });
        expect(op.status).toBe('succeeded');
      }
    }
    await refreshFleet(db, { ids: (await refs()).map((r) => r.id), timeoutMs: 2000 });
  } finally {
    await w.close();
  }
}

/** Waits until `i` has left recovery, asking every millisecond over one connection. */
async function promoted(i: LabInstance, timeoutMs: number): Promise<void> {
  const c = new pg.Client({ connectionString: url(i) });
  await c.connect();
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      if (rows[0]?.r === false) return;
      if (Date.now() > until) throw new Error(`${i.server} was not promoted within ${String(timeoutMs)} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
  } finally {
    await c.end();
  }
}

describe('PgBouncer paused mid-switchover', () => {
  it('is planned with its bound; a bound out of range is refused', async () => {
    const plan = await planOperation(db, SYSTEM_ACCESS, switchoverAction, [herdId], { pauseBudgetSeconds: 20 });
    expect(plan.targets[0]!.facts?.find((f) => f.label === 'PgBouncer pause')?.value).toMatch(
      /^20 s at most: a RESUME armed on each PgBouncer's host fires then/,
    );
    expect(plan.targets[0]!.steps.join('\n')).toContain('paused 20 s at most');
    for (const bad of [2, 901, 'soon'])
      await expect(planOperation(db, SYSTEM_ACCESS, switchoverAction, [herdId], { pauseBudgetSeconds: bad })).rejects.toThrow(
        /pauseBudgetSeconds/,
      );
  });

  it("pgherd's database frozen after the promotion: the worker that lost the herd points PgBouncer at the new primary and resumes it; the inventory follows", async () => {
    const proxy: TcpProxy = await startTcpProxy(dbEndpoint());
    const w = await startWorker(workerOpts(viaProxy(proxy.port)));
    const writer = await freshWriter();
    try {
      const old = await labPrimary(lab, 'alpha');
      const cand = members().find((m) => m.server !== old.server)!;
      const third = members().find((m) => m.server !== old.server && m.server !== cand.server)!;
      await writerCommits(writer);
      const { id } = await submitSwitchover({ candidateInstanceId: (await byServer()).get(cand.server)!.id, pauseBudgetSeconds: 30 });
      // The switch moves on within milliseconds of the promotion (its next statement on pgherd's database
      // records it): watched over one connection, every millisecond, not every 50 ms with a new one.
      await promoted(cand, 60_000);
      // pgherd's database freezes (every byte held, as when its processes are stopped with SIGSTOP).
      proxy.stall();
      const frozenAt = Date.now();
      expect((await paused()).paused).toBe(true);
      const resumed = await waitFor(
        'PgBouncer resumed, at the new primary',
        async () => {
          const e = await paused();
          return !e.paused && e.host === cand.address && Date.now();
        },
        30_000,
      );
      // Given back once the lease is given up (3/4 of its TTL), not when the 30 s budget runs out.
      expect(resumed - frozenAt).toBeLessThan(TTL_MS + 4000);
      const before = writer.acked.length;
      await waitFor('writes go on through PgBouncer', async () => writer.acked.length > before + 20);
      // PgBouncer may have been resumed by the flow itself (its re-point needs no database) or by the
      // cleanup after the lease was lost: either way, the database stays frozen until the herd's lease
      // has run out (read here directly, not through the frozen proxy), so the worker has lost the herd
      // whichever step it was in.
      const herdId = (await byServer()).get(cand.server)!.herdId;
      await waitFor(
        "the herd's lease to run out",
        async () =>
          (
            await db.execute<{ held: boolean }>(
              sql`SELECT EXISTS (SELECT 1 FROM herd_leases WHERE herd_id = ${herdId} AND expires_at > now()) AS held`,
            )
          ).rows[0]?.held === false,
        TTL_MS + 10_000,
      );
      proxy.restore();
      const { targets } = await waitForOperation(db, id, { timeoutMs: 60_000 });
      expect(targets[0]!.status).toBe('interrupted');
      // Recorded by the worker itself (its cleanups run all the same) or, when the database came back to
      // the reconcile first, as a worker that lost the herd's lease: the same outcome in either's words.
      expect(targets[0]!.error).toMatch(
        /run all the same, as they only give back what it took .*: .*PgBouncer \S+: resume \(always\)|the worker running it stopped or lost the herd's lease/,
      );
      // What it owed is settled: by its cleanup, or, where the database did not take the record, by the next reconcile.
      const settled = await waitFor('the owed resume settled', async () => {
        const [r] = await owedRows();
        return r?.settledAt ? r : undefined;
      });
      const settledToken = settled.resumeToken;
      expect(armed().filter((l) => l.includes(settledToken))).toEqual([]);
      await writer.stop();
      expect(writer.errors).toEqual([]);
      expect(writer.maxWaitMs).toBeLessThan(TTL_MS + 4000);
      // The inventory follows what happened: the stopped old primary, superseded, is no primary any more
      // and is fenced (started as it is it would be a second primary); a rebuild brings it back.
      await refreshFleet(db, { ids: (await refs()).map((r) => r.id), timeoutMs: 2000 });
      const inv = await byServer();
      expect(inv.get(old.server)).toMatchObject({ role: 'replica', state: 'fenced' });
      expect(inv.get(cand.server)).toMatchObject({ role: 'primary', state: 'running' });
      const start = await planOperation(db, SYSTEM_ACCESS, startAction, [inv.get(old.server)!.id]);
      expect(start.targets[0]!.refused).toMatch(/fenced/);
      // The third member still follows the old timeline: the next switchover says so, and what to do.
      expect(inv.get(third.server)!.timeline).toBeLessThan(inv.get(cand.server)!.timeline!);
    } finally {
      proxy.restore();
      await writer.stop().catch(() => {});
      await w.close();
      await proxy.close();
    }
    await mend();
  }, 180_000);

  it("pgherd's database frozen after the old primary's stop, before any promotion: the worker starts it again as the primary while the herd is still its own", async () => {
    const proxy: TcpProxy = await startTcpProxy(dbEndpoint());
    const w = await startWorker(workerOpts(viaProxy(proxy.port)));
    const old = await labPrimary(lab, 'alpha');
    const cand = members().find((m) => m.server !== old.server)!;
    // The candidate receives but does not replay: the switchover waits for it to catch up after the stop.
    await query(url(cand), 'SELECT pg_wal_replay_pause()');
    const writer = await freshWriter();
    try {
      await writerCommits(writer);
      const { id } = await submitSwitchover({ candidateInstanceId: (await byServer()).get(cand.server)!.id, pauseBudgetSeconds: 60 });
      await waitFor(
        'the old primary is stopped',
        () =>
          query(url(old), 'SELECT 1').then(
            () => false,
            () => true,
          ),
        60_000,
      );
      proxy.stall();
      const frozenAt = Date.now();
      const back = await waitFor('the old primary accepts writes again', async () => !(await inRecovery(old)) && Date.now(), 30_000);
      // The lease is given up at 3/4 of its TTL; the undo runs in the quarter left, before it expires.
      expect(back - frozenAt).toBeLessThan(TTL_MS);
      await waitFor(
        'PgBouncer resumed, at the old primary',
        async () => {
          const e = await paused();
          return !e.paused && e.host === old.address;
        },
        30_000,
      );
      const before = writer.acked.length;
      await waitFor('writes go on through PgBouncer', async () => writer.acked.length > before + 20);
      proxy.restore();
      const { targets } = await waitForOperation(db, id, { timeoutMs: 60_000 });
      expect(targets[0]!.status).toBe('interrupted');
      expect(targets[0]!.error).toMatch(
        /run all the same, .*: start \S+ again as primary if no replica was promoted, PgBouncer \S+: resume \(always\)/,
      );
      expect(await inRecovery(cand)).toBe(true);
      await writer.stop();
      expect(writer.maxWaitMs).toBeLessThan(TTL_MS + 4000);
    } finally {
      proxy.restore();
      await query(url(cand), 'SELECT pg_wal_replay_resume()').catch(() => {});
      await writer.stop().catch(() => {});
      await w.close();
      await proxy.close();
    }
    await mend();
  }, 180_000);

  it('the worker killed with SIGKILL while PgBouncer is paused: the resume armed on its host ends the pause at the budget; the next worker settles what was owed', async () => {
    const BUDGET_S = 10;
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
    const writer = await freshWriter();
    const old = await labPrimary(lab, 'alpha');
    try {
      await writerCommits(writer);
      const { id } = await submitSwitchover({ pauseBudgetSeconds: BUDGET_S });
      await waitFor('PgBouncer paused', async () => (await paused()).paused, 60_000);
      child.kill('SIGKILL');
      const killedAt = Date.now();
      await new Promise((r) => child!.once('exit', r));
      child = null;
      const token = (await owedRows())[0]!.resumeToken;
      const mine = armed().filter((l) => l.includes(token));
      expect(mine, armed().join('\n')).toHaveLength(1);
      // No worker runs now: only the host's own resume can end the pause.
      const resumed = await waitFor(
        'PgBouncer resumed by its host',
        async () => !(await paused()).paused && Date.now(),
        (BUDGET_S + 10) * 1000,
      );
      expect(resumed - killedAt).toBeLessThan((BUDGET_S + 3) * 1000);
      expect(resumed - killedAt).toBeGreaterThan((BUDGET_S - 3) * 1000);
      await waitFor('the armed resume ended', async () => !armed().some((l) => l.includes(token)));
      // Every statement the writer sent was answered within the budget (a commit or an error).
      expect(writer.maxWaitMs).toBeLessThan((BUDGET_S + 3) * 1000);
      // The next worker ends the dead target, saying what it owed, and settles it as the herd is now.
      const w = await startWorker(workerOpts(lab.database.url));
      try {
        const { targets } = await waitForOperation(db, id, { timeoutMs: 30_000 });
        expect(targets[0]!.status).toBe('interrupted');
        expect(targets[0]!.error).toMatch(
          /owed back, and the next reconcile gives it back once no one holds the herd: RESUME \S+ on PgBouncer/,
        );
        // Killed between the old primary's stop and any promotion, the herd has no primary: what the
        // pause owes stays owed, saying why, until a person starts one; then the reconcile gives it back.
        if (!(await labPrimary(lab, 'alpha').catch(() => null))) {
          const open = await waitFor('the owed row saying why it is open', async () => {
            const [r] = await owedRows();
            return r?.lastError ? r : undefined;
          });
          expect(open.settledAt).toBeNull();
          expect(open.lastError).toMatch(/which does not answer: owed until it points at the herd's primary/);
          await startByHand(old);
        }
        const row = await waitFor('the owed resume settled', async () => {
          const [r] = await owedRows();
          return r?.settledAt ? r : undefined;
        });
        expect(row.settledHow).toMatch(/^by a worker's reconcile: /);
        expect(await db.$count(owedCleanups, and(eq(owedCleanups.herdId, herdId), isNull(owedCleanups.settledAt)))).toBe(0);
        // PgBouncer points at the herd's one primary.
        expect((await paused()).host).toBe((await labPrimary(lab, 'alpha')).address);
      } finally {
        await w.close();
      }
    } finally {
      child?.kill('SIGKILL');
      await writer.stop().catch(() => {});
    }
    await mend();
  }, 180_000);

  it('the worker frozen (SIGSTOP) while PgBouncer is paused, thawed after the next worker settled the pause: its cleanup resumes nothing', async () => {
    const BUDGET_S = 60;
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
    const pid = child.pid!;
    const old = await labPrimary(lab, 'alpha');
    try {
      const { id } = await submitSwitchover({ pauseBudgetSeconds: BUDGET_S });
      await waitFor('PgBouncer paused', async () => (await paused()).paused, 60_000);
      process.kill(pid, 'SIGSTOP');
      // The next worker: once the frozen one's lease expired, its reconcile ends the target and settles the pause.
      const w = await startWorker(workerOpts(lab.database.url));
      try {
        const { targets } = await waitForOperation(db, id, { timeoutMs: 60_000 });
        expect(targets[0]!.status).toBe('interrupted');
        if (!(await labPrimary(lab, 'alpha').catch(() => null))) await startByHand(old);
        await waitFor('the owed resume settled by the reconcile', async () => {
          const [r] = await owedRows();
          return r?.settledAt ? r : undefined;
        });
        expect((await paused()).paused).toBe(false);
        // Thawed: its gate finds the lease gone, and the resume it still had to run finds the pause settled.
        process.kill(pid, 'SIGCONT');
        // Its row is written when the cleanup starts and its output when it ends: waited for once ended.
        const step = await waitFor('the thawed worker\u2019s resume cleanup recorded', async () => {
          const rows = await db.execute<{ stdout_tail: string | null }>(
            sql`SELECT s.stdout_tail FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id
                WHERE t.operation_id = ${id} AND s.name LIKE '%: resume (always)' AND s.finished_at IS NOT NULL`,
          );
          return rows.rows[0];
        });
        expect(step.stdout_tail).toMatch(/^nothing done: what this pause owed was settled by another worker meanwhile/);
      } finally {
        await w.close();
      }
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
      child.kill('SIGKILL');
      child = null;
    }
    await mend();
  }, 180_000);
});
