// Rotate pgherd's credentials on a lab of its own: environments "ocp" (production's part: its key is also
// PGHERD_SSH_KEY) and "oc", two herds each of a primary and a replica on 127.0.96.x, and a PgBouncer in
// front of oc/h1. oc's password and SSH key are rotated while a rolling restart runs there: no target of
// either fails, the old password and key are refused afterwards, the worker uses the new ones without a
// restart, and ocp's are as they were, out of a staging admin's reach.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { startLab, stopLab, PROJECT_ROOT, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { runOperation, startTestWorker, submitPlanned, waitForOperation, type TestWorker } from '@/lib/testing/operations';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { SYSTEM_ACCESS, type Access } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import { wavesSchema } from '@/lib/engine/waves';
import { submitOperation } from '@/lib/engine/submit';
import { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { instanceClient, loginClient, poolerClient, poolerLoginClient } from '@/lib/fleet/pg-access';
import { poolerAdmin } from '@/lib/adapters/pgbouncer/admin';
import { liveSshKeys } from '@/lib/adapters/ssh/keys';
import { checkCredentials } from '@/lib/adapters/patroni/client';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';
import { patroniAccessFor } from '@/lib/fleet/patroni-view';
import { publicKeyOf } from '@/lib/fleet/objects/own-credentials';
import { restartAction } from '@/lib/actions/control/restart.action';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { rotateOwnCredentialsAction } from './rotate-own-credentials.action';
import { randomBytes } from 'node:crypto';
import { run as runAsLab, labIdentity } from '@/lib/lab/proc';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', 'own-credentials-test.json');
const ENV = 'oc';
const PROD = 'ocp';
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker;
const herdIds = new Map<string, number>();

const membersOf = (env: string) => lab.instances.filter((i) => i.environment === env);
const text = (f: string) => readFileSync(f, 'utf8');
const stepsOf = (r: { steps: { name: string; status: string; stderrTail: string }[] }) =>
  JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-300)]));

/** Logs in to `i` as pgherd's role of its environment with `password` alone (TLS, SCRAM). */
async function login(i: LabInstance, password: string): Promise<void> {
  const c = loginClient(
    { host: i.address, port: i.port, serverEnvironment: i.environment },
    { user: lab.pgAccess!.roles[i.environment]!.user, password },
    { connectionTimeoutMillis: 5000 },
  );
  c.on('error', () => {});
  try {
    await c.connect();
  } finally {
    await c.end().catch(() => {});
  }
}

/** Runs `true` on `i`'s host over SSH with `privateKey` alone. */
async function sshWith(i: LabInstance, privateKey: string): Promise<void> {
  const pool = new SshPool({
    keys: { fallback: null, byEnvironment: new Map([[i.environment, Buffer.from(privateKey)]]) },
    connectRetries: 1,
  });
  try {
    const [ref] = (await loadHerdRefs(db, [herdIds.get(`${i.environment}/${i.herd}`)!])).flatMap((h) =>
      h.members.filter((m) => m.host === i.address),
    );
    await pool.execOk(ref!.ssh, ['true']);
  } finally {
    await pool.close();
  }
}

