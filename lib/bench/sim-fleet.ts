// A simulated fleet for the refresh benchmark (see sim-postgres.ts for what is real and what is not):
// endpoints on 127.30.g.h (250 addresses a /24, one certificate each /24 naming them, signed by a CA
// of the bench's own), in environment "sim" of pgherd's inventory (herds of a primary and two replicas),
// with PGHERD_PG_CONFIG extended by the environment's user, password and CA.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import type { Db } from '@/db/client';
import { OBSERVATION_SQL } from '@/lib/fleet/observe';
import { RISK_SQL } from '@/lib/fleet/risks/read-risks';
import { PROJECT_ROOT, type LabInfo } from '@/lib/lab/lab';
import { freePort } from '@/lib/lab/ports';
import { labIdentity, mkdirOwned } from '@/lib/lab/proc';
import { issueCertificate, makeCa } from '@/lib/lab/tls';
import { scramSecret, type SimAnswer, type SimConfig } from './sim-postgres';

/** Endpoints one simulated server process holds: a listening and an accepted socket each, under 20,000 descriptors. */
const PER_PROCESS = 8000;
const PER_GROUP = 250;
export const SIM_ENVIRONMENT = 'sim';

export interface SimFleet {
  endpoints: { host: string; port: number }[];
  /** PGHERD_PG_CONFIG with environment "sim" added. */
  pgConfigFile: string;
  stop: () => Promise<void>;
}

const addressOf = (k: number) => `127.30.${Math.floor(k / PER_GROUP)}.${(k % PER_GROUP) + 1}`;

/** A real instance's row for the observation statement, as text with its column types. */
async function answerOf(dsn: string, text = OBSERVATION_SQL): Promise<SimAnswer> {
  const c = new pg.Client({ connectionString: dsn });
  await c.connect();
  try {
    const r = await c.query({ text, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
    return { fields: r.fields.map((f) => ({ name: f.name, oid: f.dataTypeID })), values: r.rows[0] as (string | null)[] };
  } finally {
    await c.end();
  }
}

/** Starts `count` simulated endpoints and enters them in pgherd's inventory (environment "sim"). */
export async function startSimFleet(lab: LabInfo, db: Db, count: number, log: (m: string) => void): Promise<SimFleet> {
  const id = labIdentity();
  const dir = path.join(lab.dir, 'sim');
  mkdirOwned(id, dir, 0o755);
  const primary = lab.instances.find((i) => i.role === 'primary')!;
  const replica = lab.instances.find((i) => i.role === 'replica')!;
  const answers = { primary: await answerOf(primary.dsn), replica: await answerOf(replica.dsn) };
  const risks = { primary: await answerOf(primary.dsn, RISK_SQL), replica: await answerOf(replica.dsn, RISK_SQL) };

  const ca = await makeCa(id, path.join(dir, 'ca'), 'pgherd bench CA');
  const groups = Math.ceil(count / PER_GROUP);
  const certs: SimConfig['certs'] = {};
  for (let g = 0; g < groups; g++) {
    const ips = Array.from({ length: PER_GROUP }, (_, h) => `127.30.${g}.${h + 1}`);
    const c = await issueCertificate(id, ca, path.join(dir, 'certs'), `g${g}`, { ips, names: [] });
    certs[`127.30.${g}`] = { cert: readFileSync(c.certFile, 'utf8'), key: readFileSync(c.keyFile, 'utf8') };
  }
  const password = randomBytes(18).toString('base64url');
  const port = await freePort(addressOf(0));
  const endpoints = Array.from({ length: count }, (_, k) => ({ host: addressOf(k), port }));

  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((r) => {
            if (c.exitCode !== null) return void r();
            c.once('exit', () => r());
            c.kill('SIGTERM');
          }),
      ),
    );
  };
  try {
    // A secret a herd of three (salt and keys replicated from its primary), drawn before anything is timed.
    const t0 = performance.now();
    const secrets = Array.from({ length: Math.ceil(count / 3) }, () => scramSecret(password));
    log(`${secrets.length} herds' SCRAM secrets drawn in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (let from = 0; from < count; from += PER_PROCESS) {
      const slice = endpoints.slice(from, from + PER_PROCESS);
      const first = Math.floor(from / 3);
      const cfg: SimConfig = {
        endpoints: slice.map((e, k) => ({
          ...e,
          answer: (from + k) % 3 === 0 ? 'primary' : 'replica',
          secret: Math.floor((from + k) / 3) - first,
        })),
        certs,
        user: 'pgherd_sim',
        scram: secrets.slice(first, Math.floor((from + slice.length - 1) / 3) + 1),
        answers,
        risks,
      };
      const file = path.join(dir, `sim-${from}.json`);
      writeFileSync(file, JSON.stringify(cfg), { mode: 0o600 });
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'lib/bench/sim-postgres.ts'), file], {
        cwd: PROJECT_ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`a simulated endpoint server exited (${String(code)})`)));
        createInterface({ input: child.stdout }).on('line', (l) => {
          if (l.startsWith('ready')) resolve();
        });
      });
    }
    log(`${count} simulated endpoints on 127.30.0-${groups - 1}.x:${port} (${children.length} processes)`);

    // The inventory: herds of three (the first a primary), one server an address.
    const env = (
      await db.execute<{ id: number }>(sql`
        INSERT INTO environments (name) VALUES (${SIM_ENVIRONMENT})
        ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id`)
    ).rows[0]!.id;
    await db.execute(sql`
      INSERT INTO herds (environment_id, name) SELECT ${env}, 'sim-' || g FROM generate_series(0, ${Math.ceil(count / 3) - 1}) g`);
    await db.execute(sql`
      INSERT INTO servers (hostname, environment_id, address, site)
      SELECT 'sim-' || k || '.bench', ${env}, '127.30.' || (k / ${PER_GROUP}) || '.' || ((k % ${PER_GROUP}) + 1), 'sim'
      FROM generate_series(0, ${count - 1}) k`);
    await db.execute(sql`
      INSERT INTO instances (herd_id, server_id, port, role, state)
      SELECT h.id, s.id, ${port}, CASE WHEN k % 3 = 0 THEN 'primary' ELSE 'replica' END::instance_role, 'running'
      FROM generate_series(0, ${count - 1}) k
        JOIN herds h ON h.environment_id = ${env} AND h.name = 'sim-' || (k / 3)
        JOIN servers s ON s.hostname = 'sim-' || k || '.bench'`);

    const base = lab.pgAccess?.configFile ? (JSON.parse(readFileSync(lab.pgAccess.configFile, 'utf8')) as { environments?: object }) : {};
    const pgConfigFile = path.join(dir, 'pg-config.json');
    writeFileSync(
      pgConfigFile,
      JSON.stringify({
        ...base,
        environments: {
          ...(base.environments ?? {}),
          [SIM_ENVIRONMENT]: { user: 'pgherd_sim', password, tls: { mode: 'verify-full', caFile: ca.caFile } },
        },
      }),
      { mode: 0o600 },
    );
    return { endpoints, pgConfigFile, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
