// What it costs pgherd to look at an instance (observe(): connect, one query, disconnect), the unit of
// every refresh pass and of every wait in an action (a failover polls the candidate every 20-100 ms):
// over the lab's per-environment TLS with SCRAM, against the way it connected before (as postgres,
// trusted, in clear; PGHERD_PG_CONFIG unset). One lab of 18 instances; sequential calls for latency, and
// whole passes at the refresher's concurrency (16) for throughput.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Db } from '@/db/client';
import { PROJECT_ROOT, startLab, stopLab, useLabSettings, type LabInfo } from '@/lib/lab/lab';
import { seededDatabase } from '@/lib/lab/seed';
import { observationPool, observe, type Observed, type PgEndpoint } from '@/lib/fleet/observe';
import { refreshShare } from '@/lib/fleet/refresh-share';
import { mapLimit } from '@/lib/adapters/async/map-limit';
import { judgeRisks } from '@/lib/features/risks/judge';
import { setting } from '@/lib/settings/settings';
import { SIM_ENVIRONMENT, startSimFleet, type SimFleet } from './sim-fleet';
import { percentiles, table } from './table';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-observe-lab.json');
const CALLS = Number(process.env.BENCH_OBSERVE_CALLS ?? 400);
const PASSES = 20;

async function measure(endpoints: PgEndpoint[], look: (e: PgEndpoint) => Promise<Observed> = (e) => observe(e)): Promise<string[]> {
  for (const e of endpoints) {
    const o = await look(e);
    if (!o.reachable) throw new Error(`${e.host}:${e.port}: ${o.error ?? 'no reason given'}`);
  }
  const one: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    await look(endpoints[i % endpoints.length]!);
    one.push(performance.now() - t);
  }
  const passes: number[] = [];
  for (let p = 0; p < PASSES; p++) {
    const t = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < endpoints.length) await look(endpoints[next++]!);
      }),
    );
    passes.push(performance.now() - t);
  }
  const o = percentiles(one);
  const ps = percentiles(passes);
  return [o.p50.toFixed(2), o.p95.toFixed(2), ps.p50.toFixed(1), (endpoints.length / (ps.p50 / 1000)).toFixed(0)];
}

/** CPU the lab's Postgres servers have used, in ms: each postmaster's own and its reaped children's, and its live children's. */
function postgresCpuMs(lab: LabInfo): number {
  const ticks = (pid: number, withChildren: boolean) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime stime cutime cstime are fields 14-17 (11-14 after the command).
      return Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0);
    } catch {
      return 0;
    }
  };
  const postmasters = new Set(
    lab.instances.map((i) => Number(readFileSync(path.join(i.dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0])),
  );
  let total = 0;
  for (const pm of postmasters) total += ticks(pm, true);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (postmasters.has(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))) total += ticks(Number(d), false);
    } catch {
      // gone meanwhile
    }
  }
  return (total * 1000) / TICKS_PER_SECOND;
}
const TICKS_PER_SECOND = 100;

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

/** Passes over the real instances through the refresh's kept sessions (pool), and what each observation costs on both sides. */
async function costs(lab: LabInfo, endpoints: PgEndpoint[], look: (e: PgEndpoint) => Promise<unknown>): Promise<string[]> {
  const rounds = 20;
  const cpu0 = process.cpuUsage();
  const pg0 = postgresCpuMs(lab);
  const t0 = performance.now();
  for (let p = 0; p < rounds; p++) await mapLimit(endpoints, 16, look);
  const ms = performance.now() - t0;
  const n = rounds * endpoints.length;
  return [
    ((cpuMs(process.cpuUsage(cpu0)) / n) * 1000).toFixed(0),
    (((postgresCpuMs(lab) - pg0) / n) * 1000).toFixed(0),
    (n / (ms / 1000)).toFixed(0),
  ];
}

