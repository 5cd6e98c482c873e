// Rotate pgherd's credentials at the scale of an environment: 100 herds in at most a minute of pgherd's
// time, and no failed login of a client that reconnects all through. The environment is the simulated
// fleet's (sim-postgres.ts: real TLS and SCRAM on the worker's side; ALTER ROLE changes the herd's
// verifier for every member at once, as replicas replay it), 100 herds of a primary and two replicas.
// pgherd's figure: the operation, submitted to a worker (16 targets at once), from submit to its end;
// beside it, in the same run, the plain way: a script that, herd after herd, connects to the primary,
// sets the password and logs in to each member with it. Through both, a client reconnects to every
// member as pgherd does (pgherd's connection code, its password file) and counts refused logins.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Db } from '@/db/client';
import { PROJECT_ROOT, startLab, stopLab, useLabSettings } from '@/lib/lab/lab';
import { seededDatabase } from '@/lib/lab/seed';
import { instanceClient, loginClient } from '@/lib/fleet/pg-access';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { scramVerifier } from '@/lib/fleet/objects/scram';
import { quoteLiteral } from '@/lib/fleet/objects/diff';
import { planOperation } from '@/lib/engine/plan';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { startTestWorker, submitPlanned, waitForOperation } from '@/lib/testing/operations';
import { rotateOwnCredentialsAction } from '@/lib/actions/objects/rotate-own-credentials.action';
import { SIM_ENVIRONMENT, startSimFleet, type SimFleet } from './sim-fleet';
import { table } from './table';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-rotate.json');
const HERDS = Number(process.env.BENCH_ROTATE_HERDS ?? 100);

/** A client reconnecting to every member, pgherd's way, until stopped: its logins and those refused. */
function reconnecting(members: InstanceRef[]) {
  const state = { on: true, logins: 0, refused: [] as string[] };
  const done = (async () => {
    while (state.on) {
      for (const m of members) {
        const c = instanceClient(m, { connectionTimeoutMillis: 5000 });
        c.on('error', () => {});
        try {
          await c.connect();
          state.logins++;
        } catch (err) {
          state.refused.push(`${m.label}: ${(err as Error).message}`);
        } finally {
          await c.end().catch(() => {});
        }
      }
    }
  })();
  return {
    stop: async () => {
      state.on = false;
      await done;
      return state;
    },
  };
}

async function connected(c: pg.Client): Promise<pg.Client> {
  c.on('error', () => {});
  await c.connect();
  return c;
}

