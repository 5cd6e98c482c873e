// Drift at fleet scale: 5,000 instances in the inventory (a small real lab on 127.0.78.x, the rest simulated
// endpoints on 127.30.x.x answering the refresh as a real instance does; see sim-fleet.ts), every one under a
// parameter group. Measured:
// - the settings pass when nothing changed (what it costs every PGHERD_SETTINGS_EVERY_MS): its time at 5,000
//   instances and per instance, beside the plain way of finding drift (read pg_settings of every instance
//   each pass), whose cost an instance is measured over the real ones in the same run;
// - a group edited: every instance judged again;
// - the objects pass when nothing changed, beside the settings pass in the same run (it must cost no more);
// - the time from an ALTER SYSTEM and its reload on a real instance to its drift in the inventory, with the
//   worker's own loops (the shared refresh every 250 ms at its default interval, the settings pass at its
//   default), over several trials: the 60 s target.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import type { Db } from '@/db/client';
import { PROJECT_ROOT, startLab, stopLab, useLabSettings } from '@/lib/lab/lab';
import { seededDatabase } from '@/lib/lab/seed';
import { query } from '@/lib/lab/postgres';
import { refreshShare } from '@/lib/fleet/refresh-share';
import { mapLimit } from '@/lib/adapters/async/map-limit';
import { instanceClient } from '@/lib/fleet/pg-access';
import { judgeDrift, settingsPass } from '@/lib/fleet/settings/drift-pass';
import { objectsPass } from '@/lib/fleet/objects/objects-pass';
import { setting } from '@/lib/settings/settings';
import { SIM_ENVIRONMENT, startSimFleet, type SimFleet } from './sim-fleet';
import { percentiles, table } from './table';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-config-lab.json');
const INSTANCES = Number(process.env.BENCH_CONFIG_INSTANCES ?? 5000);
const TRIALS = Number(process.env.BENCH_CONFIG_TRIALS ?? 8);
const QUIET_PASSES = 20;

const GROUP = `checkpoint_completion_target = '0.9'
effective_cache_size = '{memory_mb * 3 / 4}MB'
maintenance_work_mem = '{min(memory_mb / 16, 2048)}MB'
random_page_cost = '1.1'
work_mem = '4MB'`;

const OBJECTS = `role app_owner
role app login in=app_owner
database app owner=app_owner
ignore role replicator`;

