// npm run bench -- glance [--scale 100000]: what the fleet-at-a-glance features cost at fleet scale
// (10,000 instances by default): a lag sample of every instance, a day of samples folded, the herd
// chart's and the dashboard's queries over 26 hours of samples, and a Prometheus scrape of the web
// process (a lag gauge per replica).
import { performance } from 'node:perf_hooks';
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { fleetHistory, foldLagSamples, lagHistory, sampleLag } from '@/lib/fleet/lag-history';
import { percentiles, table } from './table';

const RUNS = 20;

async function timed<T>(runs: number, fn: (i: number) => Promise<T>): Promise<{ ms: number[]; last: T }> {
  const ms: number[] = [];
  let last!: T;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    last = await fn(i);
    ms.push(performance.now() - t);
  }
  return { ms, last };
}

export async function glanceBench(ctx: { db: Db; url: string; metricsToken: string; log: (m: string) => void }): Promise<string[]> {
  const { db, log } = ctx;
  const n = (await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM instances`)).rows[0]!.n;
  await db.execute(sql`UPDATE instances SET last_observed_at = now(), lag_seconds = CASE WHEN role = 'replica' THEN (id % 30)::real END`);
  const rows: string[][] = [];
  const add = (what: string, ms: number[], note: string) => {
    const p = percentiles(ms);
    rows.push([what, p.p50.toFixed(1), p.p95.toFixed(1), note]);
  };

  // One sample of the whole fleet (what one worker does every minute).
  const base = Date.now() - 26 * 3_600_000;
  const sample = await timed(5, (i) => sampleLag(db, new Date(Date.now() + i * 1000)));
  add('a sample of every instance (each minute)', sample.ms, `${sample.last} rows`);
  await db.execute(sql`DELETE FROM lag_samples`);
  await db.execute(sql`DELETE FROM fleet_samples`);

  // 26 hours of a sample a minute: the day the charts read in full, and two hours past it to fold.
  log(`writing 26 hours of samples for ${n} instances (${(n * 26 * 60).toLocaleString('en')} rows)`);
  const t0 = performance.now();
  await db.execute(sql`
    INSERT INTO lag_samples (instance_id, herd_id, at, lag_bytes, lag_seconds, role, state)
    SELECT i.id, i.herd_id, to_timestamp(${base / 1000}) + m * interval '1 minute',
           CASE WHEN i.role = 'replica' THEN ((i.id * 7919 + m * 104729) % 50000000)::bigint END,
           CASE WHEN i.role = 'replica' THEN ((i.id + m) % 60)::real END, i.role, i.state
    FROM instances i, generate_series(0, 26 * 60 - 1) m`);
  await db.execute(sql`
    INSERT INTO fleet_samples (at, environment_id, role, state, instances)
    SELECT to_timestamp(${base / 1000}) + m * interval '1 minute', i.environment_id, i.role, i.state, count(*)::int
    FROM instances i, generate_series(0, 26 * 60 - 1) m GROUP BY 1, 2, 3, 4`);
  await db.execute(sql`ANALYZE lag_samples, fleet_samples`);
  log(`written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const fold = await timed(1, () => foldLagSamples(db));
  add('fold the samples past a day (first pass: 2 hours of the fleet)', fold.ms, `${fold.last.folded.toLocaleString('en')} rows folded`);
  const again = await timed(3, () => foldLagSamples(db));
  add('fold again (nothing left: every 10 minutes after)', again.ms, `${again.last.folded} rows`);

  const herd = (await db.execute<{ herd_id: number }>(sql`SELECT herd_id FROM instances WHERE role = 'replica' ORDER BY id LIMIT 1`))
    .rows[0]!.herd_id;
  for (const range of ['hour', 'day', 'week'] as const) {
    const r = await timed(RUNS, () => lagHistory(db, { herdId: herd }, range));
    add(`a herd's lag chart, ${range}`, r.ms, `${r.last.series.reduce((a, s) => a + s.points.length, 0)} points`);
  }
  const dash = await timed(RUNS, () => fleetHistory(db, null));
  add('the dashboard\u2019s history (all environments)', dash.ms, `${dash.last.points.length} points`);

  // A scrape of the web process as Prometheus does it: every replica's lag gauge included.
  const scrape = await timed(RUNS, async () => {
    const res = await fetch(`${ctx.url}/metrics`, { headers: { authorization: `Bearer ${ctx.metricsToken}` } });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${text.slice(0, 200)}`);
    return text;
  });
  const series = scrape.last.split('\n').filter((l) => l.startsWith('pgherd_replication_lag_bytes{')).length;
  add('GET /metrics on the web process', scrape.ms, `${(scrape.last.length / 1024).toFixed(0)} kB, ${series} lag series`);
  const size = (await db.execute<{ s: string }>(sql`SELECT pg_size_pretty(pg_total_relation_size('lag_samples')) AS s`)).rows[0]!.s;
  return [
    `fleet at a glance: ${n.toLocaleString('en')} instances; lag_samples after 26 hours and one fold: ${size}`,
    ...table(['case', 'median ms', 'p95 ms', 'what'], rows),
  ];
}