beforeAll(async () => {
  lab = await startLab({
    file: LAB_FILE,
    aws: false,
    ldap: false,
    backup: false,
    fleet: { environments: [PROD, ENV], herds: ['h1', 'h2'], replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.96' },
    // Its admin console over TLS with SCRAM: pgherd's PgBouncer password is rotated too.
    pgbouncer: [{ environment: ENV, herd: 'h1', scram: true }],
    patroni: [{ environment: ENV, herd: 'h3', members: 2, subnet: '127.0.98' }],
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  const rows = (
    await db.execute<{ id: number; name: string; env: string }>(
      sql`SELECT h.id, h.name, e.name AS env FROM herds h JOIN environments e ON e.id = h.environment_id`,
    )
  ).rows;
  for (const h of rows) herdIds.set(`${h.env}/${h.name}`, h.id);
  worker = await startTestWorker(lab, 'owncreds', 4);
}, 240_000);

afterAll(async () => {
  await ifAssigned(worker)?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

describe("Rotate pgherd's credentials", () => {
  it("is one operation over every herd of the environment, and out of a staging admin's reach for production", async () => {
    const one = await planOperation(db, SYSTEM_ACCESS, rotateOwnCredentialsAction, [herdIds.get(`${ENV}/h1`)!], {});
    expect(one.targets[0]?.refused).toMatch(/are one for its 3 herds: tick them all in one operation \(not ticked: h2, h3\)/);

    const [env] = (await db.execute<{ id: number }>(sql`SELECT id FROM environments WHERE name = ${ENV}`)).rows;
    const stagingAdmin: Access = {
      userId: null,
      username: 'oc-admin',
      superuser: false,
      global: null,
      byEnvironment: new Map([[env!.id, 'admin']]),
    };
    const prodIds = [herdIds.get(`${PROD}/h1`)!, herdIds.get(`${PROD}/h2`)!];
    const theirs = await planOperation(db, stagingAdmin, rotateOwnCredentialsAction, prodIds, {}).catch((e: unknown) => e as Error);
    if (theirs instanceof Error) expect(theirs.message).toMatch(/access|not allowed|admin/i);
    else for (const t of theirs.targets) expect(t.refusalCode).toBe('access');
    const submitted = await submitOperation(
      db,
      worker.queue,
      rotateOwnCredentialsAction,
      { herdIds: prodIds, params: {}, digest: 'x', confirmation: '', idempotencyKey: randomBytes(8).toString('hex') },
      { id: null, username: 'oc-admin', access: stagingAdmin },
    ).catch((e: unknown) => e as Error);
    expect(submitted).toBeInstanceOf(Error);
  });

  it('rotates the password and the SSH key under a rolling restart: no target fails, the old ones are refused, the worker uses the new ones, production untouched', async () => {
    const roles = lab.pgAccess!.roles;
    const oldPassword = text(roles[ENV]!.passwordFile).trim();
    const prodPassword = text(roles[PROD]!.passwordFile);
    const keys = lab.ssh!.environments;
    const oldKey = text(keys[ENV]!.privateKeyPath);
    const prodKey = text(keys[PROD]!.privateKeyPath);
    const prodAuthorized = text(keys[PROD]!.authorizedKeys!);
    const members = membersOf(ENV);
    for (const m of members) await login(m, oldPassword);
    // Every statement in the primaries' logs.
    for (const m of members.filter((x) => x.role === 'primary' && !x.patroniUrl)) {
      await query(`postgres://postgres@${m.address}:${m.port}/postgres`, "ALTER SYSTEM SET log_statement = 'all'");
      await query(`postgres://postgres@${m.address}:${m.port}/postgres`, 'SELECT pg_reload_conf()');
    }

    // A rolling restart of the environment, one instance at a time, and the rotation beside it.
    const ids = (
      await db.execute<{ id: number }>(
        sql`SELECT i.id FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id WHERE e.name = ${ENV} ORDER BY i.role DESC, i.id`,
      )
    ).rows.map((r) => r.id);
    const waves = wavesSchema.parse({ size: 1 });
    const restartPlan = await planOperation(db, SYSTEM_ACCESS, restartAction, ids, {}, waves);
    const { id: restartId } = await submitOperation(
      db,
      worker.queue,
      restartAction,
      {
        instanceIds: ids,
        params: {},
        digest: restartPlan.digest,
        confirmation: restartPlan.typeToConfirm ?? '',
        idempotencyKey: randomBytes(8).toString('hex'),
        waves,
      },
      { id: null, username: 'test', access: SYSTEM_ACCESS },
    );
    const envHerds = [herdIds.get(`${ENV}/h1`)!, herdIds.get(`${ENV}/h2`)!, herdIds.get(`${ENV}/h3`)!];
    const restFile = (
      JSON.parse(text(lab.pgAccess!.configFile)) as { environments: Record<string, { patroni?: { passwordFile: string } }> }
    ).environments[ENV]!.patroni!.passwordFile;
    const oldRest = text(restFile).trim();
    const bouncerFile = (
      JSON.parse(text(lab.pgAccess!.configFile)) as { environments: Record<string, { pgbouncer?: { passwordFile: string } }> }
    ).environments[ENV]!.pgbouncer!.passwordFile;
    const oldBouncer = text(bouncerFile).trim();
    const poolers = (await loadHerdRefs(db, envHerds)).flatMap((h) => h.poolers);
    expect(poolers).toHaveLength(1);
    // pgherd's own new logins and SSH connections to every member, as the worker makes them, all through it.
    const refs = (await loadHerdRefs(db, envHerds)).flatMap((h) => h.members);
    const probe = { on: true, logins: 0, ssh: 0, rest: 0, bouncer: 0, failed: [] as string[] };
    const sshPool = new SshPool({ keys: liveSshKeys(lab.ssh!.privateKeyPath), connectRetries: 1 });
    const prober = (async () => {
      while (probe.on) {
        for (const m of refs) {
          const c = instanceClient(m, { connectionTimeoutMillis: 5000 });
          c.on('error', () => {});
          try {
            await c.connect();
            probe.logins++;
          } catch (err) {
            // A member the restart has down is not a login refused.
            if ((err as { code?: string }).code === '28P01' || /authentication/.test((err as Error).message))
              probe.failed.push(`${m.label}: ${(err as Error).message}`);
          } finally {
            await c.end().catch(() => {});
          }
          try {
            await sshPool.execOk(m.ssh, ['true']);
            probe.ssh++;
          } catch (err) {
            probe.failed.push(`ssh ${m.label}: ${(err as Error).message}`);
          }
          // Patroni's REST credentials as pgherd sends them (a write it would refuse without them, changing nothing).
          if (m.patroniUrl)
            try {
              await checkCredentials(m.patroniUrl, { ...patroniAccessFor(ENV)!, host: m.host });
              probe.rest++;
            } catch (err) {
              if (/credentials/.test((err as Error).message)) probe.failed.push(`patroni ${m.label}: ${(err as Error).message}`);
            }
        }
        // PgBouncer's admin console, as pgherd logs in to it (a switchover's PAUSE and RESUME).
        for (const p of poolers)
          try {
            await poolerAdmin((t) => poolerClient(p, t), ['SHOW DATABASES']);
            probe.bouncer++;
          } catch (err) {
            probe.failed.push(`pgbouncer ${p.label}: ${(err as Error).message}`);
          }
        // Every round opens new SSH connections: each authenticates with the key in force now.
        await sshPool.close();
      }
    })();
    const plan = await planOperation(db, SYSTEM_ACCESS, rotateOwnCredentialsAction, envHerds, {});
    for (const t of plan.targets) expect(t.refused ?? null).toBeNull();
    expect(JSON.stringify(plan.targets[0]?.facts)).toContain(roles[ENV]!.user);
    const rotateId = await submitPlanned(db, worker.queue, rotateOwnCredentialsAction, { herdIds: envHerds }, {}, plan);
    const rotated = await waitForOperation(db, rotateId, { timeoutMs: 180_000 });
    const restarted = await waitForOperation(db, restartId, { timeoutMs: 240_000 });
    probe.on = false;
    await prober;
    expect(probe.failed).toEqual([]);
    expect(probe.logins).toBeGreaterThan(refs.length * 3);
    expect(probe.ssh).toBeGreaterThan(refs.length * 3);
    expect(probe.rest).toBeGreaterThan(6);
    expect(probe.bouncer).toBeGreaterThan(3);
    expect(rotated.op.status, stepsOf(rotated) + JSON.stringify(rotated.targets)).toBe('succeeded');
    expect(restarted.op.status, stepsOf(restarted)).toBe('succeeded');
    expect(restarted.targets.filter((t) => t.status !== 'succeeded')).toEqual([]);

    // The new password alone in the file; every member takes it and refuses the old one.
    const file = text(roles[ENV]!.passwordFile);
    expect(file.trim().split('\n')).toHaveLength(1);
    const newPassword = file.trim();
    expect(newPassword).not.toBe(oldPassword);
    for (const m of members) {
      await login(m, newPassword);
      await expect(login(m, oldPassword)).rejects.toThrow(/password authentication failed/);
    }
    // The new key in the file, authorized; the old one refused by every host, the pooler's too.
    const newKey = text(keys[ENV]!.privateKeyPath);
    expect(newKey).not.toBe(oldKey);
    const authorized = text(keys[ENV]!.authorizedKeys!);
    expect(authorized).toContain(publicKeyOf(newKey).split(' ')[1]);
    expect(authorized).not.toContain(publicKeyOf(oldKey).split(' ')[1]);
    for (const m of members) {
      await sshWith(m, newKey);
      await expect(sshWith(m, oldKey)).rejects.toThrow(/authentication|All configured/i);
    }

    // Patroni's REST password: the new one alone in the file; each member takes it and refuses the old one.
    const newRest = text(restFile).trim();
    expect(newRest.split('\n')).toHaveLength(1);
    expect(newRest).not.toBe(oldRest);
    for (const m of refs.filter((r) => r.patroniUrl)) {
      const base = { user: lab.patroni![0]!.restUser, caFile: lab.patroni![0]!.caFile, host: m.host };
      await checkCredentials(m.patroniUrl, { ...base, password: newRest });
      await expect(checkCredentials(m.patroniUrl, { ...base, password: oldRest })).rejects.toThrow(/refused the REST credentials/);
    }

    // PgBouncer's admin password: the new one alone in the file; the pooler takes it and refuses the old one.
    const newBouncer = text(bouncerFile).trim();
    expect(newBouncer.split('\n')).toHaveLength(1);
    expect(newBouncer).not.toBe(oldBouncer);
    const adminLogin = async (password: string) => {
      const c = poolerLoginClient(poolers[0]!, password, { connectionTimeoutMillis: 5000 });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SHOW VERSION');
      } finally {
        await c.end().catch(() => {});
      }
    };
    await adminLogin(newBouncer);
    await expect(adminLogin(oldBouncer)).rejects.toThrow(/password authentication failed|SASL/);

    // The same worker, not restarted, acts with them: a reload of every member (SSH and SQL).
    const reload = await runOperation(db, worker.queue, reloadAction, { instanceIds: ids }, {}, { timeoutMs: 120_000 });
    expect(reload.op.status, stepsOf(reload)).toBe('succeeded');

    // Production's as they were, and still working.
    expect(text(roles[PROD]!.passwordFile)).toBe(prodPassword);
    expect(text(keys[PROD]!.privateKeyPath)).toBe(prodKey);
    expect(text(keys[PROD]!.authorizedKeys!)).toBe(prodAuthorized);
    for (const m of membersOf(PROD)) await login(m, prodPassword.trim());

    // No password anywhere pgherd keeps records, nor in the servers' logs (log_statement = all).
    const kept = JSON.stringify([
      (await db.execute(sql`SELECT * FROM operation_steps`)).rows,
      (await db.execute(sql`SELECT * FROM audit_entries`)).rows,
      (await db.execute(sql`SELECT * FROM operations`)).rows,
      (await db.execute(sql`SELECT * FROM own_credential_stages`)).rows,
    ]);
    for (const m of members.filter((x) => x.role === 'primary' && !x.patroniUrl)) {
      const serverLog = text(path.join(lab.dir, 'log', `${m.server}.log`));
      expect(serverLog).toContain("ALTER ROLE CURRENT_USER PASSWORD 'SCRAM-SHA-256$4096:");
      expect(serverLog.includes(newPassword)).toBe(false);
      await query(`postgres://postgres@${m.address}:${m.port}/postgres`, 'ALTER SYSTEM RESET log_statement');
      await query(`postgres://postgres@${m.address}:${m.port}/postgres`, 'SELECT pg_reload_conf()');
    }
    expect(kept.includes(newPassword)).toBe(false);
    expect(kept.includes(newRest)).toBe(false);
    expect(kept.includes(newBouncer)).toBe(false);
    expect(kept.includes(newKey.split('\n')[1]!)).toBe(false);
  }, 300_000);
  it('a herd that fails leaves the old and new both working; run again, it finishes', async () => {
    const roles = lab.pgAccess!.roles;
    const envHerds = [herdIds.get(`${ENV}/h1`)!, herdIds.get(`${ENV}/h2`)!, herdIds.get(`${ENV}/h3`)!];
    const before = text(roles[ENV]!.passwordFile).trim();
    const keyBefore = text(lab.ssh!.environments[ENV]!.privateKeyPath);
    // A Patroni member whose patroni.yml cannot be replaced (its folder read-only): h3 fails at its REST password.
    const member = lab.patroni![0]!.members[0]!;
    const folder = path.dirname(member.configFile);
    await runAsLab(labIdentity(), ['chmod', '0555', folder]);
    try {
      const plan = await planOperation(db, SYSTEM_ACCESS, rotateOwnCredentialsAction, envHerds, {});
      const id = await submitPlanned(db, worker.queue, rotateOwnCredentialsAction, { herdIds: envHerds }, {}, plan);
      const r = await waitForOperation(db, id, { timeoutMs: 180_000 });
      expect(r.op.status, stepsOf(r)).toBe('partial');
      expect(r.targets.find((t) => t.herdId === herdIds.get(`${ENV}/h3`))?.error).toMatch(/was not changed/);
    } finally {
      await runAsLab(labIdentity(), ['chmod', '0755', folder]);
    }
    // Nothing put in force: the old password first in its file, the new one staged; the old key in force.
    const staged = text(roles[ENV]!.passwordFile).trim().split('\n');
    expect(staged[0]).toBe(before);
    expect(staged.length).toBeGreaterThan(1);
    expect(text(lab.ssh!.environments[ENV]!.privateKeyPath)).toBe(keyBefore);
    // pgherd reaches every member as it would: the primaries that took the new password, by its salt.
    const refs = (await loadHerdRefs(db, envHerds)).flatMap((h) => h.members);
    for (const m of refs) {
      const c = instanceClient(m, { connectionTimeoutMillis: 5000 });
      c.on('error', () => {});
      await c.connect();
      await c.end();
      if (m.patroniUrl) await checkCredentials(m.patroniUrl, { ...patroniAccessFor(ENV)!, host: m.host });
    }
    // h1's PgBouncer took the new admin password while the file still has the old one first: pgherd answers its salt.
    const bouncerFile = (
      JSON.parse(text(lab.pgAccess!.configFile)) as { environments: Record<string, { pgbouncer?: { passwordFile: string } }> }
    ).environments[ENV]!.pgbouncer!.passwordFile;
    expect(text(bouncerFile).trim().split('\n').length).toBeGreaterThan(1);
    for (const p of (await loadHerdRefs(db, envHerds)).flatMap((h) => h.poolers))
      await poolerAdmin((t) => poolerClient(p, t), ['SHOW DATABASES']);
    await expect(
      login(
        membersOf(ENV).find((m) => m.herd === 'h1' && m.role === 'primary')!,
        before,
      ),
    ).rejects.toThrow(/password authentication failed/);

    // Run again: it finishes, the newest password alone in force.
    const again = await runOperation(db, worker.queue, rotateOwnCredentialsAction, { herdIds: envHerds }, {}, { timeoutMs: 180_000 });
    expect(again.op.status, stepsOf(again)).toBe('succeeded');
    const now = text(roles[ENV]!.passwordFile).trim();
    expect(now.split('\n')).toHaveLength(1);
    for (const m of membersOf(ENV)) await login(m, now);
    expect(text(lab.ssh!.environments[ENV]!.privateKeyPath)).not.toBe(keyBefore);
  }, 300_000);
});