export async function configBench(log: (m: string) => void): Promise<string[]> {
  const lab = await startLab({
    aws: false,
    file: FILE,
    redis: false,
    dns: false,
    ldap: false,
    pgbouncer: [],
    fleet: { environments: ['production'], herds: ['a', 'b'], replicas: 2, sites: ['dc-a'], subnet: '127.0.78' },
    log,
  });
  let sim: SimFleet | null = null;
  let made: { db: Db; pool: pg.Pool } | null = null;
  try {
    useLabSettings(lab);
    made = await seededDatabase(lab, 8);
    const { db } = made;
    sim = await startSimFleet(lab, db, INSTANCES - lab.instances.length, log);
    process.env.PGHERD_PG_CONFIG = sim.pgConfigFile;
    const total = (await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM instances`)).rows[0]?.n ?? 0;

    // One group for every environment, the hosts' memory and cores as agents report them.
    await db.execute(sql`INSERT INTO parameter_groups (name, settings) VALUES ('bench', ${GROUP})`);
    await db.execute(sql`UPDATE environments SET parameter_group_id = (SELECT id FROM parameter_groups WHERE name = 'bench')`);
    await db.execute(sql`UPDATE servers SET memory_mb = 16384, cpus = 4`);
    // The lab's own settings on its real instances, as the group says (in line to begin with).
    for (const i of lab.instances) {
      await query(i.dsn, "ALTER SYSTEM SET effective_cache_size = '12288MB'");
      await query(i.dsn, "ALTER SYSTEM SET maintenance_work_mem = '1024MB'");
      await query(i.dsn, "ALTER SYSTEM SET random_page_cost = '1.1'");
      await query(i.dsn, "ALTER SYSTEM SET checkpoint_completion_target = '0.9'");
      await query(i.dsn, 'SELECT pg_reload_conf()');
    }

    // A first refresh of everything (the load times), the real instances' settings read, the simulated ones
    // given a copy of a real reading (they answer the refresh, not pg_settings).
    const share = refreshShare(db, { holder: 'bench', intervalMs: setting('PGHERD_REFRESH_INTERVAL_MS'), concurrency: 64 });
    await db.execute(sql`UPDATE herds SET observe_due_at = '-infinity', observed_by = NULL`);
    const first = await share.round();
    log(`first refresh round: ${first.observed} instances in ${first.ms} ms`);
    const simEnv = sql`(SELECT id FROM environments WHERE name = ${SIM_ENVIRONMENT})`;
    await db.execute(sql`UPDATE instances SET settings_loaded_at = conf_loaded_at WHERE environment_id = ${simEnv}`);
    const real = await settingsPass(db);
    if (real.read !== lab.instances.length) throw new Error(`the real instances' settings were not all read: ${JSON.stringify(real)}`);
    await db.execute(sql`
      WITH src AS (SELECT settings, server_version_num FROM setting_snapshots ORDER BY id LIMIT 1),
      made AS (
        INSERT INTO setting_snapshots (instance_id, herd_id, server_version_num, settings, changed, effective_at)
        SELECT i.id, i.herd_id, src.server_version_num, src.settings, '{}'::jsonb, i.conf_loaded_at
        FROM instances i, src WHERE i.environment_id = ${simEnv} RETURNING id, instance_id)
      UPDATE instances i SET settings_snapshot_id = made.id FROM made WHERE i.id = made.instance_id`);
    const j0 = performance.now();
    const judged = await judgeDrift(db);
    const firstJudgeMs = performance.now() - j0;
    log(`first judgement: ${judged.judged} instances in ${firstJudgeMs.toFixed(0)} ms, ${judged.drifted} drifted`);

    // The pass when nothing changed, as every PGHERD_SETTINGS_EVERY_MS.
    const quiet: number[] = [];
    for (let k = 0; k < QUIET_PASSES; k++) {
      const t = performance.now();
      const r = await settingsPass(db);
      quiet.push(performance.now() - t);
      if (r.read || r.judged) throw new Error(`a quiet pass read or judged something: ${JSON.stringify(r)}`);
    }
    // Fleet objects (lib/fleet/objects): one object set for every environment, the real primaries read, the
    // simulated ones given a copy of a real reading at their own fingerprint (they answer the refresh only).
    await db.execute(sql`INSERT INTO object_sets (name, declaration) VALUES ('bench', ${OBJECTS})`);
    await db.execute(sql`UPDATE environments SET object_set_id = (SELECT id FROM object_sets WHERE name = 'bench')`);
    const objectsFirst = await objectsPass(db);
    log(`objects: ${objectsFirst.read} real primaries read, ${objectsFirst.failed} failed`);
    await db.execute(sql`
      WITH src AS (SELECT reading FROM object_readings ORDER BY instance_id LIMIT 1)
      INSERT INTO object_readings (instance_id, reading, fingerprint, conf_loaded_at, read_at)
      SELECT i.id, src.reading, i.objects_fingerprint, i.conf_loaded_at, now() FROM instances i, src
      WHERE i.environment_id = ${simEnv} AND i.role = 'primary'
      ON CONFLICT (instance_id) DO NOTHING`);
    const o0 = performance.now();
    const objectsJudged = await objectsPass(db);
    const objectsFirstJudgeMs = performance.now() - o0;
    log(`objects: first judgement of ${objectsJudged.judged} instances in ${objectsFirstJudgeMs.toFixed(0)} ms`);
    const objectsQuiet: number[] = [];
    for (let k = 0; k < QUIET_PASSES; k++) {
      const t = performance.now();
      const r = await objectsPass(db);
      objectsQuiet.push(performance.now() - t);
      if (k === QUIET_PASSES - 1) log(`objects: a quiet pass's parts: due ${r.ms.due.toFixed(1)} ms, judge ${r.ms.judge.toFixed(1)} ms`);
      if (r.read || r.judged || r.failed) throw new Error(`a quiet objects pass read or judged something: ${JSON.stringify(r)}`);
    }
    // A group edited: every instance judged again.
    await db.execute(sql`UPDATE parameter_groups SET version = version + 1 WHERE name = 'bench'`);
    const e0 = performance.now();
    const edited = await judgeDrift(db);
    const editMs = performance.now() - e0;

    // The plain way: every instance's pg_settings read and compared each pass, over kept sessions (the
    // cheapest it can be), on the real instances, at the refresh's concurrency.
    const clients = await Promise.all(
      lab.instances.map(async (i) => {
        const c = instanceClient({ host: i.address, port: i.port, serverEnvironment: i.environment }, { application_name: 'bench-plain' });
        await c.connect();
        return c;
      }),
    );
    const PLAIN_READS = 40;
    const p0 = performance.now();
    for (let k = 0; k < PLAIN_READS; k++)
      await mapLimit(clients, 16, async (c) => {
        const r = await c.query<{ name: string; setting: string }>(
          'SELECT name, setting, source, sourcefile, pending_restart FROM pg_settings',
        );
        if (!r.rows.length) throw new Error('no settings');
      });
    const plainPerInstanceMs = (performance.now() - p0) / (PLAIN_READS * clients.length);
    await Promise.all(clients.map((c) => c.end()));

    // Detection: the worker's loops, an ALTER SYSTEM and its reload at a random moment, the time until the
    // inventory says the instance drifted (and, undone, that it is in line again).
    const refreshEvery = setting('PGHERD_REFRESH_INTERVAL_MS');
    const settingsEvery = setting('PGHERD_SETTINGS_EVERY_MS');
    let stopping = false;
    const loop = async (every: number, fn: () => Promise<unknown>) => {
      while (!stopping) {
        const t = Date.now();
        await fn();
        await new Promise((r) => setTimeout(r, Math.max(0, every - (Date.now() - t))));
      }
    };
    const loops = [loop(250, () => share.round()), loop(settingsEvery, () => settingsPass(db))];
    const detections: number[] = [];
    try {
      for (let k = 0; k < TRIALS; k++) {
        // Each instance twice: drifted, then in line again.
        const target = lab.instances[Math.floor(k / 2) % lab.instances.length]!;
        const [row] = (
          await db.execute<{ id: number }>(sql`
          SELECT i.id FROM instances i JOIN servers s ON s.id = i.server_id WHERE s.hostname = ${target.server} AND i.port = ${target.port}`)
        ).rows;
        await new Promise((r) => setTimeout(r, Math.random() * settingsEvery));
        const drift = k % 2 === 0;
        await query(target.dsn, drift ? "ALTER SYSTEM SET work_mem = '64MB'" : 'ALTER SYSTEM RESET work_mem');
        await query(target.dsn, 'SELECT pg_reload_conf()');
        const t0 = performance.now();
        for (;;) {
          const [x] = (await db.execute<{ d: number | null }>(sql`SELECT settings_drift AS d FROM instances WHERE id = ${row!.id}`)).rows;
          if (drift ? (x?.d ?? 0) > 0 : x?.d === 0) break;
          if (performance.now() - t0 > 5 * (refreshEvery + settingsEvery))
            throw new Error(`trial ${k}: not seen after ${(performance.now() - t0).toFixed(0)} ms`);
          await new Promise((r) => setTimeout(r, 100));
        }
        detections.push(performance.now() - t0);
        log(
          `trial ${k + 1}/${TRIALS} (${drift ? 'drifted' : 'in line again'}): seen after ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
        if (!drift) await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      stopping = true;
      share.stop();
      await Promise.all(loops);
      share.close();
    }
    const q = percentiles(quiet);
    const oq = percentiles(objectsQuiet);
    const d = percentiles(detections);
    const plainPassMs = plainPerInstanceMs * total;
    return [
      `drift at ${total} instances (${lab.instances.length} real on 127.0.78.x, the rest simulated), every one under one parameter group`,
      ...table(
        ['settings pass', 'ms', 'µs an instance'],
        [
          [`nothing changed (median of ${QUIET_PASSES})`, q.p50.toFixed(1), ((q.p50 * 1000) / total).toFixed(1)],
          [`nothing changed (p95 of ${QUIET_PASSES})`, q.p95.toFixed(1), ((q.p95 * 1000) / total).toFixed(1)],
          ['a group edited: every instance judged again', editMs.toFixed(0), ((editMs * 1000) / edited.judged).toFixed(0)],
          [
            `plain: read every instance's pg_settings each pass (kept sessions, concurrency 16; measured on the ${lab.instances.length} real ones)`,
            plainPassMs.toFixed(0),
            (plainPerInstanceMs * 1000).toFixed(0),
          ],
        ],
      ),
      '',
      `fleet objects at ${total} instances, every herd under one object set (the target: a quiet objects pass costs no more than the quiet settings pass above)`,
      ...table(
        ['objects pass', 'ms', 'µs an instance', 'settings pass, same run (ms)'],
        [
          [`nothing changed (median of ${QUIET_PASSES})`, oq.p50.toFixed(1), ((oq.p50 * 1000) / total).toFixed(1), q.p50.toFixed(1)],
          [`nothing changed (p95 of ${QUIET_PASSES})`, oq.p95.toFixed(1), ((oq.p95 * 1000) / total).toFixed(1), q.p95.toFixed(1)],
          [
            'the first judgement of every primary',
            objectsFirstJudgeMs.toFixed(0),
            ((objectsFirstJudgeMs * 1000) / total).toFixed(0),
            firstJudgeMs.toFixed(0),
          ],
        ],
      ),
      '',
      `from ALTER SYSTEM + reload to the inventory (refresh interval ${refreshEvery / 1000} s, settings pass every ${settingsEvery / 1000} s; ${TRIALS} trials)`,
      ...table(
        ['detection', 'median s', 'p95 s', 'max s', 'target'],
        [[`${TRIALS} trials`, (d.p50 / 1000).toFixed(1), (d.p95 / 1000).toFixed(1), (Math.max(...detections) / 1000).toFixed(1), '60 s']],
      ),
    ];
  } finally {
    await sim?.stop();
    await made?.pool.end();
    await stopLab(FILE);
  }
}
