// `npm run bench -- control-plane`: pgherd's own state across three sites (lib/lab/control-plane.ts), each
// of its failovers measured beside the engine's own in the same run:
// 1. pgherd's database: its primary's Patroni and Postgres SIGKILLed (the machine lost); from the kill to
//    the first write a client of site A's HAProxy gets through (a writer every 50 ms, reconnecting), beside
//    Patroni's own failover (the first surviving member whose REST API says GET /primary 200). Target ≤ 30 s.
// 2. The queue: Redis's master SIGKILLed while jobs are added every 100 ms; from the kill to the next job a
//    BullMQ worker on the Sentinel URL takes, beside Sentinel's own promotion (the first sentinel that
//    names another master). Target ≤ 15 s.
// 3. The worst day, on a lab of its own with a fleet (three herds, primaries in dc-east): dc-east's
//    Postgres and pgherd's site A SIGKILLed together; a DBA on site B fails every dc-east herd over as soon
//    as site B answers (lib/testing/site-loss.ts). From the kill to the operation accepted (target ≤ 45 s),
//    beside Patroni leading pgherd's database again; to every herd writable with its write name moved
//    (target ≤ 60 s), beside the DR failover itself (accepted -> writable).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue, Worker } from 'bullmq';
import pg from 'pg';
import { eq } from 'drizzle-orm';
import { environments, roleBindings, users } from '@/db/schema';
import { producerConnection, targetQueue, workerConnection } from '@/lib/engine/queue';
import { startWorkerProcess } from '@/lib/lab/console';
import { seededDatabase } from '@/lib/lab/seed';
import { loseSiteAndFleet, patroniSaysPrimary, sigkillTree } from '@/lib/testing/site-loss';
import { postmasterPid, sentinelMaster } from '@/lib/lab/control-plane';
import { PROJECT_ROOT, readLab, startLab, stopLab } from '@/lib/lab/lab';
import { table } from './table';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-control-plane-lab.json');
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Calls `fn` every `everyMs` until it gives true; the time (performance.now()) it first did. */
async function firstTrue(fn: () => Promise<boolean>, everyMs: number, timeoutMs: number): Promise<number> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    if (await fn()) return performance.now();
    if (performance.now() > until) throw new Error('not within the bench\u2019s bound');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function controlPlaneBench(log: (m: string) => void): Promise<string[]> {
  const lab = await startLab({ file: FILE, controlPlane: { subnet: '127.0.87' }, fleet: false, aws: false, ldap: false, dns: false, log });
  try {
    const cp = lab.controlPlane!;
    const ca = readFileSync(lab.tls!.caFile);
    const rows: string[][] = [];

    // 1. pgherd's database.
    const pool = new pg.Pool({ connectionString: cp.databaseUrls.a, max: 1, connectionTimeoutMillis: 1000, query_timeout: 1000 });
    pool.on('error', () => {});
    await pool.query('CREATE TABLE IF NOT EXISTS bench_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())');
    const write = () =>
      pool.query('INSERT INTO bench_writes DEFAULT VALUES').then(
        () => true,
        () => false,
      );
    const machine = readLab(FILE).processes.filter((p) => p.site === 'a' && ['patroni', 'postgres'].includes(p.program));
    log(`pgherd's database: killing site a's Patroni and Postgres (${machine.map((p) => p.name).join(', ')})`);
    const pids = machine.map((p) => (p.pidFile ? postmasterPid(p.pidFile) : p.pid)).filter((p): p is number => p !== null);
    const k0 = performance.now();
    for (const pid of pids) sigkillTree(pid);
    const [patroniAt, writeAt] = await Promise.all([
      firstTrue(
        async () => (await Promise.all(cp.sites.slice(1).map((x) => patroniSaysPrimary(x.address, ca)))).some(Boolean),
        100,
        120_000,
      ),
      firstTrue(write, 50, 120_000),
    ]);
    await pool.end();
    rows.push([
      'pgherd\u2019s database: primary lost \u2192 first write through HAProxy',
      s(writeAt - k0),
      s(patroniAt - k0),
      '\u2264 30 s',
    ]);

    // 2. The queue.
    const name = 'bench-control-plane';
    const producer = workerConnection(cp.redisUrl);
    producer.on('error', () => {});
    const queue = new Queue(name, { connection: producer, prefix: 'bench' });
    queue.on('error', () => {});
    let lastTaken = 0;
    const consumerConnection = workerConnection(cp.redisUrl);
    consumerConnection.on('error', () => {});
    const consumer = new Worker(
      name,
      async () => {
        lastTaken = performance.now();
      },
      { connection: consumerConnection, prefix: 'bench', concurrency: 4 },
    );
    consumer.on('error', () => {});
    const adding = setInterval(() => void queue.add('tick', {}).catch(() => {}), 100);
    await firstTrue(async () => lastTaken > 0, 50, 30_000);
    const master = readLab(FILE).processes.find((p) => p.site === 'a' && p.program === 'redis-server')!;
    const was = await sentinelMaster(cp.sites[2]!.address);
    log(`the queue: killing Redis's master on site a (${was ?? 'unknown'})`);
    const r0 = performance.now();
    sigkillTree(master.pid);
    const [sentinelAt, takenAt] = await Promise.all([
      firstTrue(
        async () => {
          const now = await sentinelMaster(cp.sites[2]!.address);
          return now !== null && now !== was;
        },
        100,
        60_000,
      ),
      firstTrue(async () => lastTaken > r0 + 50, 50, 60_000),
    ]);
    clearInterval(adding);
    await consumer.close();
    await queue.close();
    // BullMQ closes the connections it made, not the ones it was given.
    producer.disconnect();
    consumerConnection.disconnect();
    rows.push(['the queue: Redis master lost \u2192 next job taken (Sentinel URL)', s(takenAt - r0), s(sentinelAt - r0), '\u2264 15 s']);

    await stopLab(FILE, log);
    rows.push(...(await siteLossRows(log)));

    return [
      "pgherd's control plane on three sites (Patroni ttl 20 / loop_wait 5 behind HAProxy; Redis under three sentinels, down-after 2 s); one loss each",
      ...table(['failover', 'pgherd', 'the engine itself', 'target'], rows),
      'the engine itself: Patroni names a new primary (GET /primary 200 on a surviving member); Sentinel names another master;',
      '  for the site loss, Patroni leading pgherd\u2019s database again, and the DR failover alone (accepted \u2192 all writable)',
    ];
  } finally {
    await stopLab(FILE, log);
  }
}

