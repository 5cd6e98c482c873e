// What it costs pgherd to look at an instance (observe(): connect, one query, disconnect), the unit of
// every refresh pass and of every wait in an action (a failover polls the candidate every 20-100 ms):
// over the lab's per-environment TLS with SCRAM, against the way it connected before (as postgres,
// trusted, in clear; PGHERD_PG_CONFIG unset). One lab of 18 instances; sequential calls for latency, and
// whole passes at the refresher's concurrency (16) for throughput.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PROJECT_ROOT, startLab, stopLab, useLabSettings } from '@/lib/lab/lab';
import { observe, type PgEndpoint } from '@/lib/fleet/observe';
import { percentiles, table } from './table';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-observe-lab.json');
const CALLS = Number(process.env.BENCH_OBSERVE_CALLS ?? 400);
const PASSES = 20;

async function measure(endpoints: PgEndpoint[]): Promise<string[]> {
  for (const e of endpoints) {
    const o = await observe(e);
    if (!o.reachable) throw new Error(`${e.host}:${e.port}: ${o.error ?? 'no reason given'}`);
  }
  const one: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    await observe(endpoints[i % endpoints.length]!);
    one.push(performance.now() - t);
  }
  const passes: number[] = [];
  for (let p = 0; p < PASSES; p++) {
    const t = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < endpoints.length) await observe(endpoints[next++]!);
      }),
    );
    passes.push(performance.now() - t);
  }
  const o = percentiles(one);
  const ps = percentiles(passes);
  return [o.p50.toFixed(2), o.p95.toFixed(2), ps.p50.toFixed(1), (endpoints.length / (ps.p50 / 1000)).toFixed(0)];
}

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
  try {
    const endpoints = (env: (e: string) => string | null) =>
      lab.instances.map((i) => ({ host: i.address, port: i.port, serverEnvironment: env(i.environment) }));
    useLabSettings(lab);
    const secured = await measure(endpoints((e) => e));
    // Before: no configuration, so every environment as postgres (trusted by the lab's pg_hba), no TLS.
    process.env.PGHERD_PG_CONFIG = '';
    const plain = await measure(endpoints(() => null));
    return [
      `observe(): ${CALLS} sequential calls over ${lab.instances.length} instances, then ${PASSES} passes over all at concurrency 16`,
      ...table(
        ['connection', 'one call median ms', 'one call p95 ms', 'pass median ms', 'instances/s'],
        [
          ['postgres, trusted, no TLS (before)', ...plain],
          ['pgherd_<env>, TLS verify-full + SCRAM', ...secured],
        ],
      ),
    ];
  } finally {
    await stopLab(FILE);
  }
}
