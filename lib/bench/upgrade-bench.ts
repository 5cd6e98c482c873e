// Benchmarks of version upgrades on a lab of their own (127.0.72.x: herd "minor" of 3 on the lab's
// 15.17 build, herd "major" of 2 on Debian's 15.18, PgBouncer in front of each, a scratch server for
// green), through the engine as the console runs them, each under a writer committing every 20 ms
// through PgBouncer, beside the baseline measured in the same run (a plain switchover of the same herd
// under the same writer):
// 1. minor rolling upgrade to 15.18 and back: the writer's longest gap, errors, lost commits;
// 2. blue/green to 17: green built and caught up, then cut-over and roll back, twice: the longest gap,
//    lost commits, duplicate-key errors (sequences), every row on the side that serves;
// 3. in place to Debian's 17 (herd "inplace" of 3 on Debian's 15.18, no PgBouncer), under a writer
//    that reconnects and retries every 20 ms straight to the primary: the downtime the upgrade measures
//    and the writer's longest gap, beside a plain restart of the same primary under the same writer and
//    blue/green's cut-over above.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { herds, servers } from '@/db/schema';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { restartInstance } from '@/lib/lab/faults';
import { ingestLabReports } from '@/lib/lab/agents';
import { debianBuild } from '@/lib/lab/debian-build';
import { labBuild } from '@/lib/lab/builds';
import { upgradeInPlaceAction } from '@/lib/actions/upgrade/in-place.action';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { upgradeMinorAction } from '@/lib/actions/upgrade/minor.action';
import { upgradeCutoverAction } from '@/lib/actions/upgrade/cut-over.action';
import { upgradeMajorAction } from '@/lib/actions/upgrade/build.action';
import { upgradeRollbackAction } from '@/lib/actions/upgrade/roll-back.action';
import type { AnyAction } from '@/lib/engine/define-action';
import { planOperation } from '@/lib/engine/plan';
import type { targetQueue } from '@/lib/engine/queue';
import { submitOperation } from '@/lib/engine/submit';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { startReconnectingWriter, startWriter, type Writer } from '@/lib/testing/writer';
import { waitFor } from '@/lib/testing/wait';
import { settle } from './ops-bench';
import { benchEngine } from './failover-bench';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-upgrade-lab.json');
const EVERY_MS = 20;
const actor = { id: null, username: 'bench', access: SYSTEM_ACCESS };

type Queue = ReturnType<typeof targetQueue>;

async function runOp(db: Db, queue: Queue, action: AnyAction, herdId: number, params: Record<string, unknown> = {}) {
  const plan = await planOperation(db, SYSTEM_ACCESS, action, [herdId], params);
  const refused = plan.targets.filter((t) => t.refused);
  if (refused.length) throw new Error(`${action.name} refused: ${refused.map((t) => t.refused ?? '').join('; ')}`);
  const t0 = performance.now();
  const { id } = await submitOperation(
    db,
    queue,
    action,
    {
      herdIds: [herdId],
      params,
      digest: plan.digest,
      confirmation: plan.typeToConfirm ?? '',
      idempotencyKey: randomBytes(8).toString('hex'),
    },
    actor,
  );
  await settle(db, id).catch(async (err: unknown) => {
    const why = await db.execute<{ error: string | null; steps: string | null }>(sql`
      SELECT t.error, (SELECT string_agg(s.name || ': ' || right(s.stderr_tail, 400), '; ') FROM operation_steps s
                       WHERE s.target_id = t.id AND s.status = 'failed') AS steps
      FROM operation_targets t WHERE t.operation_id = ${id}`);
    throw new Error(`${action.name}: ${String(err)}: ${why.rows.map((r) => `${r.error ?? ''} (${r.steps ?? ''})`).join('; ')}`);
  });
  const ms = performance.now() - t0;
  if (ms > 2000 || action === upgradeCutoverAction || action === upgradeRollbackAction) {
    const slow = await db.execute<{ name: string; ms: number }>(sql`
      SELECT s.name, (extract(epoch FROM s.finished_at - s.started_at) * 1000)::float8 AS ms FROM operation_steps s
      JOIN operation_targets t ON t.id = s.target_id WHERE t.operation_id = ${id} ORDER BY s.seq`);
    console.log(
      `bench: ${action.name} steps: ${slow.rows
        .filter((r) => r.ms > 50)
        .map((r) => `${r.name} ${r.ms.toFixed(0)} ms`)
        .join('; ')}`,
    );
  }
  return ms;
}

