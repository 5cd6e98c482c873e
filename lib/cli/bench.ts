// npm run bench [changelist [--scale 100000]|ingest|ops|waves|failover]: the instances changelist at 10,000
// instances / 2,000 herds / 20 environments (or 100,000 / 20,000 / 50), served by the built console (signed in, 100 rows a page), next to the same
// SQL run alone; the agents' ingest API under many concurrent agents; the operations engine; failover.
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { createDb, type Db } from '@/db/client';
import { ingestBench } from '@/lib/bench/ingest-bench';
import { percentiles, table } from '@/lib/bench/table';
import { environments } from '@/db/schema';
import { scaleShape, seedScale, type ScaleShape } from '@/lib/bench/seed-scale';
import { buildConsole, CONSOLE_PROGRAM, prepareDatabase, startConsole } from '@/lib/lab/console';
import { PROJECT_ROOT, readLab, startLab, stopLab, writeLab } from '@/lib/lab/lab';
import { parseListParams } from '@/lib/admin/list-params';
import { changeList, facetOptions } from '@/lib/admin/list-query';
import { getAdmin } from '@/lib/admin/registry';
import { opsBench } from '@/lib/bench/ops-bench';
import { failoverBench } from '@/lib/bench/failover-bench';
import { observeBench } from '@/lib/bench/observe-bench';
import { wavesBench } from '@/lib/bench/waves-bench';
import { SYSTEM_ACCESS } from '@/lib/auth/access';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-lab.json');
const RUNS = Number(process.env.BENCH_RUNS ?? 60);
const WARMUP = 10;

/** "name=value; Path=/; HttpOnly" -> "name=value". */
function cookiePair(setCookie: string): string {
  const [pair = ''] = setCookie.split(';');
  return pair;
}

async function signIn(url: string, username: string, password: string): Promise<string> {
  const csrfRes = await fetch(`${url}/api/auth/csrf`);
  const { csrfToken } = (await csrfRes.json()) as { csrfToken: string };
  const cookies = csrfRes.headers.getSetCookie().map(cookiePair);
  const res = await fetch(`${url}/api/auth/callback/credentials`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies.join('; ') },
    body: new URLSearchParams({ csrfToken, username, password, json: 'true' }),
  });
  const session = res.headers
    .getSetCookie()
    .map(cookiePair)
    .find((c) => c.startsWith('next-auth.session-token='));
  if (!session) throw new Error(`sign-in failed (${res.status})`);
  return [...cookies, session].join('; ');
}

/** A lab with pgherd's database only and the built console, signed in; stopped after `fn`. */
async function withConsole(
  fn: (ctx: {
    db: Db;
    url: string;
    cookie: string;
    pids: { console: number; database: number };
    log: (m: string) => void;
  }) => Promise<void>,
) {
  const log = (m: string) => console.log(`bench: ${m}`);
  process.on('SIGINT', () => void stopLab(FILE).then(() => process.exit(130)));
  const lab = await startLab({ file: FILE, fleet: false, redis: false, log });
  try {
    const admin = { username: 'bench', password: randomBytes(12).toString('base64url') };
    await prepareDatabase(lab, admin, { seedFleet: false });
    const { db, pool } = createDb(lab.database.url, 4);
    if (process.env.PGHERD_SKIP_BUILD !== '1') buildConsole(log);
    const web = await startConsole(lab, { quiet: true });
    const info = readLab(FILE);
    info.processes.push({ name: 'console', pid: web.child.pid!, program: CONSOLE_PROGRAM, signal: 'SIGTERM' });
    writeLab(FILE, info);
    const cookie = await signIn(web.url, admin.username, admin.password);
    try {
      await fn({
        db,
        url: web.url,
        cookie,
        pids: { console: web.child.pid!, database: lab.processes.find((p) => p.name === 'pgherd-db')!.pid },
        log,
      });
    } finally {
      await pool.end();
      await web.stop();
    }
  } finally {
    await stopLab(FILE);
  }
}

/** `--scale 100000`: the fleet size the changelist benchmark seeds (10,000 unless given). */
function scaleArg(): ScaleShape {
  const i = process.argv.indexOf('--scale');
  return scaleShape(i > 0 ? Number(process.argv[i + 1]) : 10_000);
}