export async function rotateBench(log: (m: string) => void): Promise<string[]> {
  const lab = await startLab({
    aws: false,
    file: FILE,
    dns: false,
    ldap: false,
    backup: false,
    pgbouncer: [],
    fleet: { environments: ['production'], herds: ['a'], replicas: 1, sites: ['dc-a'], subnet: '127.0.97' },
    log,
  });
  let sim: SimFleet | null = null;
  let made: { db: Db; pool: pg.Pool } | null = null;
  let worker: Awaited<ReturnType<typeof startTestWorker>> | null = null;
  try {
    useLabSettings(lab);
    made = await seededDatabase(lab, 8);
    const { db } = made;
    sim = await startSimFleet(lab, db, HERDS * 3, log);
    // The environment's password in a file of its own, as rotation wants it.
    const config = JSON.parse(readFileSync(sim.pgConfigFile, 'utf8')) as {
      environments: Record<string, { password?: string; passwordFile?: string }>;
    };
    const entry = config.environments[SIM_ENVIRONMENT]!;
    const passwordFile = path.join(path.dirname(sim.pgConfigFile), 'sim.password');
    writeFileSync(passwordFile, `${entry.password ?? ''}\n`, { mode: 0o600 });
    delete entry.password;
    entry.passwordFile = passwordFile;
    writeFileSync(sim.pgConfigFile, JSON.stringify(config), { mode: 0o600 });
    process.env.PGHERD_PG_CONFIG = sim.pgConfigFile;
    // Its servers' host keys as if pinned (no SSH is asked of them: the environment has no key of its own to rotate).
    await db.execute(sql`UPDATE servers SET ssh_host_key_fingerprint = 'SHA256:simulated'
      WHERE environment_id = (SELECT id FROM environments WHERE name = ${SIM_ENVIRONMENT})`);
    const herdIds = (
      await db.execute<{ id: number }>(
        sql`SELECT h.id FROM herds h JOIN environments e ON e.id = h.environment_id WHERE e.name = ${SIM_ENVIRONMENT} ORDER BY h.id`,
      )
    ).rows.map((r) => r.id);
    const refs = await loadHerdRefs(db, herdIds);
    const members = refs.flatMap((h) => h.members);
    worker = await startTestWorker(lab, 'bench-rotate', 16);

    // pgherd: the operation over the environment's herds.
    const client1 = reconnecting(members);
    const plan = await planOperation(db, SYSTEM_ACCESS, rotateOwnCredentialsAction, herdIds, {});
    const refused = plan.targets.filter((t) => t.refused);
    if (refused.length) throw new Error(`the rotation was refused: ${refused[0]?.refused ?? ''}`);
    const t0 = performance.now();
    const id = await submitPlanned(db, worker.queue, rotateOwnCredentialsAction, { herdIds }, {}, plan);
    const r = await waitForOperation(db, id, { timeoutMs: 600_000, t0 });
    const pgherdMs = performance.now() - t0;
    const seen1 = await client1.stop();
    if (r.op.status !== 'succeeded')
      throw new Error(
        `the rotation ended ${r.op.status}: ${JSON.stringify(r.targets.filter((t) => t.status !== 'succeeded').slice(0, 3))}`,
      );
    const password = readFileSync(passwordFile, 'utf8').trim();
    log(
      `pgherd: ${herdIds.length} herds rotated in ${(pgherdMs / 1000).toFixed(1)} s; the client: ${seen1.logins} logins, ${seen1.refused.length} refused`,
    );

    // The plain way, herd after herd: the primary's password set, each member logged in to with it.
    const client2 = reconnecting(members);
    const plain = randomBytes(32).toString('base64url');
    const p0 = performance.now();
    for (const h of refs) {
      const primary = h.members.find((m) => m.role === 'primary')!;
      const c = await connected(loginClient(primary, { user: 'pgherd_sim', password }, { connectionTimeoutMillis: 5000 }));
      await c.query(`ALTER ROLE CURRENT_USER PASSWORD ${quoteLiteral(scramVerifier(plain))}`);
      await c.end();
      for (const m of h.members)
        await (await connected(loginClient(m, { user: 'pgherd_sim', password: plain }, { connectionTimeoutMillis: 5000 }))).end();
    }
    const plainMs = performance.now() - p0;
    const seen2 = await client2.stop();
    log(
      `plain: ${refs.length} herds in ${(plainMs / 1000).toFixed(1)} s; the client: ${seen2.logins} logins, ${seen2.refused.length} refused`,
    );

    return table(
      ['case', 'figure', 'target'],
      [
        [
          `Rotate pgherd's credentials, ${herdIds.length} herds (${members.length} members), submit to end`,
          `${(pgherdMs / 1000).toFixed(1)} s`,
          pgherdMs <= 60_000 ? '≤ 1 min: **met**' : '≤ 1 min: not met',
        ],
        [`a client reconnecting through it, pgherd's way`, `${seen1.logins} logins, ${seen1.refused.length} refused`, '0 refused'],
        [`plain: herd after herd, set and log in to each member`, `${(plainMs / 1000).toFixed(1)} s`, ''],
        [`the same client through the plain way`, `${seen2.logins} logins, ${seen2.refused.length} refused`, ''],
      ],
    );
  } finally {
    await worker?.close();
    await sim?.stop();
    await made?.pool.end();
    await stopLab(FILE);
  }
}
