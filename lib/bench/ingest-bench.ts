// The ingest API under many agents: SERVERS simulated hosts with 4 instances each (herds of 3 across
// servers: a primary and two replicas per port), their reports sent over HTTP by CONCURRENCY agents at
// once to the built console, LSNs moving every round as on a live fleet (each report changes its 4
// rows). Next to it, in the same run, a plain loop of the same upserts (ingestReport called directly,
// no HTTP, no token, no JSON), sequential and with the same concurrency.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { ingestReport, type AgentServer } from '@/lib/features/agents/ingest';
import type { InstanceReport, Report } from '@/lib/agent/report';
import { hashToken } from '@/lib/features/auth/api-tokens';
import { treeCpuSeconds } from '@/lib/lab/proc';
import { percentiles, table } from './table';

const SERVERS = Number(process.env.BENCH_INGEST_SERVERS ?? 1500);
const CONCURRENCY = Number(process.env.BENCH_INGEST_CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.BENCH_INGEST_ROUNDS ?? 3);
const PORTS = [5432, 5433, 5434, 5435];
const TARGET = 1000;
const GiB = 1024 ** 3;

interface SimServer extends AgentServer {
  token: string;
  address: string;
  k: number;
}

const lsnText = (n: number) =>
  `${Math.floor(n / 2 ** 32)
    .toString(16)
    .toUpperCase()}/${(n % 2 ** 32).toString(16).toUpperCase()}`;

/**
 * Server k's report in round r: ports 5432-5435; server k is the primary of its group of 3 when k % 3 = 0.
 * With `disk` (as today's agents send), each instance's data and WAL filesystems, filling a little each round.
 */
function reportOf(s: SimServer, servers: SimServer[], round: number, disk = true): Report {
  const primary = servers[s.k - (s.k % 3)];
  const isPrimary = s.k % 3 === 0;
  const base = 0x3000000 + round * 16384;
  const instances: InstanceReport[] = PORTS.map((port, j) => {
    const sysid = String(8000000000000000000n + BigInt(Math.floor(s.k / 3) * PORTS.length + j));
    const common = {
      port,
      dataDirectory: `/var/lib/postgresql/16/c${j}`,
      state: 'running' as const,
      majorVersion: 16,
      systemIdentifier: sysid,
      timeline: 1,
      pendingRestart: [],
      startedAt: '2026-11-01T00:00:00Z',
      ...(disk
        ? {
            disk: {
              data: { freeBytes: 400 * GiB - round * 1024 * 1024, totalBytes: 500 * GiB },
              wal: { freeBytes: 90 * GiB - round * 65536, totalBytes: 100 * GiB },
            },
          }
        : {}),
    };
    return isPrimary
      ? {
          ...common,
          inRecovery: false,
          currentLsn: lsnText(base + j * 64),
          replicas: [1, 2].map((d) => ({
            clientAddr: servers[Math.min(s.k + d, servers.length - 1)]!.address,
            applicationName: `r${d}`,
            state: 'streaming',
            sentLsn: lsnText(base + j * 64),
            replayLsn: lsnText(base + j * 64 - 8),
          })),
        }
      : {
          ...common,
          inRecovery: true,
          receivedLsn: lsnText(base + j * 64 - 8),
          replayedLsn: lsnText(base + j * 64 - 8 * (s.k % 3)),
          upstream: { host: primary!.address, port },
          replicas: [],
        };
  });
  return { format: 1, agentVersion: 'bench', hostname: s.hostname, observedAt: new Date().toISOString(), intervalSeconds: 60, instances };
}

/** The benchmark's servers (with agent tokens) and herds, in an environment of their own. */
async function seed(db: Db): Promise<SimServer[]> {
  const servers: SimServer[] = Array.from({ length: SERVERS }, (_, k) => ({
    id: 0,
    k,
    hostname: `agent${String(k).padStart(5, '0')}.ingest.example.com`,
    address: `10.200.${Math.floor(k / 250)}.${k % 250}`,
    token: `pgha_${randomBytes(32).toString('base64url')}`,
  }));
  await db.transaction(async (tx) => {
    const env = await tx.execute<{ id: number }>(
      sql`INSERT INTO environments (name, description) VALUES ('ingest-bench', 'agents of the ingest benchmark') RETURNING id`,
    );
    const envId = env.rows[0]!.id;
    const groups = Math.ceil(SERVERS / 3);
    await tx.execute(sql`
      INSERT INTO herds (environment_id, name, system_identifier, pg_version)
      SELECT ${envId}, 'ingest-' || g || '-' || j, (8000000000000000000 + g * ${PORTS.length} + j)::text, 16
      FROM generate_series(0, ${groups - 1}::int) g, generate_series(0, ${PORTS.length - 1}::int) j`);
    for (let i = 0; i < servers.length; i += 500) {
      const chunk = servers.slice(i, i + 500);
      const rows = await tx.execute<{ id: number; hostname: string }>(sql`
        INSERT INTO servers (hostname, environment_id, address, agent_token_hash)
        VALUES ${sql.join(
          chunk.map((s) => sql`(${s.hostname}, ${envId}, ${s.address}, ${hashToken(s.token)})`),
          sql`, `,
        )}
        RETURNING id, hostname`);
      const byName = new Map(rows.rows.map((r) => [r.hostname, r.id]));
      for (const s of chunk) s.id = byName.get(s.hostname)!;
    }
  });
  await db.execute(sql`ANALYZE`);
  return servers;
}

