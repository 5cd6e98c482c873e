// Fleet objects on a lab of their own (environment "ob": herds alpha, behind a PgBouncer, and beta, each a
// primary and a replica on 127.0.94.x; gamma, two members Patroni runs on 127.0.95.x): a role, a database with an extension and access rules declared
// for the environment and applied in waves; a role made behind pgherd's back found as drift, accepted,
// and dropped only when asked; access rules that would shut out pgherd, a replica or the pooler refused
// with the line, nothing written; hostile names refused where they are typed.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { environments, herds, objectSetVersions } from '@/db/schema';
import { startLab, stopLab, PROJECT_ROOT, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { randomBytes } from 'node:crypto';
import { runOperation, startTestWorker, submitPlanned, waitForOperation, type TestWorker } from '@/lib/testing/operations';
import { submitOperation } from '@/lib/engine/submit';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { waitFor } from '@/lib/testing/wait';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import { wavesSchema } from '@/lib/engine/waves';
import { refreshShare, type RefreshShare } from '@/lib/fleet/refresh-share';
import { saveObject } from '@/lib/features/admin/mutations';
import { objectSetsAdmin } from '@/lib/features/admin/models/object-sets.admin';
import { herdsAdmin } from '@/lib/features/admin/models/herds.admin';
import { loadObject } from '@/lib/features/admin/change-form-data';
import { objectsPass } from '@/lib/fleet/objects/objects-pass';
import { acceptObjects } from '@/lib/features/objects/accept';
import { herdObjectsView } from '@/lib/features/objects/herd-objects-view';
import { fleetHealth } from '@/lib/features/agents/health';
import { changeList } from '@/lib/features/admin/list-query';
import { parseListParams } from '@/lib/features/admin/list-params';
import { applyObjectsAction } from './apply-objects.action';
import { rotateCredentialsAction } from './rotate-credentials.action';
import { loginClient, poolerClient } from '@/lib/fleet/pg-access';
import { poolerSetting } from '@/lib/adapters/pgbouncer/admin';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';
import pg from 'pg';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', 'objects-test.json');
const ENV = 'ob';
const dba = { id: null, username: 'dba-test', access: SYSTEM_ACCESS, remoteAddr: '127.0.0.1' };
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker;
let share: RefreshShare;
const herdIds = new Map<string, number>();

const BASE = [
  'role app_owner',
  'role app login connlimit=20 in=app_owner',
  'database app owner=app_owner encoding=UTF8 locale=C.UTF-8 connect=app',
  'extension app pg_trgm',
  'ignore role replicator',
  // A login its clients read from a file secret, rotated by alternating users.
  'rotate app_rw users=app_rw_blue,app_rw_green secret=file:{herd}-app_rw grace=3s',
  // PgBouncer's auth user (alpha's pooler looks up app_pooled through it), rotated the same way.
  'rotate pgbouncer_auth users=pgbouncer_auth_blue,pgbouncer_auth_green secret=pgbouncer grace=3s',
  'role app_pooled login',
  'role app_pooled2 login',
  'hba local all all trust',
  'hba hostssl all pgherd_ob {pgherd} scram-sha-256',
  'hba host all pgherd_ob 0.0.0.0/0 reject',
  'hba hostssl all +pgherd_upgrade 127.0.0.0/8 scram-sha-256',
  'hba host all +pgherd_upgrade 0.0.0.0/0 reject',
  'hba host app app 127.0.0.0/8 scram-sha-256',
  'hba host all +app_rw 127.0.0.0/8 scram-sha-256',
  'hba host all +pgbouncer_auth 127.0.0.0/8 scram-sha-256',
  'hba host all all 127.0.0.0/8 trust',
  'hba local replication all trust',
  'hba host replication all {members} trust',
  // The lab's replicas connect from 127.0.0.1, whatever their own address.
  'hba host replication all 127.0.0.1/32 trust',
].join('\n');

const members = (herd: string) => lab.instances.filter((i) => i.herd === herd);
const url = (i: Pick<LabInstance, 'address' | 'port'>, database = 'postgres') => `postgres://postgres@${i.address}:${i.port}/${database}`;
const primaryOf = (herd: string) => members(herd).find((m) => m.role === 'primary')!;
const replicaOf = (herd: string) => members(herd).find((m) => m.role === 'replica')!;
const hbaText = (i: LabInstance) => readFileSync(path.join(i.dataDirectory, 'pg_hba.conf'), 'utf8');
const roles = async (i: LabInstance) =>
  (await query<{ n: string }>(url(i), 'SELECT rolname AS n FROM pg_roles ORDER BY 1')).map((r) => r.n);
/** The refresh (its fingerprint of the primaries' objects), then the objects pass: what the worker's chores do next. */
const observePass = async () => {
  await db.execute(sql`UPDATE herds SET observe_due_at = '-infinity'`);
  await share.round();
  return objectsPass(db);
};
const driftOf = async (herd: string) =>
  (
    await db.execute<{ d: number | null }>(
      sql`SELECT i.objects_drift AS d FROM instances i WHERE i.herd_id = ${herdIds.get(herd)!} AND i.role = 'primary'`,
    )
  ).rows[0]?.d;
const plan = (names: string[], params: Record<string, unknown> = {}) =>
  planOperation(
    db,
    SYSTEM_ACCESS,
    applyObjectsAction,
    names.map((n) => herdIds.get(n)!),
    params,
  );
const refusalOf = async (herd: string, params: Record<string, unknown> = {}) => (await plan([herd], params)).targets[0]?.refused ?? null;
const stepsOf = (r: { steps: { name: string; status: string; stderrTail: string }[] }) =>
  JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-300)]));