async function changelistBench({ db, url, cookie, log }: { db: Db; url: string; cookie: string; log: (m: string) => void }) {
  let t = performance.now();
  const shape = scaleArg();
  await seedScale(db, shape);
  const [counted] = (await db.execute(sql`SELECT count(*)::int AS n FROM instances`)).rows as { n: number }[];
  if (!counted) throw new Error('count(*) of instances returned no row');
  const { n } = counted;
  log(`seeded ${n} instances in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const [env] = await db
    .select({ id: environments.id })
    .from(environments)
    .where(sql`${environments.name} = 'env-07'`);
  if (!env) throw new Error('no environment env-07: the scale seed did not create it');
  // Last pages at 100 rows a page; a host name fragment that matches ten servers at any scale.
  const herds = shape.environments * shape.herdsPerEnvironment;
  const replicasPerHerd = shape.membersPerHerd - 1;
  const lastPage = (rows: number) => String(Math.ceil(rows / 100));
  const fragment = `db${'421'.padStart(String(n).length - 1, '0')}`;
  const cases: [string, Record<string, string>][] = [
    ['page 1', {}],
    ['env + replica, lag desc', { environment: String(env.id), role: 'replica', sort: '-lag' }],
    [
      'env + replica, lag desc, last page',
      { environment: String(env.id), role: 'replica', sort: '-lag', page: lastPage(shape.herdsPerEnvironment * replicasPerHerd) },
    ],
    ['replica all envs, lag desc, last page', { role: 'replica', sort: '-lag', page: lastPage(herds * replicasPerHerd) }],
    ['search host name fragment', { q: fragment }],
    ['unfiltered last page', { page: lastPage(n) }],
  ];
  const def = getAdmin('instances')!;
  const herdFilter = def.listFilter.find((f) => f.key === 'herd');
  if (!herdFilter) throw new Error('the instances changelist has no herd filter');
  /** One row of the table: `path` served by the console (signed in), next to `query` run alone. */
  const measure = async (name: string, path: string, expect: string, query: () => Promise<unknown>): Promise<string[]> => {
    const http: number[] = [];
    const sqlMs: number[] = [];
    let bytes = 0;
    for (let i = 0; i < WARMUP + RUNS; i++) {
      t = performance.now();
      const res = await fetch(`${url}${path}`, { headers: { cookie } });
      const body = await res.text();
      if (res.status !== 200 || !body.includes(expect)) throw new Error(`${name}: HTTP ${res.status}`);
      if (i >= WARMUP) http.push(performance.now() - t);
      bytes = body.length;
    }
    for (let i = 0; i < WARMUP + RUNS; i++) {
      t = performance.now();
      await query();
      if (i >= WARMUP) sqlMs.push(performance.now() - t);
    }
    const h = percentiles(http);
    const s = percentiles(sqlMs);
    return [
      name,
      h.p50.toFixed(1),
      h.p95.toFixed(1),
      s.p50.toFixed(1),
      s.p95.toFixed(1),
      (bytes / 1024).toFixed(0),
      h.p95 < 50 ? 'yes' : 'NO',
    ];
  };
  const rows: string[][] = [];
  for (const [name, params] of cases) {
    const qs = new URLSearchParams(params).toString();
    const p = parseListParams(def, params, SYSTEM_ACCESS);
    rows.push(await measure(name, `/admin/instances${qs ? `?${qs}` : ''}`, 'result-list', () => changeList(db, def, p)));
  }
  // The herd facet's search box: herds whose name has a fragment, with counts (ten herds match).
  const term = 'herd-0042';
  const all = parseListParams(def, {}, SYSTEM_ACCESS);
  rows.push(
    await measure('facet search: herd name fragment', `/api/admin/instances/facets/herd?term=${term}`, term, () =>
      facetOptions(db, def, herdFilter, all, { search: term, limit: 20 }),
    ),
  );
  console.log('');
  console.log(`${n} instances, ${RUNS} requests a case after ${WARMUP} warm-up, sequential, one signed-in session`);
  for (const l of table(
    [
      'case (instances changelist, 100 rows)',
      'HTTP median ms',
      'HTTP p95 ms',
      'SQL alone median ms',
      'SQL alone p95 ms',
      'page kB',
      'p95 < 50 ms',
    ],
    rows,
  ))
    console.log(l);
}

async function main() {
  const which = process.argv[2] ?? 'all';
  if (which === 'all' || which === 'changelist' || which === 'ingest') {
    await withConsole(async (ctx) => {
      if (which !== 'ingest') await changelistBench(ctx);
      if (which !== 'changelist') {
        const lines = await ingestBench(ctx.db, ctx.url, ctx.pids, ctx.log);
        console.log('');
        for (const l of lines) console.log(l);
      }
    });
  }
  if (which === 'all' || which === 'ops') {
    const lines = await opsBench((m) => console.log(`bench: ${m}`));
    console.log('');
    for (const l of lines) console.log(l);
  }
  if (which === 'all' || which === 'observe') {
    const lines = await observeBench((m) => console.log(`bench: ${m}`));
    console.log('');
    for (const l of lines) console.log(l);
  }
  if (which === 'all' || which === 'waves') {
    const lines = await wavesBench((m) => console.log(`bench: ${m}`));
    console.log('');
    for (const l of lines) console.log(l);
  }
  if (which === 'all' || which === 'failover') {
    const lines = await failoverBench((m) => console.log(`bench: ${m}`));
    console.log('');
    for (const l of lines) console.log(l);
  }
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