/** Runs `work` for every server, `concurrency` at a time (each agent takes the next server). */
async function drive(servers: SimServer[], concurrency: number, work: (s: SimServer) => Promise<void>) {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < servers.length) {
        const s = servers[next++];
        const t = performance.now();
        await work(s!);
        lat.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { perSecond: servers.length / seconds, ...percentiles(lat) };
}

export async function ingestBench(
  db: Db,
  url: string,
  pids: { console: number; database: number },
  log: (m: string) => void,
): Promise<string[]> {
  let t = performance.now();
  const servers = await seed(db);
  log(
    `ingest: ${SERVERS} servers with agent tokens, ${Math.ceil(SERVERS / 3) * PORTS.length} herds, in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  let round = 0;
  // Each round's bodies are made before it is timed: the agents' side costs nothing but the request.
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const target = new URL('/api/agent/v1/report', url);
  let bodies = new Map<number, string>();
  const prepare = (disk = true) => {
    bodies = new Map(servers.map((s) => [s.k, JSON.stringify(reportOf(s, servers, round, disk))]));
  };
  const post = (s: SimServer) =>
    new Promise<void>((resolve, reject) => {
      const body = bodies.get(s.k)!;
      const req = http.request(
        target,
        {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`${s.hostname}: HTTP ${res.statusCode ?? '?'} ${text.slice(0, 300)}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  // First reports create the instances (and warm the console): not timed.
  t = performance.now();
  prepare();
  await drive(servers, CONCURRENCY, post);
  round++;
  prepare();
  await drive(servers, CONCURRENCY, post);
  const { n } = (
    await db.execute<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM instances i JOIN servers s ON s.id = i.server_id WHERE s.hostname LIKE '%.ingest.example.com'`,
    )
  ).rows[0]!;
  log(`ingest: first reports created ${n} instances in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  if (n !== SERVERS * PORTS.length) throw new Error(`expected ${SERVERS * PORTS.length} instances, found ${n}`);

  const rows: string[][] = [];
  const add = (name: string, r: { perSecond: number; p50: number; p95: number }, target: boolean) =>
    rows.push([name, r.perSecond.toFixed(0), r.p50.toFixed(1), r.p95.toFixed(1), target ? (r.perSecond >= TARGET ? 'yes' : 'NO') : '']);
  round++;
  add(
    'plain loop, same upserts, sequential',
    await drive(servers, 1, (s) => ingestReport(db, s, reportOf(s, servers, round)).then(() => {})),
    false,
  );
  round++;
  add(
    `plain loop, same upserts, ${CONCURRENCY} at once (pool ${db.$client.options.max})`,
    await drive(servers, CONCURRENCY, (s) => ingestReport(db, s, reportOf(s, servers, round)).then(() => {})),
    false,
  );

  // Where the CPU goes during the HTTP rounds: the console, Postgres, and the simulated agents (this
  // process), all on the same 2 cores.
  // Each round twice: without the disk readings (the reports before agents sent them: the baseline) and
  // with them; only the latter counted in the CPU.
  const cpu = () => ({ console: treeCpuSeconds(pids.console), database: treeCpuSeconds(pids.database), agents: process.cpuUsage() });
  const spent = { console: 0, database: 0, agents: 0 };
  for (let i = 0; i < ROUNDS; i++) {
    round++;
    prepare(false);
    add(`HTTP, ${CONCURRENCY} agents at once, no disk readings (round ${i + 1})`, await drive(servers, CONCURRENCY, post), true);
    round++;
    prepare(true);
    const before = cpu();
    add(`HTTP, ${CONCURRENCY} agents at once, with disk readings (round ${i + 1})`, await drive(servers, CONCURRENCY, post), true);
    const after = cpu();
    spent.console += after.console - before.console;
    spent.database += after.database - before.database;
    spent.agents += (after.agents.user + after.agents.system - before.agents.user - before.agents.system) / 1e6;
  }
  const reports = ROUNDS * SERVERS;
  const perReport = {
    console: (spent.console * 1000) / reports,
    database: (spent.database * 1000) / reports,
    agents: (spent.agents * 1000) / reports,
  };
  const [check] = (
    await db.execute<{ moved: number; lagged: number }>(sql`
    SELECT count(*) FILTER (WHERE i.lsn >= ${0x3000000 + round * 16384 - 32})::int AS moved, count(*) FILTER (WHERE i.role = 'replica' AND i.lag_bytes > 0)::int AS lagged
    FROM instances i JOIN servers s ON s.id = i.server_id WHERE s.hostname LIKE '%.ingest.example.com'`)
  ).rows;
  const serverSide = perReport.console + perReport.database;
  return [
    ...(ROUNDS === 0
      ? []
      : [
          `CPU a report during the HTTP rounds with disk readings: console ${perReport.console.toFixed(2)} ms, Postgres ${perReport.database.toFixed(2)} ms, the simulated agents ${perReport.agents.toFixed(2)} ms (same 2 cores); the server side alone (${serverSide.toFixed(2)} ms) has room for ${(2000 / serverSide).toFixed(0)} reports/s on 2 cores`,
        ]),
    `Ingest: ${SERVERS} simulated agents' reports over loopback to the built console, LSNs moving each round (${SERVERS * PORTS.length} instance rows updated a round); after the run ${check!.moved} rows carry the last round's LSNs and ${check!.lagged} replicas are behind their primary's last report`,
    ...table([`case (${SERVERS} servers, reports of ${PORTS.length} instances)`, 'reports/s', 'p50 ms', 'p95 ms', `>= ${TARGET}/s`], rows),
  ];
}