const SITE_FILE = path.join(PROJECT_ROOT, '.lab', 'bench-site-loss-lab.json');

/** The fleet's site and pgherd's site lost together (3.): its two rows. */
async function siteLossRows(log: (m: string) => void): Promise<string[][]> {
  const lab = await startLab({
    file: SITE_FILE,
    aws: false,
    ldap: false,
    fleet: {
      environments: ['production'],
      herds: ['billing', 'orders', 'ledger'],
      replicas: 1,
      sites: ['dc-east', 'dc-west'],
      subnet: '127.0.88',
    },
    controlPlane: { subnet: '127.0.89' },
    log,
  });
  const q = { close: async () => {} } as { queue?: ReturnType<typeof targetQueue>; close: () => Promise<void> };
  try {
    const { db, pool } = await seededDatabase(lab, 2);
    const [u] = await db.insert(users).values({ username: 'dba' }).returning({ id: users.id });
    const [prod] = await db.select({ id: environments.id }).from(environments).where(eq(environments.name, 'production'));
    await db.insert(roleBindings).values({ role: 'admin', subjectType: 'user', subject: 'dba', environmentId: prod!.id });
    await pool.end();
    const producer = producerConnection(lab.redis!.url);
    producer.on('error', () => {});
    q.queue = targetQueue(producer, 'bench-site-loss');
    q.queue.on('error', () => {});
    q.close = async () => {
      await q.queue?.close();
      producer.disconnect();
    };
    const env = { PGHERD_QUEUE_PREFIX: 'bench-site-loss', PGHERD_REFRESH_INTERVAL_MS: '0', PGHERD_LEASE_TTL_MS: '45000' };
    for (const site of ['a', 'b']) await startWorkerProcess(lab, { quiet: true, labFile: SITE_FILE, site, name: `worker-${site}`, env });
    const r = await loseSiteAndFleet(SITE_FILE, { fleetSite: 'dc-east', dbaId: u!.id, queue: q.queue, log });
    await r.b.end();
    return [
      ['site A and dc-east lost \u2192 DR failover accepted on site B', s(r.acceptedMs), s(r.patroniMs), '\u2264 45 s'],
      [
        'site A and dc-east lost \u2192 every dc-east herd writable, name moved',
        s(r.writableMs),
        s(r.writableMs - r.acceptedMs),
        '\u2264 60 s',
      ],
    ];
  } finally {
    await q.close();
    await stopLab(SITE_FILE, log);
  }
}
