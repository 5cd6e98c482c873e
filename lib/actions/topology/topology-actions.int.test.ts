// promote and remaster on real lab instances: the staging/identity herd, which the other test files leave alone.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instances } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { query } from '@/lib/lab/postgres';
import { labIdentity, run as runAs } from '@/lib/lab/proc';
import { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { runAction } from '@/lib/testing/run-action';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import type { InstanceAction } from '@/lib/engine/define-action';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { ParamsError, planOperation } from '@/lib/engine/plan';
import { promoteAction } from './promote.action';
import { conninfo } from '@/lib/adapters/libpq/conninfo';
import { remasterAction } from './remaster.action';
import { stopAction } from '@/lib/actions/control/stop.action';
import { startAction } from '@/lib/actions/control/start.action';
import { restartAction } from '@/lib/actions/control/restart.action';
import { rebuildAction } from './rebuild.action';
import { SYSTEM_ACCESS } from '@/lib/engine/access';

let t: TestDb;
let ssh: SshPool;
let primary: InstanceRef;
let r2: InstanceRef;
let r3: InstanceRef;
let elsewhere: InstanceRef;

const run = (action: InstanceAction, targetId: number) => runAction(t.db, ssh, action, targetId);
const dsn = (r: InstanceRef) => `postgres://postgres@${r.host}:${r.port}/postgres`;
/**
 * The replica's primary_conninfo keeps pgherd's rule (the upstream's certificate verified against the
 * environment's CA, in a file on the replica's host), and its upstream sees it connected over TLS.
 */
async function expectVerifiedReplication(replica: InstanceRef, upstream: InstanceRef) {
  const [{ c } = { c: '' }] = await query<{ c: string }>(dsn(replica), `SELECT current_setting('primary_conninfo') AS c`);
  expect(c).toMatch(/sslmode='verify-full'/);
  const caFile = /sslrootcert='([^']+)'/.exec(c)?.[1];
  expect(readFileSync(caFile!, 'utf8').trim()).toBe(readFileSync(t.lab.tls!.caFile, 'utf8').trim());
  const ssl = await query<{ ssl: boolean }>(dsn(upstream), 'SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)');
  expect(ssl.length).toBeGreaterThan(0);
  expect(ssl.every((r) => r.ssl)).toBe(true);
}
const inRecovery = async (r: InstanceRef) => (await query<{ rec: boolean }>(dsn(r), 'SELECT pg_is_in_recovery() AS rec'))[0]!.rec;

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  ssh = new SshPool({ privateKey: readFileSync(t.lab.ssh!.privateKeyPath) });
  const all = await loadInstanceRefs(
    t.db,
    (await t.db.select({ id: instances.id }).from(instances)).map((r) => r.id),
  );
  const herd = all.filter((r) => r.environment === 'staging' && r.herd === 'identity');
  primary = herd.find((r) => r.role === 'primary')!;
  [r2, r3] = herd.filter((r) => r.role === 'replica') as [InstanceRef, InstanceRef];
  elsewhere = all.find((r) => r.herdId !== primary.herdId)!;
});
afterAll(async () => {
  await ifAssigned(ssh)?.close();
  await ifAssigned(t)?.close();
});

describe('promote', () => {
  it('is refused at planning while the herd has a running primary', async () => {
    const plan = await planOperation(t.db, SYSTEM_ACCESS, promoteAction, [r2.id]);
    expect(plan.targets[0]!.refused).toMatch(/running primary .*stop it, or use switchover/);
  });

  it('is refused again at execution when the primary still answers, whatever the inventory says', async () => {
    await t.db.update(instances).set({ state: 'stopped' }).where(eq(instances.id, primary.id));
    const { res, steps } = await run(promoteAction, r2.id);
    expect(res.error?.message).toMatch(/answers as a primary/);
    expect(steps.map((s) => s.status)).toEqual(['failed']);
    expect(await inRecovery(r2)).toBe(true);
    await t.db.update(instances).set({ state: 'running' }).where(eq(instances.id, primary.id));
  });

  it('with the primary stopped, makes the replica a primary that accepts writes', async () => {
    expect((await run(stopAction, primary.id)).res.error).toBeUndefined();
    const { res } = await run(promoteAction, r2.id);
    expect(res.error).toBeUndefined();
    expect(await inRecovery(r2)).toBe(false);
    await query(dsn(r2), "CREATE TABLE promoted (v text); INSERT INTO promoted VALUES ('after promote')");
    const [row] = await t.db.select().from(instances).where(eq(instances.id, r2.id));
    expect(row!.role).toBe('primary');
    expect(row!.timeline).toBe(2);
  });
});

