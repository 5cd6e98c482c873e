// start, stop, restart, reload on real lab instances over real SSH, asserting real Postgres state.
// They use the production/identity herd, which the other test files leave alone.
import net from 'node:net';
import { chownSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instances } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { query } from '@/lib/lab/postgres';
import { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { runAction } from '@/lib/testing/run-action';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import type { InstanceAction } from '@/lib/engine/define-action';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { reloadAction } from './reload.action';
import { restartAction } from './restart.action';
import { startAction } from './start.action';
import { stopAction } from './stop.action';

let t: TestDb;
let ssh: SshPool;
const refs: Record<string, InstanceRef> = {};

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  ssh = new SshPool({ privateKey: readFileSync(t.lab.ssh!.privateKeyPath) });
  const all = await loadInstanceRefs(
    t.db,
    (await t.db.select({ id: instances.id }).from(instances)).map((r) => r.id),
  );
  for (const r of all)
    if (r.environment === 'production' && r.herd === 'identity')
      refs[r.role === 'primary' ? 'primary' : refs.replica ? 'replica2' : 'replica'] = r;
});
afterAll(async () => {
  await ifAssigned(ssh)?.close();
  await ifAssigned(t)?.close();
});

const run = (action: InstanceAction, target: InstanceRef) => runAction(t.db, ssh, action, target.id);

const dsn = (r: InstanceRef) => `postgres://postgres@${r.host}:${r.port}/postgres`;
const portOpen = (r: InstanceRef) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(r.port, r.host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
const stateOf = async (r: InstanceRef) => (await t.db.select({ s: instances.state }).from(instances).where(eq(instances.id, r.id)))[0]!.s;

describe('instance actions on the lab', () => {
  it('stop: the port refuses connections afterwards, and every step is recorded with its command', async () => {
    const r = refs.replica2;
    const { res, steps } = await run(stopAction, r!);
    expect(res.error).toBeUndefined();
    expect(await portOpen(r!)).toBe(false);
    expect(await stateOf(r!)).toBe('stopped');
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ['stop (fast)', 'succeeded'],
      ['wait until the port refuses connections', 'succeeded'],
      ['record the observed state in the inventory', 'succeeded'],
    ]);
    expect(steps[0]!.command).toBe(`/usr/lib/postgresql/15/bin/pg_ctl -D ${r!.dataDirectory} -m fast -w -t 120 stop`);
    expect(steps[0]!.exitCode).toBe(0);
    expect(steps[0]!.finishedAt).not.toBeNull();
  });

  it('start: it accepts connections again and streams from its primary', async () => {
    const r = refs.replica2;
    const { res, steps } = await run(startAction, r!);
    expect(res.error).toBeUndefined();
    const [row] = await query<{ rec: boolean }>(dsn(r!), 'SELECT pg_is_in_recovery() AS rec');
    expect(row!.rec).toBe(true);
    expect(await stateOf(r!)).toBe('running');
    // started again: a second start changes nothing and says so
    const again = await run(startAction, r!);
    expect(again.res.error).toBeUndefined();
    expect(again.steps[1]!.stdoutTail).toBe('skipped: it already accepts connections');
    expect(steps[1]!.command).toContain('pg_ctl');
  });

  it('restart: pg_postmaster_start_time() moved', async () => {
    const r = refs.replica;
    const [before] = await query<{ t: Date }>(dsn(r!), 'SELECT pg_postmaster_start_time() AS t');
    const { res } = await run(restartAction, r!);
    expect(res.error).toBeUndefined();
    const [after] = await query<{ t: Date }>(dsn(r!), 'SELECT pg_postmaster_start_time() AS t');
    expect(after!.t.getTime()).toBeGreaterThan(before!.t.getTime());
  });

  it('restart only if pending: left alone while no setting waits for one, restarted once one does', async () => {
    const r = refs.replica;
    const startedAt = async () => (await query<{ t: Date }>(dsn(r!), 'SELECT pg_postmaster_start_time() AS t'))[0]!.t.getTime();
    const before = await startedAt();
    const idle = await runAction(t.db, ssh, restartAction, r!.id, { pendingOnly: true });
    expect(idle.res.error).toBeUndefined();
    expect(idle.steps.find((x) => x.name === 'restart')!.stdoutTail).toBe('skipped: no setting waits for a restart: left alone');
    expect(await startedAt()).toBe(before);
    await query(dsn(r!), 'ALTER SYSTEM SET max_wal_senders = 11');
    await query(dsn(r!), 'SELECT pg_reload_conf()');
    await expect
      .poll(
        async () =>
          (await query<{ p: boolean }>(dsn(r!), "SELECT pending_restart AS p FROM pg_settings WHERE name = 'max_wal_senders'"))[0]!.p,
      )
      .toBe(true);
    try {
      const pending = await runAction(t.db, ssh, restartAction, r!.id, { pendingOnly: true });
      expect(pending.res.error).toBeUndefined();
      expect(await startedAt()).toBeGreaterThan(before);
    } finally {
      await query(dsn(r!), 'ALTER SYSTEM RESET max_wal_senders');
      await query(dsn(r!), 'SELECT pg_reload_conf()');
    }
  });

  it('reload: a setting changed on disk takes effect', async () => {
    const r = refs.primary;
    await query(dsn(r!), `ALTER SYSTEM SET work_mem = '7MB'`);
    expect((await query<{ work_mem: string }>(dsn(r!), 'SHOW work_mem'))[0]!.work_mem).not.toBe('7MB');
    const { res } = await run(reloadAction, r!);
    expect(res.error).toBeUndefined();
    expect((await query<{ work_mem: string }>(dsn(r!), 'SHOW work_mem'))[0]!.work_mem).toBe('7MB');
    await query(dsn(r!), 'ALTER SYSTEM RESET work_mem');
    await query(dsn(r!), 'SELECT pg_reload_conf()');
  });

  it('start refuses an instance that would come up as a second primary (no standby.signal while another member answers as primary), running nothing', async () => {
    const r = refs.replica2;
    await run(stopAction, r!);
    const signal = `${r!.dataDirectory}/standby.signal`;
    // As after a failover whose fence someone undid in the inventory: the old primary has no standby.signal.
    rmSync(signal);
    try {
      const { res, steps } = await run(startAction, r!);
      expect(res.error?.message).toBe(
        `refused: ${refs.primary!.label} answers as the herd's primary (timeline 1); ${r!.label} has no standby.signal and would start as a second primary. Rebuild it as a replica instead. Nothing was started`,
      );
      expect(steps.map((s) => s.status)).toEqual(['failed']);
      expect(await portOpen(r!)).toBe(false);
    } finally {
      writeFileSync(signal, '');
      chownSync(signal, statSync(r!.dataDirectory).uid, statSync(r!.dataDirectory).gid);
    }
    expect((await run(startAction, r!)).res.error).toBeUndefined();
    expect((await query<{ rec: boolean }>(dsn(r!), 'SELECT pg_is_in_recovery() AS rec'))[0]!.rec).toBe(true);
  });

  it('restart of a stopped instance fails at its first step with the reason, and runs nothing', async () => {
    const r = refs.replica2;
    await run(stopAction, r!);
    const { res, steps } = await run(restartAction, r!);
    expect(res.error?.message).toMatch(/is not running .*use start/);
    expect(steps.map((s) => s.status)).toEqual(['failed']);
    expect(await portOpen(r!)).toBe(false);
    await run(startAction, r!);
    expect(await portOpen(r!)).toBe(true);
  });
});