/** One operation under the writer: its longest gap (a gap ending just after the operation still counts). */
async function underWriter(w: Writer, run: () => Promise<number>): Promise<{ gap: number; ms: number }> {
  w.resetGap();
  const ms = await run();
  await new Promise((r) => setTimeout(r, 300));
  return { gap: w.maxGapMs, ms };
}

const lostOn = async (dsn: string, table: string, acked: number[]) =>
  acked.length - (await query<{ n: number }>(dsn, `SELECT count(*)::int AS n FROM ${table} WHERE n = ANY($1::int[])`, [acked]))[0]!.n;
const worst = (xs: number[]) => Math.max(...xs).toFixed(0);

/** 3. In place: a plain restart of the primary (the floor of any stop and start), then the upgrade, each under the reconnecting writer. */
async function inPlaceBench(
  lab: LabInfo,
  db: Db,
  queue: Queue,
  herdId: number,
  cutGap: number,
  log: (m: string) => void,
): Promise<string[]> {
  const p = lab.instances.find((i) => i.herd === 'inplace' && i.role === 'primary')!;
  const dsn = `postgres://postgres@${p.address}:${p.port}/postgres`;
  await query(dsn, 'CREATE TABLE writes (n int PRIMARY KEY)');
  await query(dsn, 'CREATE TABLE kept AS SELECT g AS n, md5(g::text) AS v FROM generate_series(1, 1000000) g');
  const size = (await query<{ s: string }>(dsn, 'SELECT pg_size_pretty(pg_database_size(current_database())) AS s'))[0]!.s;
  const w = startReconnectingWriter(async () => dsn);
  await new Promise((r) => setTimeout(r, 500));
  const restart = await underWriter(w, async () => {
    const t0 = performance.now();
    await restartInstance(lab, p);
    return performance.now() - t0;
  });
  log(`in place: plain restart, longest gap ${restart.gap.toFixed(0)} ms`);
  const up = await underWriter(w, () => runOp(db, queue, upgradeInPlaceAction, herdId, { toVersion: '17', withoutBackup: true }));
  await new Promise((r) => setTimeout(r, 500));
  await w.stop();
  const [step] = (
    await db.execute<{ out: string }>(sql`
      SELECT s.stdout_tail AS out FROM operation_steps s WHERE s.name LIKE ${`start ${p.server} on %`} ORDER BY s.id DESC LIMIT 1`)
  ).rows;
  const downMs = Number(/down for (\d+) ms/.exec(step?.out ?? '')?.[1] ?? NaN);
  const lost = await lostOn(dsn, 'writes', w.acked);
  log(`in place: to 17, down ${downMs} ms, longest gap ${up.gap.toFixed(0)} ms, ${(up.ms / 1000).toFixed(1)} s`);
  return [
    `in place 15.18 -> ${debianBuild().version} (pg_upgrade --link) of a 3-member herd (${size}), a writer reconnecting and committing every 20 ms straight to the primary (${w.acked.length} commits):`,
    `  plain restart of the primary (baseline): longest gap ${restart.gap.toFixed(0)} ms`,
    `  downtime, the primary's stop to its answer on 17: ${downMs} ms; the writer's longest gap ${up.gap.toFixed(0)} ms; confirm -> done (replicas copied afresh, statistics) ${(up.ms / 1000).toFixed(1)} s`,
    `  beside blue/green's cut-over above: longest gap ${cutGap.toFixed(0)} ms; lost ${lost}, failed tries ${w.errors.length}`,
  ];
}