describe('remaster', () => {
  it('points the other replica at the new primary; it streams from it and has its rows', async () => {
    const plan = await planOperation(t.db, SYSTEM_ACCESS, remasterAction, [r3.id]);
    expect(plan.targets[0]!.refused).toBeUndefined();
    expect(plan.targets[0]!.steps.join('\n')).toContain(`streams from ${r2.host}:${r2.port}`);
    const { res } = await run(remasterAction, r3.id);
    expect(res.error).toBeUndefined();
    const [w] = await query<{ status: string; host: string; port: number }>(
      dsn(r3),
      'SELECT status, sender_host AS host, sender_port AS port FROM pg_stat_wal_receiver',
    );
    expect(w).toEqual({ status: 'streaming', host: r2.host, port: r2.port });
    let rows: { v: string }[] = [];
    for (let i = 0; i < 100 && !rows.length; i++) {
      rows = await query<{ v: string }>(dsn(r3), `SELECT v FROM promoted`).catch(() => []);
      if (!rows.length) await new Promise((r) => setTimeout(r, 50));
    }
    expect(rows).toEqual([{ v: 'after promote' }]);
    const [inv] = await t.db.select().from(instances).where(eq(instances.id, r3.id));
    expect(inv!.upstreamInstanceId).toBe(r2.id);
    await expectVerifiedReplication(r3, r2);
  });

  it('is refused for a primary', async () => {
    const plan = await planOperation(t.db, SYSTEM_ACCESS, remasterAction, [r2.id]);
    expect(plan.targets[0]!.refused).toMatch(/only replicas/);
  });

  it('quotes conninfo values so that no value can add a parameter', () => {
    expect(conninfo({ host: "h' sslmode='disable", port: 5432 })).toBe("host='h\\' sslmode=\\'disable' port='5432'");
  });
});