const ROWS = Number(process.env.BENCH_REFRESH_ROWS ?? 10_000);
const SHARED_ROWS = Number(process.env.BENCH_REFRESH_SHARED_ROWS ?? 30_000);
const SHARED_INTERVAL_MS = Number(process.env.BENCH_REFRESH_SHARED_INTERVAL_MS ?? 30_000);
const SHARED_RUN_MS = Number(process.env.BENCH_REFRESH_SHARED_RUN_MS ?? 4 * SHARED_INTERVAL_MS);

export async function observeBench(log: (m: string) => void): Promise<string[]> {
  const lab = await startLab({
    aws: false,
    file: FILE,
    redis: false,
    dns: false,
    ldap: false,
    pgbouncer: [],
    fleet: { environments: ['production', 'staging'], herds: ['a', 'b', 'c'], replicas: 2, sites: ['dc-a'], subnet: '127.0.6' },
    log,
  });
  let sim: SimFleet | null = null;
  let made: { db: Db; pool: pg.Pool } | null = null;
  try {
    const endpoints = (env: (e: string) => string | null) =>
      lab.instances.map((i) => ({ host: i.address, port: i.port, serverEnvironment: env(i.environment) }));
    useLabSettings(lab);
    const secured = await measure(endpoints((e) => e));
    const refreshPool = observationPool({ probe: false, pending: true });
    const keptOne = await measure(
      endpoints((e) => e),
      (e) => refreshPool.look(e),
    );
    const costNew = await costs(
      lab,
      endpoints((e) => e),
      (e) => observe(e),
    );
    const costKept = await costs(
      lab,
      endpoints((e) => e),
      (e) => refreshPool.look(e),
    );
    refreshPool.close();
    // Before: no configuration, so every environment as postgres (trusted by the lab's pg_hba), no TLS.
    const pgConfig = process.env.PGHERD_PG_CONFIG;
    process.env.PGHERD_PG_CONFIG = '';
    const plain = await measure(endpoints(() => null));
    process.env.PGHERD_PG_CONFIG = pgConfig;
    const lines = [
      `observe(): ${CALLS} sequential calls over ${lab.instances.length} real instances, then ${PASSES} passes over all at concurrency 16`,
      ...table(
        ['connection', 'one call median ms', 'one call p95 ms', 'pass median ms', 'instances/s'],
        [
          ['postgres, trusted, no TLS (before)', ...plain],
          ['pgherd_<env>, TLS verify-full + SCRAM, new connection', ...secured],
          ['the same, over the refresh\u2019s kept sessions', ...keptOne],
        ],
      ),
      '',
      `cost of one observation over the real instances (20 passes at concurrency 16; Postgres's CPU read from /proc)`,
      ...table(
        ['connection', 'worker CPU \u00b5s', 'Postgres CPU \u00b5s', 'instances/s'],
        [
          ['TLS + SCRAM, new connection each (fences, probes)', ...costNew],
          ['TLS + SCRAM, kept session (the refresh)', ...costKept],
        ],
      ),
    ];

    // The simulated fleet: one worker over ROWS instances, then three worker processes over SHARED_ROWS.
    made = await seededDatabase(lab, 8);
    const { db } = made;
    sim = await startSimFleet(lab, db, Math.max(ROWS, SHARED_ROWS), log);
    process.env.PGHERD_PG_CONFIG = sim.pgConfigFile;
    const simHerds = (upTo: number) => sql`environment_id = (SELECT id FROM environments WHERE name = ${SIM_ENVIRONMENT})
      AND substr(name, 5)::int < ${Math.ceil(upTo / 3)}`;
    const due = async (upTo: number) => {
      await db.execute(sql`UPDATE herds SET observe_due_at = 'infinity', observed_by = NULL`);
      await db.execute(sql`UPDATE herds SET observe_due_at = '-infinity' WHERE ${simHerds(upTo)}`);
    };
    const share = refreshShare(db, { holder: 'bench-1', intervalMs: 3_600_000, concurrency: 64 });
    await due(ROWS);
    const cold = await share.round();
    log(
      `cold round over ${cold.observed} simulated instances: ${cold.ms} ms, ${cold.opened} connections opened, ${cold.reachable} answered`,
    );
    const warm: { ms: number; cpu: number; opened: number; observed: number }[] = [];
    for (let k = 0; k < 3; k++) {
      await due(ROWS);
      const c0 = process.cpuUsage();
      const r = await share.round();
      warm.push({ ms: r.ms, cpu: cpuMs(process.cpuUsage(c0)), opened: r.opened, observed: r.observed });
    }
    // The same rounds with the risks read on every session (their statement, and a TLS handshake for the
    // certificate): what a round costs when every instance is due, and, at the default, one round in
    // PGHERD_RISKS_READ_MS / PGHERD_REFRESH_INTERVAL_MS is.
    const readEvery = process.env.PGHERD_RISKS_READ_MS;
    process.env.PGHERD_RISKS_READ_MS = '1000';
    const withRisks: { ms: number; cpu: number }[] = [];
    for (let k = 0; k < 3; k++) {
      await new Promise((r) => setTimeout(r, 1100));
      await due(ROWS);
      const c0 = process.cpuUsage();
      const r = await share.round();
      withRisks.push({ ms: r.ms, cpu: cpuMs(process.cpuUsage(c0)) });
    }
    if (readEvery === undefined) delete process.env.PGHERD_RISKS_READ_MS;
    else process.env.PGHERD_RISKS_READ_MS = readEvery;
    share.close();
    const read = (await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM risk_readings`)).rows[0]?.n ?? 0;
    const judged: number[] = [];
    for (let k = 0; k < 3; k++) judged.push((await judgeRisks(db)).ms);
    const mid = [...warm].sort((a, b) => a.ms - b.ms)[1]!;
    const midRisks = [...withRisks].sort((a, b) => a.ms - b.ms)[1]!;
    const everyRounds = setting('PGHERD_RISKS_READ_MS') / setting('PGHERD_REFRESH_INTERVAL_MS');
    const amortized = mid.ms + (midRisks.ms - mid.ms) / everyRounds;
    const judgeMs = [...judged].sort((a, b) => a - b)[1]!;
    // The baseline in the same run: the refresh as it was, a new connection for each observation at concurrency 16.
    const sample = sim.endpoints.slice(0, 1000).map((e) => ({ ...e, serverEnvironment: SIM_ENVIRONMENT }));
    const b0 = performance.now();
    const bc0 = process.cpuUsage();
    await mapLimit(sample, 16, (e) => observe(e));
    const baseMs = performance.now() - b0;
    const baseCpu = cpuMs(process.cpuUsage(bc0));
    lines.push(
      '',
      `the refresh over ${ROWS} simulated instances (${sim.endpoints.length} endpoints on 127.30.x.x: real TLS verify-full and SCRAM on pgherd's side, each answering a real instance's row), one worker`,
      ...table(
        ['refresh', 'pass ms', 'instances/s', 'worker CPU \u00b5s each', 'connections opened'],
        [
          [
            `new connection each, concurrency 16 (before; ${sample.length} of them)`,
            baseMs.toFixed(0),
            (sample.length / (baseMs / 1000)).toFixed(0),
            ((baseCpu / sample.length) * 1000).toFixed(0),
            String(sample.length),
          ],
          [
            'kept sessions, first pass (every session opened)',
            String(cold.ms),
            (cold.observed / (cold.ms / 1000)).toFixed(0),
            '',
            String(cold.opened),
          ],
          [
            'kept sessions, a pass after (median of 3)',
            String(mid.ms),
            (mid.observed / (mid.ms / 1000)).toFixed(0),
            ((mid.cpu / mid.observed) * 1000).toFixed(0),
            String(mid.opened),
          ],
          [
            'the same, every instance\u2019s risks read too (median of 3)',
            String(midRisks.ms),
            (mid.observed / (midRisks.ms / 1000)).toFixed(0),
            ((midRisks.cpu / mid.observed) * 1000).toFixed(0),
            '',
          ],
        ],
      ),
      `the risks: read on a pass every ${String(everyRounds)} (PGHERD_RISKS_READ_MS ${String(setting('PGHERD_RISKS_READ_MS'))} / PGHERD_REFRESH_INTERVAL_MS ${String(setting('PGHERD_REFRESH_INTERVAL_MS'))}), a pass costs ${amortized.toFixed(0)} ms on average against ${String(mid.ms)} ms without: +${(((amortized - mid.ms) / mid.ms) * 100).toFixed(1)}% (target at most +10%); judging the ${String(read)} readings: ${judgeMs.toFixed(0)} ms a pass (median of 3, every PGHERD_RISKS_JUDGE_MS, on one worker)`,
    );

    // Three workers, each its own process, over SHARED_ROWS.
    await due(SHARED_ROWS);
    const t0 = Date.now();
    const outs = await Promise.all(
      ['w1', 'w2', 'w3'].map(
        (holder) =>
          new Promise<{ holder: string; claims: [number, number][]; observed: number; opened: number; cpuMs: number }>(
            (resolve, reject) => {
              const child = spawn(
                process.execPath,
                [
                  '--import',
                  'tsx',
                  path.join(PROJECT_ROOT, 'lib/bench/refresh-worker.ts'),
                  holder,
                  String(SHARED_INTERVAL_MS),
                  String(SHARED_RUN_MS),
                ],
                { cwd: PROJECT_ROOT, env: { ...process.env, DATABASE_URL: lab.database.url }, stdio: ['ignore', 'pipe', 'inherit'] },
              );
              let out = '';
              child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
              child.once('exit', (code) => {
                if (code !== 0) return void reject(new Error(`refresh worker ${holder} exited ${String(code)}`));
                resolve(JSON.parse(out.trim().split('\n').at(-1)!) as never);
              });
            },
          ),
      ),
    );
    const ranMs = Date.now() - t0;
    const byHerd = new Map<number, number[]>();
    for (const o of outs) for (const [h, at] of o.claims) byHerd.set(h, [...(byHerd.get(h) ?? []), at]);
    let twice = 0;
    let longest = 0;
    const firstAt = Math.min(...[...byHerd.values()].flat());
    for (const ats of byHerd.values()) {
      ats.sort((a, b) => a - b);
      for (let k = 1; k < ats.length; k++) {
        const gap = ats[k]! - ats[k - 1]!;
        if (gap < SHARED_INTERVAL_MS - 1) twice++;
        // After the first interval (the sessions' opening): the longest a herd waited.
        if (ats[k - 1]! >= firstAt + SHARED_INTERVAL_MS) longest = Math.max(longest, gap);
      }
    }
    const herdCount = Math.ceil(SHARED_ROWS / 3);
    const lastInterval = [...byHerd.values()].filter((ats) => ats.at(-1)! >= firstAt + ranMs - 2 * SHARED_INTERVAL_MS).length;
    lines.push(
      '',
      `three workers (each its own process) share the refresh of ${SHARED_ROWS} simulated instances (${herdCount} herds), interval ${SHARED_INTERVAL_MS / 1000} s, for ${(ranMs / 1000).toFixed(0)} s`,
      ...table(
        ['worker', 'herd claims', 'observations', 'connections opened', 'CPU s'],
        outs.map((o) => [o.holder, String(o.claims.length), String(o.observed), String(o.opened), (o.cpuMs / 1000).toFixed(1)]),
      ),
      `herds observed: ${byHerd.size} of ${herdCount}; two observations of a herd within one interval: ${twice}; ` +
        `the longest a herd waited after the first interval: ${longest ? (longest / 1000).toFixed(1) : '-'} s; ` +
        `herds observed within the last two intervals: ${lastInterval}`,
    );
    return lines;
  } finally {
    await sim?.stop();
    await made?.pool.end();
    await stopLab(FILE);
  }
}