export async function upgradeBench(log: (m: string) => void): Promise<string[]> {
  const lab: LabInfo = await startLab({
    aws: false,
    ldap: false,
    file: FILE,
    fleet: {
      environments: ['ub'],
      herds: ['minor', 'major', 'inplace'],
      replicas: 2,
      sites: ['dc-a', 'dc-b'],
      subnet: '127.0.72',
      builds: { 'ub/minor': '15-older' },
    },
    pgbouncer: [
      { environment: 'ub', herd: 'minor' },
      { environment: 'ub', herd: 'major' },
    ],
    log,
  });
  const engine = await benchEngine(lab, 'bench-upgrade', 4).catch(async (err: unknown) => {
    await stopLab(FILE);
    throw err;
  });
  const { db, queue } = engine;
  const out: string[] = [];
  try {
    // The lab's Debian 17 too, as an admin adds it to the agents' buildDirectories (the in-place upgrade's).
    await ingestLabReports(db, lab, { alsoBuilds: [debianBuild().binDir] });
    const ids = new Map((await db.select({ id: herds.id, name: herds.name }).from(herds)).map((h) => [h.name, h.id]));
    const pooler = (herd: string) => lab.pgbouncer.find((p) => p.herd === herd)!.dsn;

    // 1. Minor: a plain switchover, then the rolling upgrade to 15.18 and back, under one writer.
    await query(pooler('minor'), 'CREATE TABLE writes (n int PRIMARY KEY)');
    const w1 = startWriter(pooler('minor'), 'writes', { everyMs: EVERY_MS });
    await new Promise((r) => setTimeout(r, 500));
    // The baseline: as many plain switchovers as the upgrade there and back makes (three).
    const plains: { gap: number; ms: number }[] = [];
    for (let k = 0; k < 3; k++) {
      plains.push(await underWriter(w1, () => runOp(db, queue, switchoverAction, ids.get('minor')!)));
      log(`minor: plain switchover ${k + 1}, longest gap ${plains[k]!.gap.toFixed(0)} ms`);
    }
    const plain1 = plains.reduce((a, b) => (b.gap > a.gap ? b : a));
    const up = await underWriter(w1, () => runOp(db, queue, upgradeMinorAction, ids.get('minor')!, { toVersion: '15.18' }));
    log(`minor: to 15.18, longest gap ${up.gap.toFixed(0)} ms, ${(up.ms / 1000).toFixed(1)} s`);
    const down = await underWriter(w1, () =>
      runOp(db, queue, upgradeMinorAction, ids.get('minor')!, { toVersion: '15.17', switchBack: true }),
    );
    log(`minor: back to 15.17, longest gap ${down.gap.toFixed(0)} ms, ${(down.ms / 1000).toFixed(1)} s`);
    await w1.stop();
    const lost1 = await lostOn(pooler('minor'), 'writes', w1.acked);
    out.push(
      `minor rolling upgrade of a 3-member herd behind PgBouncer, a writer committing every ${EVERY_MS} ms through it (${w1.acked.length} commits):`,
    );
    out.push(
      `  plain switchover (baseline, 3 rounds): longest gap ${plains.map((p) => p.gap.toFixed(0)).join(', ')} ms, confirm -> done ${(plain1.ms / 1000).toFixed(1)} s`,
    );
    out.push(
      `  15.17 -> 15.18: longest gap ${up.gap.toFixed(0)} ms, ${(up.ms / 1000).toFixed(1)} s; 15.18 -> 15.17 and switch back: ${down.gap.toFixed(0)} ms, ${(down.ms / 1000).toFixed(1)} s`,
    );
    out.push(
      `  lost ${lost1}, errors ${w1.errors.length}; target: no worse than the plain switchovers' worst: ${Math.max(up.gap, down.gap) <= plain1.gap ? 'met' : 'not met'} (worst ${worst([up.gap, down.gap])} ms vs ${plain1.gap.toFixed(0)} ms)`,
    );

    // 2. Major: wal_level logical (a restart, before the load), green built, then the switches.
    const major = lab.instances.find((i) => i.herd === 'major' && i.role === 'primary')!;
    const majorDsn = `postgres://postgres@${major.address}:${major.port}/postgres`;
    // Every member, so that whichever is the primary after the baseline switchover can publish.
    for (const m of lab.instances.filter((i) => i.herd === 'major')) {
      await query(`postgres://postgres@${m.address}:${m.port}/postgres`, 'ALTER SYSTEM SET wal_level = logical');
      await restartInstance(lab, m);
    }
    // Its replicas stream again before anything is measured (a WAL receiver retries every few seconds).
    await waitFor(
      "the major herd's replicas streaming again",
      async () =>
        (await query<{ n: number }>(majorDsn, `SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'`))[0]!.n >= 2
          ? true
          : undefined,
      60_000,
    );
    await query(pooler('major'), 'CREATE TABLE items (id bigserial PRIMARY KEY, n int NOT NULL)');
    await query(pooler('major'), 'INSERT INTO items (n) SELECT -g FROM generate_series(1, 100000) g');
    const w2 = startWriter(pooler('major'), 'items', { everyMs: EVERY_MS });
    await new Promise((r) => setTimeout(r, 500));
    const plain2 = await underWriter(w2, () => runOp(db, queue, switchoverAction, ids.get('major')!));
    log(`major: plain switchover, longest gap ${plain2.gap.toFixed(0)} ms`);
    const scratch = lab.backup!.scratch[0]!;
    const [srv] = await db.select({ id: servers.id }).from(servers).where(eq(servers.hostname, scratch.server));
    const t0 = performance.now();
    await runOp(db, queue, upgradeMajorAction, ids.get('major')!, {
      toVersion: labBuild('17').version,
      serverId: srv!.id,
      dataDirectory: path.join(scratch.dataRoot, 'green17'),
      sslCertFile: scratch.tls!.certFile,
      sslKeyFile: scratch.tls!.keyFile,
    });
    const buildS = (performance.now() - t0) / 1000;
    log(`major: green built and current in ${buildS.toFixed(1)} s`);
    const green = `postgres://postgres@${scratch.address}:${major.port}/postgres`;
    // Blue's primary as it is now (the baseline switchover moved it): replicas may lag a moment behind.
    const bluePrimaryDsn = async () => {
      for (const m of lab.instances.filter((i) => i.herd === 'major')) {
        const dsn = `postgres://postgres@${m.address}:${m.port}/postgres`;
        const [r] = await query<{ rec: boolean }>(dsn, 'SELECT pg_is_in_recovery() AS rec');
        if (r && !r.rec) return dsn;
      }
      throw new Error('blue has no primary');
    };
    const cuts: number[] = [];
    const backs: number[] = [];
    const lost: { cut: number; back: number } = { cut: 0, back: 0 };
    for (let round = 0; round < 2; round++) {
      const c = await underWriter(w2, () => runOp(db, queue, upgradeCutoverAction, ids.get('major')!, { fewerReplicas: true }));
      cuts.push(c.gap);
      lost.cut = Math.max(lost.cut, await lostOn(green, 'items', [...w2.acked]));
      log(`major: cut-over ${round + 1}, longest gap ${c.gap.toFixed(0)} ms, confirm -> done ${(c.ms / 1000).toFixed(1)} s`);
      const b = await underWriter(w2, () => runOp(db, queue, upgradeRollbackAction, ids.get('major')!));
      backs.push(b.gap);
      lost.back = Math.max(lost.back, await lostOn(await bluePrimaryDsn(), 'items', [...w2.acked]));
      log(`major: roll back ${round + 1}, longest gap ${b.gap.toFixed(0)} ms, confirm -> done ${(b.ms / 1000).toFixed(1)} s`);
    }
    await w2.stop();
    const dupes = w2.errors.filter((e) => /duplicate key/.test(e)).length;
    out.push(
      `blue/green 15.18 -> ${labBuild('17').version} of a herd behind PgBouncer (100,000 rows), a writer committing every ${EVERY_MS} ms through it (${w2.acked.length} commits):`,
    );
    out.push(`  plain switchover (baseline): longest gap ${plain2.gap.toFixed(0)} ms`);
    out.push(`  green built and caught up: ${buildS.toFixed(1)} s`);
    out.push(
      `  cut-over: longest gap ${cuts.map((g) => g.toFixed(0)).join(', ')} ms; every row on green: ${lost.cut === 0 ? 'yes' : `no, ${lost.cut} missing`}`,
    );
    out.push(
      `  roll back: longest gap ${backs.map((g) => g.toFixed(0)).join(', ')} ms; every row on blue: ${lost.back === 0 ? 'yes' : `no, ${lost.back} missing`}`,
    );
    out.push(
      `  errors ${w2.errors.length}, duplicate-key ${dupes}; target: gap <= 1000 ms, 0 lost, 0 duplicate-key (${Math.max(...cuts, ...backs) <= 1000 && lost.cut + lost.back + dupes === 0 ? 'met' : 'not met'})`,
    );
    out.push(...(await inPlaceBench(lab, db, queue, ids.get('inplace')!, Math.max(...cuts), log)));
  } finally {
    await engine.close();
    await stopLab(FILE);
  }
  return out;
}