describe('rebuild', () => {
  it('is refused for the herd\u2019s running primary, at planning', async () => {
    const plan = await planOperation(t.db, SYSTEM_ACCESS, rebuildAction, [r2.id]);
    expect(plan.targets[0]!.refused).toMatch(/it is the herd\u2019s primary/);
  });

  it('turns a diverged old primary into a replica holding exactly the primary\u2019s rows, streaming', async () => {
    // The old primary comes back on its own timeline (started by hand: pgherd's Start refuses it, a
    // second primary) and takes a write the new primary never saw.
    const refusedStart = await run(startAction, primary.id);
    expect(refusedStart.res.error?.message).toMatch(/has no standby.signal and would start as a second primary/);
    await runAs(labIdentity(), [
      `${t.lab.pgBin}/pg_ctl`,
      '-D',
      primary.dataDirectory,
      '-l',
      path.join(t.lab.dir, 'log', 'diverged.log'),
      '-w',
      'start',
    ]);
    expect(await inRecovery(primary)).toBe(false);
    await query(dsn(primary), `CREATE TABLE diverged (v text); INSERT INTO diverged VALUES ('lost')`);
    await query(dsn(r2), `INSERT INTO promoted VALUES ('second')`);
    // Running as a primary, it is refused at execution too.
    await t.db.update(instances).set({ state: 'needs_rebuild' }).where(eq(instances.id, primary.id));
    const refused = await run(rebuildAction, primary.id);
    expect(refused.res.error?.message).toMatch(/runs as a primary/);
    expect((await run(stopAction, primary.id)).res.error).toBeUndefined();
    await t.db.update(instances).set({ state: 'needs_rebuild' }).where(eq(instances.id, primary.id));

    const { res, steps } = await run(rebuildAction, primary.id);
    expect(res.error).toBeUndefined();
    expect(steps.find((s) => s.name === 'pg_rewind')?.exitCode).toBe(0);
    expect(steps.find((s) => s.name.startsWith('pg_basebackup'))?.stdoutTail).toBe('skipped: rewound');
    expect(await inRecovery(primary)).toBe(true);
    const [w] = await query<{ status: string; host: string }>(dsn(primary), 'SELECT status, sender_host AS host FROM pg_stat_wal_receiver');
    expect(w).toEqual({ status: 'streaming', host: r2.host });
    // Its own port and address survived the copy of the source's postgresql.conf.
    expect((await query<{ port: string }>(dsn(primary), 'SHOW port'))[0]!.port).toBe(String(primary.port));
    expect((await query<{ a: string }>(dsn(primary), `SELECT current_setting('listen_addresses') AS a`))[0]!.a).toBe(primary.host);
    expect(await query(dsn(primary), `SELECT 1 FROM pg_class WHERE relname = 'diverged'`)).toEqual([]);
    let rows: { v: string }[] = [];
    for (let i = 0; i < 100 && rows.length < 2; i++) {
      rows = await query<{ v: string }>(dsn(primary), 'SELECT v FROM promoted ORDER BY v');
      if (rows.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    expect(rows).toEqual([{ v: 'after promote' }, { v: 'second' }]);
    const [inv] = await t.db.select().from(instances).where(eq(instances.id, primary.id));
    expect(inv).toMatchObject({ role: 'replica', state: 'running', upstreamInstanceId: r2.id });
    await expectVerifiedReplication(primary, r2); // pg_rewind -R wrote the string it connected with
  });

  it('falls back to pg_basebackup when pg_rewind cannot work, into a fresh directory', async () => {
    expect((await run(stopAction, r3.id)).res.error).toBeUndefined();
    // A pg_control whose checksum is wrong: pg_rewind refuses it; its system identifier (the first
    // bytes) still says whose data it is, so pgherd may replace it.
    const control = path.join(r3.dataDirectory, 'global', 'pg_control');
    const bytes = readFileSync(control);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(control, bytes);
    const { res, steps } = await run(rebuildAction, r3.id);
    expect(res.error).toBeUndefined();
    expect(steps.find((s) => s.name === 'pg_rewind')?.exitCode).not.toBe(0);
    expect(steps.find((s) => s.name.startsWith('pg_basebackup'))?.status).toBe('succeeded');
    expect(await inRecovery(r3)).toBe(true);
    expect((await query<{ port: string }>(dsn(r3), 'SHOW port'))[0]!.port).toBe(String(r3.port));
    expect((await query<{ v: string }>(dsn(r3), 'SELECT v FROM promoted ORDER BY v')).map((r) => r.v)).toEqual(['after promote', 'second']);
    const parent = path.dirname(r3.dataDirectory);
    expect(readdirSync(parent).filter((f) => f.includes('pgherd-'))).toEqual([]); // nothing left aside
    await expectVerifiedReplication(r3, r2); // pg_basebackup -R wrote the string it connected with
  });
});

describe('rebuild destroys nothing its host has not proven', () => {
  const listing = (dir: string) => readdirSync(dir).sort();

  it('refuses a saturated replica (it does not answer, yet it runs): its data directory untouched, still streaming', async () => {
    // Every connection slot taken: pgherd's own connection is refused ("too many clients"), as it would
    // be by a replica under a connection storm, or one that refuses pgherd's credentials.
    const held: pg.Client[] = [];
    try {
      for (;;) {
        const c = new pg.Client({ connectionString: dsn(r3), connectionTimeoutMillis: 5000 });
        c.on('error', () => {});
        try {
          await c.connect();
        } catch (err) {
          expect(String(err)).toMatch(/too many clients|remaining connection slots/);
          break;
        }
        held.push(c);
      }
      const before = listing(r3.dataDirectory);
      const control = readFileSync(path.join(r3.dataDirectory, 'global', 'pg_control'));
      await t.db.update(instances).set({ state: 'needs_rebuild' }).where(eq(instances.id, r3.id));
      const { res, steps } = await run(rebuildAction, r3.id);
      expect(res.error?.message).toMatch(/did not answer .*yet a server runs on .*pg_ctl status.*touches nothing/);
      expect(steps.map((s) => s.status)).toEqual(['failed']);
      expect(listing(r3.dataDirectory)).toEqual(before);
      expect(readFileSync(path.join(r3.dataDirectory, 'global', 'pg_control')).equals(control)).toBe(true);
      expect(readdirSync(path.dirname(r3.dataDirectory)).filter((f) => f.includes('pgherd-'))).toEqual([]);
    } finally {
      await Promise.all(held.map((c) => c.end()));
    }
    expect(await inRecovery(r3)).toBe(true);
    const [w] = await query<{ status: string }>(dsn(r3), 'SELECT status FROM pg_stat_wal_receiver');
    expect(w?.status).toBe('streaming');
    await t.db.update(instances).set({ state: 'running' }).where(eq(instances.id, r3.id));
  });

  it('refuses to stop, restart or rebuild through a row pointed at another cluster\u2019s running data directory (a shared host): nothing run on it', async () => {
    // The row's address is r3's, whose Postgres answers from its own directory; the row names another
    // herd's. On a host that runs both, pg_ctl would stop (or replace) the other cluster.
    const [row] = await t.db.select().from(instances).where(eq(instances.id, r3.id));
    await t.db.update(instances).set({ dataDirectory: elsewhere.dataDirectory }).where(eq(instances.id, r3.id));
    try {
      const stopped = await run(stopAction, r3.id);
      expect(stopped.res.error?.message).toContain(
        `Postgres at ${r3.host}:${r3.port} runs from ${r3.dataDirectory}, not the recorded ${elsewhere.dataDirectory}: pgherd does not act on a data directory it cannot tie to this instance; nothing was run`,
      );
      expect(stopped.steps.map((s) => s.command).join('\n')).not.toContain('pg_ctl');
      // A restart reads the other cluster's postmaster.pid over SSH: its listen address is not the row's,
      // so Postgres at the row's address is asked which directory it runs from, and it is not this one.
      const restarted = await run(restartAction, r3.id);
      expect(restarted.res.error?.message).toMatch(/runs from .* not the recorded .*nothing was run/);
      expect(restarted.steps.map((s) => s.command).join('\n')).not.toMatch(/pg_ctl\S* .*restart/);
      expect(restarted.steps.map((s) => s.name)).toEqual(['read the postmaster', 'restart']);
      const rebuilt = await run(rebuildAction, r3.id);
      expect(rebuilt.res.error?.message).toMatch(/runs from .* not the recorded .*nothing was run/);
      expect(rebuilt.steps.map((s) => s.status)).toEqual(['failed']);
      expect(await inRecovery(r3)).toBe(true);
      expect(readdirSync(path.dirname(elsewhere.dataDirectory)).filter((f) => f.includes('pgherd-'))).toEqual([]);
    } finally {
      await t.db.update(instances).set({ dataDirectory: row!.dataDirectory }).where(eq(instances.id, r3.id));
    }
  });

  it('refuses to stop or start through a row whose address answers nothing and whose directory is another cluster\u2019s', async () => {
    // Nothing listens at the row's port, so Postgres cannot say which directory it runs from: the host
    // proves whose the directory is (pg_control's system identifier, the port it is configured for).
    const [row] = await t.db.select().from(instances).where(eq(instances.id, r3.id));
    await t.db.update(instances).set({ port: 5499, dataDirectory: elsewhere.dataDirectory }).where(eq(instances.id, r3.id));
    try {
      for (const action of [stopAction, startAction]) {
        const { res, steps } = await run(action, r3.id);
        // Start refuses before its own checks (a replica without a standby.signal, say) or at the directory.
        expect(res.error?.message, action.name).toMatch(
          action === stopAction ? /not the herd's \d+: another cluster's data directory; nothing was run/ : /refused/,
        );
        expect(steps.map((s) => s.command).join('\n'), action.name).not.toContain('pg_ctl');
      }
    } finally {
      await t.db.update(instances).set({ port: row!.port, dataDirectory: row!.dataDirectory }).where(eq(instances.id, r3.id));
    }
  });

  it('refuses a stopped data directory of another cluster (its system identifier is not the herd\u2019s): not one file moved', async () => {
    // The instance stopped, its row pointed at a directory that holds another cluster's data (another
    // herd's, or another environment's): Postgres cannot answer for it; pg_control says whose it is.
    const other = path.join(t.lab.dir, 'not-this-herd');
    await runAs(labIdentity(), [`${t.lab.pgBin}/initdb`, '-D', other, '-U', 'postgres', '--no-sync']);
    const before = listing(other);
    const [row] = await t.db.select().from(instances).where(eq(instances.id, r3.id));
    expect((await run(stopAction, r3.id)).res.error).toBeUndefined();
    await t.db.update(instances).set({ dataDirectory: other, state: 'needs_rebuild' }).where(eq(instances.id, r3.id));
    try {
      const { res, steps } = await run(rebuildAction, r3.id);
      expect(res.error?.message).toMatch(/holds system \d+, not the herd's \d+: it is another cluster's data, and is not touched/);
      expect(steps.filter((s) => s.status === 'succeeded').map((s) => s.name)).not.toContain('pg_basebackup (when pg_rewind could not)');
      expect(listing(other)).toEqual(before);
      expect(readdirSync(t.lab.dir).filter((f) => f.startsWith('not-this-herd.pgherd-'))).toEqual([]);
    } finally {
      await t.db.update(instances).set({ dataDirectory: row!.dataDirectory, state: 'stopped' }).where(eq(instances.id, r3.id));
    }
    expect((await run(startAction, r3.id)).res.error).toBeUndefined();
    expect(await inRecovery(r3)).toBe(true);
  });
});

describe('remaster to a chosen member', () => {
  it('moves a replica to a sibling replica (cascading): the primary\u2019s new rows reach it through the sibling', async () => {
    // Now: r2 is the primary; the old primary and r3 are its replicas.
    const params = { upstreamInstanceId: primary.id };
    const plan = await planOperation(t.db, SYSTEM_ACCESS, remasterAction, [r3.id], params);
    expect(plan.targets[0]!.refused).toBeUndefined();
    expect(plan.targets[0]!.steps.join('\n')).toContain(`${primary.label} (a replica: cascading replication)`);
    expect(plan.digest).not.toBe((await planOperation(t.db, SYSTEM_ACCESS, remasterAction, [r3.id])).digest);
    const { res, steps } = await runAction(t.db, ssh, remasterAction, r3.id, params);
    expect(res.error).toBeUndefined();
    expect(steps[0]!.stdoutTail).toBe(`new upstream: ${primary.label} (replica)`);
    const [w] = await query<{ status: string; host: string; port: number }>(
      dsn(r3),
      'SELECT status, sender_host AS host, sender_port AS port FROM pg_stat_wal_receiver',
    );
    expect(w).toEqual({ status: 'streaming', host: primary.host, port: primary.port });
    await query(dsn(r2), `INSERT INTO promoted VALUES ('cascaded')`);
    let rows: { v: string }[] = [];
    for (let i = 0; i < 100 && !rows.length; i++) {
      rows = await query<{ v: string }>(dsn(r3), `SELECT v FROM promoted WHERE v = 'cascaded'`);
      if (!rows.length) await new Promise((r) => setTimeout(r, 50));
    }
    expect(rows).toEqual([{ v: 'cascaded' }]);
    const [inv] = await t.db.select().from(instances).where(eq(instances.id, r3.id));
    expect(inv!.upstreamInstanceId).toBe(primary.id);
  });

  it('refuses a loop, a member of another herd and the replica itself, at planning; malformed parameters are a ParamsError', async () => {
    const refusal = async (target: InstanceRef, upstreamInstanceId: number) =>
      (await planOperation(t.db, SYSTEM_ACCESS, remasterAction, [target.id], { upstreamInstanceId })).targets[0]!.refused;
    expect(await refusal(primary, r3.id)).toBe(`${r3.label} streams from ${primary.label}: that would be a loop`);
    expect(await refusal(r3, elsewhere.id)).toMatch(/is not a member of the herd staging\/identity/);
    expect(await refusal(r3, r3.id)).toBe('a replica cannot stream from itself');
    await expect(planOperation(t.db, SYSTEM_ACCESS, remasterAction, [r3.id], { upstreamInstanceId: 'x' })).rejects.toBeInstanceOf(
      ParamsError,
    );
    await expect(planOperation(t.db, SYSTEM_ACCESS, remasterAction, [r3.id], { upstream: 1 })).rejects.toThrow(/Unrecognized key/);
    await expect(planOperation(t.db, SYSTEM_ACCESS, stopAction, [r3.id], { upstreamInstanceId: 1 })).rejects.toThrow(
      'stop takes no parameters',
    );
  });
});