async function saveOverrides(herd: string, text: string) {
  const id = herdIds.get(herd)!;
  const current = (await loadObject(db, herdsAdmin as never, id))!.values;
  const r = await saveObject(db, herdsAdmin as never, id, { ...current, objectOverrides: text }, dba);
  return r;
}

/** A client that connects with `connect` every 50 ms while `during` runs (and half a second after): its logins and failures. */
async function reconnecting<T>(
  connect: () => Promise<void>,
  during: () => Promise<T>,
): Promise<{ result: T; logins: number; failures: string[] }> {
  const run = { on: true, logins: 0, failures: [] as string[] };
  const client = (async () => {
    while (run.on) {
      try {
        await connect();
        run.logins++;
      } catch (err) {
        run.failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    const result = await during();
    await new Promise((r) => setTimeout(r, 500));
    return { result, logins: run.logins, failures: run.failures };
  } finally {
    run.on = false;
    await client;
  }
}

/** No rotated login of alpha is in its grace (a rotation is refused until then): waited for, by the database's clock. */
const graceOver = () =>
  waitFor('every rotated login of alpha past its grace', async () => {
    const [r] = await query<{ over: boolean }>(
      url(primaryOf('alpha')),
      "SELECT bool_and(rolvaliduntil IS NULL OR rolvaliduntil = 'infinity' OR rolvaliduntil < now()) AS over FROM pg_roles WHERE rolname ~ '^(app_rw|pgbouncer_auth)_'",
    );
    return r?.over || undefined;
  });

const SECRETS = mkdtempSync(path.join(tmpdir(), 'pgherd-secrets-'));

beforeAll(async () => {
  process.env.PGHERD_SECRET_FILES = JSON.stringify({ [ENV]: SECRETS });
  lab = await startLab({
    file: LAB_FILE,
    aws: false,
    ldap: false,
    backup: false,
    fleet: { environments: [ENV], herds: ['alpha', 'beta'], replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.94' },
    // Its admin console over TLS with SCRAM, and users looked up through auth_user.
    pgbouncer: [{ environment: ENV, herd: 'alpha', scram: true }],
    patroni: [{ environment: ENV, herd: 'gamma', members: 2, subnet: '127.0.95' }],
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  for (const h of await db.select({ id: herds.id, name: herds.name }).from(herds)) herdIds.set(h.name, h.id);
  worker = await startTestWorker(lab, 'objects', 4);
  share = refreshShare(db, { holder: 'objects-test', intervalMs: 60_000 });
  await observePass();
}, 240_000);

afterAll(async () => {
  ifAssigned(share)?.close();
  await ifAssigned(worker)?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

describe('a declaration for the environment', () => {
  it('is drift until applied; applied in waves, every primary has the role, database, extension and grants, and every member the same pg_hba', async () => {
    const saved = await saveObject(db, objectSetsAdmin as never, null, { name: 'ob-base', description: '', declaration: BASE }, dba);
    if (!saved.ok) throw new Error(JSON.stringify(saved));
    expect((await db.select().from(objectSetVersions).where(eq(objectSetVersions.setId, saved.id)))[0]).toMatchObject({
      version: 1,
      author: 'dba-test',
    });
    await db.update(environments).set({ objectSetId: saved.id }).where(eq(environments.name, ENV));
    await observePass();
    expect(await driftOf('alpha')).toBeGreaterThan(0);

    const p = await plan(['alpha', 'beta']);
    const alphaPlan = p.targets.find((t) => t.herdId === herdIds.get('alpha'));
    expect(alphaPlan?.refused ?? null).toBeNull();
    const words = JSON.stringify(alphaPlan);
    expect(words).toContain('CREATE ROLE \\"app\\" LOGIN CONNECTION LIMIT 20');
    expect(words).toContain('CREATE DATABASE \\"app\\" OWNER \\"app_owner\\"');
    expect(words).toContain('in app: CREATE EXTENSION IF NOT EXISTS \\"pg_trgm\\"');
    expect(words).toContain('host app app 127.0.0.0/8 scram-sha-256');

    const waves = wavesSchema.parse({ size: 1 });
    const ids = [herdIds.get('alpha')!, herdIds.get('beta')!];
    const inWaves = await planOperation(db, SYSTEM_ACCESS, applyObjectsAction, ids, {}, waves);
    const { id } = await submitOperation(
      db,
      worker.queue,
      applyObjectsAction,
      {
        herdIds: ids,
        digest: inWaves.digest,
        confirmation: inWaves.typeToConfirm ?? '',
        idempotencyKey: randomBytes(8).toString('hex'),
        waves,
      },
      { id: null, username: 'dba-test', access: SYSTEM_ACCESS },
    );
    const r = await waitForOperation(db, id, { timeoutMs: 180_000 });
    expect(r.op.status, stepsOf(r)).toBe('succeeded');
    for (const herd of ['alpha', 'beta']) {
      const primary = primaryOf(herd);
      expect(await roles(primary)).toEqual(expect.arrayContaining(['app', 'app_owner']));
      const [role] = await query<{ login: boolean; limit: number; groups: string[] }>(
        url(primary),
        `SELECT rolcanlogin AS login, rolconnlimit AS limit, ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) AS groups FROM pg_roles r WHERE rolname = 'app'`,
      );
      expect(role).toEqual({ login: true, limit: 20, groups: ['app_owner'] });
      const [dbRow] = await query<{ owner: string; connect: boolean; pub: boolean }>(
        url(primary),
        `SELECT pg_get_userbyid(datdba) AS owner, has_database_privilege('app', datname, 'CONNECT') AS connect,
                EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS pub FROM pg_database WHERE datname = 'app'`,
      );
      expect(dbRow).toEqual({ owner: 'app_owner', connect: true, pub: false });
      expect(
        (await query<{ v: string }>(url(primary, 'app'), "SELECT extversion AS v FROM pg_extension WHERE extname = 'pg_trgm'"))[0]?.v,
      ).toMatch(/^\d/);
      // The replica's pg_hba is the same file, and it runs it.
      expect(hbaText(replicaOf(herd))).toBe(hbaText(primary));
      const rules = await query<{ n: number }>(
        url(replicaOf(herd)),
        "SELECT count(*)::int AS n FROM pg_hba_file_rules WHERE 'app' = ANY(database) AND auth_method = 'scram-sha-256'",
      );
      expect(rules[0]?.n).toBe(1);
    }
    // The waves: one herd after the other.
    expect(new Set(r.targets.map((t) => t.wave)).size).toBe(2);
    expect(await driftOf('alpha')).toBe(0);
    expect(await driftOf('beta')).toBe(0);
  }, 240_000);
});

describe('drift behind pgherd\u2019s back', () => {
  it('is found by the next refresh and pass, accepted into the herd\u2019s lines, and dropped only with "drop what is not declared"', async () => {
    await query(url(primaryOf('alpha')), 'CREATE ROLE sneaky LOGIN');
    await observePass();
    expect(await driftOf('alpha')).toBe(1);
    expect(await driftOf('beta')).toBe(0);
    // Where people look: fleet health, the herds changelist's facet, the metric, the herd's page.
    // (gamma, which Patroni runs, is applied last: drifted until then.)
    const health = (await fleetHealth(db, null)).objectsDrifted.rows.filter((r) => r.herd !== `${ENV}/gamma`);
    expect(health.map((r) => [r.herd, r.objects])).toEqual([[`${ENV}/alpha`, 1]]);
    const facet = await changeList(db, herdsAdmin, parseListParams(herdsAdmin, { objects: 'drifted' }, SYSTEM_ACCESS));
    expect(facet.rows.map((r) => r.name).filter((n) => n !== 'gamma')).toEqual(['alpha']);
    const view = await herdObjectsView(db, herdIds.get('alpha')!);
    expect(view.changes.map((c) => [c.name, c.what, c.sql.map((s) => s.text), c.acceptable])).toEqual([
      ['role sneaky', 'undeclared', ['DROP ROLE "sneaky"'], true],
    ]);

    expect(await acceptObjects(db, dba, herdIds.get('alpha')!, ['role sneaky'])).toEqual(['role sneaky login']);
    expect(
      (
        await db
          .select({ o: herds.objectOverrides })
          .from(herds)
          .where(eq(herds.id, herdIds.get('alpha')!))
      )[0]?.o,
    ).toBe('role sneaky login');
    expect(await driftOf('alpha')).toBe(0);

    // Taken out of the declaration again: drift, and Apply leaves it unless told to drop it.
    const emptied = await saveOverrides('alpha', '');
    expect(emptied.ok, JSON.stringify(emptied)).toBe(true);
    await observePass();
    expect(await driftOf('alpha')).toBe(1);
    expect(await refusalOf('alpha')).toMatch(/has what it declares \(left as they are: role sneaky\)/);
    const r = await runOperation(
      db,
      worker.queue,
      applyObjectsAction,
      { herdIds: [herdIds.get('alpha')!] },
      { dropUndeclared: true },
      { username: 'dba-test', timeoutMs: 120_000 },
    );
    expect(r.op.status, stepsOf(r)).toBe('succeeded');
    expect(await roles(primaryOf('alpha'))).not.toContain('sneaky');
    expect(await roles(primaryOf('alpha'))).toContain('app');
    expect(await driftOf('alpha')).toBe(0);
  }, 180_000);
});

describe('access rules that would shut someone out', () => {
  it('are refused at plan, naming the line, and nothing is written', async () => {
    const before = hbaText(primaryOf('alpha'));
    const cases: [string, RegExp][] = [
      [
        'hba host all all 127.0.0.0/8 reject',
        /hba host all all 127\.0\.0\.0\/8 reject \(herd override\) would shut out pgherd \(pgherd_ob from 127\.0\.0\.1/,
      ],
      ['hba host replication all 127.0.0.0/8 reject', /would shut out the replication of/],
      ['hba host all all {poolers} reject', /would shut out the pooler on 127\.0\.94\./],
      ['hba local all all reject', /would shut out the control plane's local connections/],
    ];
    for (const [line, refused] of cases) {
      const saved = await saveOverrides('alpha', `${line}\nrole app_extra`);
      expect(saved.ok, JSON.stringify(saved)).toBe(true);
      await observePass();
      expect(await refusalOf('alpha')).toMatch(refused);
    }
    expect(hbaText(primaryOf('alpha'))).toBe(before);
    expect(await roles(primaryOf('alpha'))).not.toContain('app_extra');
    expect((await saveOverrides('alpha', '')).ok).toBe(true);
  }, 120_000);

  it('hostile names and lines are refused where they are typed, and the herd keeps what it had', async () => {
    for (const text of [
      'role "x"; DROP ROLE app; --',
      "database a'b",
      'hba host all all 127.0.0.1/32 trust\nhba host all all 0.0.0.0/0 trust include_dir=/etc',
      'role boss superuser',
      'extension app "$(rm -rf /)"',
    ]) {
      const r = await saveOverrides('beta', text);
      expect(r.ok, text).toBe(false);
    }
    expect(
      (
        await db
          .select({ o: herds.objectOverrides })
          .from(herds)
          .where(eq(herds.id, herdIds.get('beta')!))
      )[0]?.o,
    ).toBe('');
  }, 60_000);
});

describe('access rules on a herd Patroni runs', () => {
  it("are written through Patroni's configuration, and every member runs them", async () => {
    const gamma = herdIds.get('gamma')!;
    await observePass();
    const r = await runOperation(
      db,
      worker.queue,
      applyObjectsAction,
      { herdIds: [gamma] },
      {},
      { username: 'dba-test', timeoutMs: 180_000 },
    );
    expect(r.op.status, stepsOf(r)).toBe('succeeded');
    expect(r.steps.map((s) => s.name)).toContain("change Patroni's pg_hba");
    for (const m of members('gamma')) {
      const rules = await query<{ n: number }>(
        url(m),
        "SELECT count(*)::int AS n FROM pg_hba_file_rules WHERE 'app' = ANY(database) AND auth_method = 'scram-sha-256'",
      );
      expect(rules[0]?.n, m.server).toBe(1);
    }
    expect(await driftOf('gamma')).toBe(0);
  }, 240_000);
});

describe('a login rotated by alternating users', () => {
  /** What a client does at each connect: read the secret, log in with it over TLS, run a query. */
  const secretOf = () => JSON.parse(readFileSync(path.join(SECRETS, 'alpha-app_rw'), 'utf8')) as { username: string; password: string };
  const login = async (user: string, password: string) => {
    const p = primaryOf('alpha');
    const c = loginClient({ host: p.address, port: p.port, serverEnvironment: ENV }, { user, password }, { connectionTimeoutMillis: 5000 });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('SELECT 1');
    } finally {
      await c.end().catch(() => {});
    }
  };
  const rotate = async () => {
    // Every login alpha declares rotates together: none may be in the last rotation's grace.
    await graceOver();
    const r = await runOperation(
      db,
      worker.queue,
      rotateCredentialsAction,
      { herdIds: [herdIds.get('alpha')!] },
      {},
      { username: 'dba-test', timeoutMs: 60_000 },
    );
    expect(r.op.status, stepsOf(r)).toBe('succeeded');
    return r;
  };

  it('never fails a client that reads the secret at each connect; the old password is refused after the grace; no password is kept anywhere', async () => {
    const primary = primaryOf('alpha');
    await query(url(primary), "ALTER SYSTEM SET log_statement = 'all'");
    await query(url(primary), 'SELECT pg_reload_conf()');
    await observePass();
    const first = await rotate();
    const before = secretOf();
    expect(before.username).toBe('app_rw_blue');
    await login(before.username, before.password);

    // A client that reconnects every 50 ms through a rotation.
    const {
      result: second,
      logins,
      failures,
    } = await reconnecting(async () => {
      const s = secretOf();
      await login(s.username, s.password);
    }, rotate);
    const after = secretOf();
    expect(after.username).toBe('app_rw_green');
    expect(failures).toEqual([]);
    expect(logins).toBeGreaterThan(3);
    // The old user's password expires at the end of the grace, by the database's clock: once it has, it is refused.
    await waitFor(
      'the old password to pass its VALID UNTIL',
      async () =>
        (
          await query<{ past: boolean }>(url(primary), 'SELECT rolvaliduntil < now() AS past FROM pg_roles WHERE rolname = $1', [
            before.username,
          ])
        )[0]?.past || undefined,
    );
    await expect(login(before.username, before.password)).rejects.toThrow(/password authentication failed/);
    await login(after.username, after.password);

    // No password in a step's record, the audit log, the operation's plan, or the server's log (log_statement = all).
    const passwords = [before.password, after.password];
    const kept = JSON.stringify([
      (await db.execute(sql`SELECT * FROM operation_steps`)).rows,
      (await db.execute(sql`SELECT * FROM audit_entries`)).rows,
      (await db.execute(sql`SELECT * FROM operations WHERE id IN (${first.op.id}, ${second.op.id})`)).rows,
    ]);
    const serverLog = readFileSync(path.join(lab.dir, 'log', `${primary.server}.log`), 'utf8');
    expect(serverLog).toContain('ALTER ROLE "app_rw_green" PASSWORD \'SCRAM-SHA-256$4096:');
    for (const pw of passwords) {
      expect(kept.includes(pw)).toBe(false);
      expect(serverLog.includes(pw)).toBe(false);
    }
    await query(url(primary), 'ALTER SYSTEM RESET log_statement');
    await query(url(primary), 'SELECT pg_reload_conf()');
  }, 120_000);

  it('finds a password changed behind its back on the next pass, never accepts it, and the next rotation puts it right', async () => {
    const primary = primaryOf('alpha');
    const alpha = herdIds.get('alpha')!;
    const passwordDrift = async () =>
      (await herdObjectsView(db, alpha)).changes.filter((c) => c.name.startsWith('password ')).map((c) => [c.name, c.runs, c.acceptable]);
    await observePass();
    expect(await passwordDrift()).toEqual([]);
    const quiet = await driftOf('alpha');
    const current = secretOf().username;

    // A DBA sets the login's password by hand: the refresh's fingerprint moves, the pass reads it, drift.
    const byHand = `by-hand-${randomBytes(12).toString('hex')}`;
    await query(url(primary), `ALTER ROLE ${current} PASSWORD '${byHand}'`);
    await observePass();
    expect(await passwordDrift()).toEqual([[`password ${current}`, 'a password set outside pgherd', false]]);
    expect(await driftOf('alpha')).toBe((quiet ?? 0) + 1);
    await expect(acceptObjects(db, dba, alpha, [`password ${current}`])).rejects.toThrow(/never accepted into a declaration/);
    // Apply has nothing it can do about it, and says what can.
    expect(await refusalOf('alpha')).toContain(`password ${current} (pgherd never holds a password to put back: Rotate credentials`);

    // The rotation moves the secret to the other login and replaces the hand-set password with one nobody holds.
    const r = await rotate();
    expect(JSON.stringify(r.steps.map((x) => x.stdoutTail))).toContain('changed outside pgherd');
    await observePass();
    expect(await passwordDrift()).toEqual([]);
    expect(await driftOf('alpha')).toBe(quiet);
    await expect(login(current, byHand)).rejects.toThrow(/password authentication failed/);
    const s = secretOf();
    expect(s.username).not.toBe(current);
    await login(s.username, s.password);
  }, 120_000);
});

describe("PgBouncer's auth user rotated by alternating users", () => {
  const bouncer = () => lab.pgbouncer[0]!;
  const userlist = () => readFileSync(path.join(path.dirname(bouncer().configFile), 'userlist.txt'), 'utf8');
  const passwordIn = (user: string) => new RegExp(`^"${user}" "([^"]*)"$`, 'm').exec(userlist())?.[1] ?? null;
  const authUser = async () => {
    const [p] = (await loadHerdRefs(db, [herdIds.get('alpha')!])).flatMap((h) => h.poolers);
    return poolerSetting((t) => poolerClient(p!, t), 'auth_user');
  };
  /** A client through the pooler as a user PgBouncer looks up with auth_query, as its auth user. */
  const throughPooler = async (user: string, password: string) => {
    const c = new pg.Client({
      host: bouncer().address,
      port: bouncer().port,
      database: bouncer().databases[0],
      user,
      password,
      ssl: false,
    });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('SELECT 1');
    } finally {
      await c.end().catch(() => {});
    }
  };
  const rotate = async () => {
    await graceOver();
    const r = await runOperation(
      db,
      worker.queue,
      rotateCredentialsAction,
      { herdIds: [herdIds.get('alpha')!] },
      {},
      { timeoutMs: 60_000 },
    );
    expect(r.op.status, stepsOf(r)).toBe('succeeded');
    return r;
  };

  it('never fails a client PgBouncer looks up; the old auth user is refused after the grace and leaves the auth_file', async () => {
    const primary = primaryOf('alpha');
    const pooled = `pooled-${randomBytes(12).toString('hex')}`;
    await query(url(primary), `ALTER ROLE app_pooled PASSWORD '${pooled}'`);
    await query(url(primary), `ALTER ROLE app_pooled2 PASSWORD '${pooled}'`);
    await query(
      url(primary),
      `CREATE FUNCTION public.pgbouncer_lookup(p_user text, OUT usename text, OUT passwd text) RETURNS record
         LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
         AS $$ SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname = p_user AND rolcanlogin $$`,
    );
    await query(url(primary), 'REVOKE ALL ON FUNCTION public.pgbouncer_lookup(text) FROM PUBLIC');
    await query(url(primary), 'GRANT EXECUTE ON FUNCTION public.pgbouncer_lookup(text) TO pgbouncer_auth');
    await observePass();
    // The rotations above moved it too (each rotates every login alpha declares).
    const first = await rotate();
    const was = await authUser();
    expect(['pgbouncer_auth_blue', 'pgbouncer_auth_green']).toContain(was);
    const old = passwordIn(was);
    expect(old).toBeTruthy();
    await throughPooler('app_pooled', pooled);

    // A client that reconnects through the pooler every 50 ms through the next rotation.
    const { result: second, logins, failures } = await reconnecting(() => throughPooler('app_pooled', pooled), rotate);
    expect(failures).toEqual([]);
    expect(logins).toBeGreaterThan(3);
    const now = await authUser();
    expect(['pgbouncer_auth_blue', 'pgbouncer_auth_green', was].filter((u) => u !== was)).toEqual([now]);
    expect(passwordIn(was)).toBeNull();
    const fresh = passwordIn(now)!;
    expect(fresh).not.toBe(old);

    // Once the grace has passed the old auth user's password is refused; a user PgBouncer never saw is looked up as the new one.
    await graceOver();
    const direct = (user: string, password: string) =>
      query(`postgres://${user}:${encodeURIComponent(password)}@${primary.address}:${primary.port}/postgres`, 'SELECT 1');
    await expect(direct(was, old!)).rejects.toThrow(/password authentication failed/);
    await direct(now, fresh);
    await throughPooler('app_pooled2', pooled);

    // Neither password in pgherd's records.
    const kept = JSON.stringify([
      (await db.execute(sql`SELECT * FROM operation_steps`)).rows,
      (await db.execute(sql`SELECT * FROM audit_entries`)).rows,
      (await db.execute(sql`SELECT * FROM operations WHERE id IN (${first.op.id}, ${second.op.id})`)).rows,
    ]);
    expect(kept.includes(old!)).toBe(false);
    expect(kept.includes(fresh)).toBe(false);
  }, 180_000);
});

describe('a rotated login that reaches the server', () => {
  it('is refused at plan when the primary has it privileged, and at its step when a superuser made it so since', async () => {
    const primary = primaryOf('beta');
    const beta = herdIds.get('beta')!;
    expect((await saveOverrides('beta', 'rotate esc users=esc_a,esc_b secret=file:{herd}-esc grace=3s')).ok).toBe(true);
    const applied = await runOperation(db, worker.queue, applyObjectsAction, { herdIds: [beta] }, {}, { timeoutMs: 60_000 });
    expect(applied.op.status, stepsOf(applied)).toBe('succeeded');
    const rotatePlan = async () => (await planOperation(db, SYSTEM_ACCESS, rotateCredentialsAction, [beta], {})).targets[0]!;

    // Made a superuser by hand: the plan says so, nothing runs.
    await query(url(primary), 'ALTER ROLE esc_a SUPERUSER');
    await observePass();
    expect((await rotatePlan()).refused).toMatch(/esc_a is a superuser.*pgherd hands no such role's password to clients/);
    await query(url(primary), 'ALTER ROLE esc_a NOSUPERUSER');
    await observePass();
    const planned = await planOperation(db, SYSTEM_ACCESS, rotateCredentialsAction, [beta], {});
    expect(planned.targets[0]?.refused ?? null).toBeNull();

    // Between the plan and its run, a superuser on the host makes it a member of postgres: its step refuses it.
    await query(url(primary), 'GRANT postgres TO esc_a');
    try {
      const id = await submitPlanned(db, worker.queue, rotateCredentialsAction, { herdIds: [beta] }, {}, planned);
      const r = await waitForOperation(db, id, { timeoutMs: 60_000 });
      expect(r.op.status).not.toBe('succeeded');
      expect(stepsOf(r)).toContain('esc_a is a member of postgres');
      const [row] = await query<{ none: boolean }>(
        url(primary),
        "SELECT rolpassword IS NULL AS none FROM pg_authid WHERE rolname = 'esc_a'",
      );
      expect(row?.none).toBe(true);
      expect(() => readFileSync(path.join(SECRETS, 'beta-esc'))).toThrow(/ENOENT/);
    } finally {
      await query(url(primary), 'REVOKE postgres FROM esc_a');
    }
  }, 120_000);
});
