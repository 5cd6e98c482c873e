// The wave conductor's observations over kept connections, against a real lab instance: one
// connection an endpoint across samples, and a kept connection that dies never yields a stale or
// failed reading when the instance answers.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { readLab, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { startTcpProxy } from '@/lib/testing/tcp-proxy';
import { isOpsTestHerd } from '@/lib/testing/test-db';
import { observationPool, observe, postmasterAnswers, type ObservationPool } from '@/lib/fleet/observe';
import { waitFor } from '@/lib/testing/wait';

let instance: LabInstance;
let pool: ObservationPool | null = null;
const observerPids = async () =>
  (
    await query<{ pid: number }>(
      instance.dsn,
      `SELECT pid FROM pg_stat_activity WHERE application_name = 'pgherd-observer' AND usename <> 'postgres' ORDER BY pid`,
    )
  ).map((r) => r.pid);

beforeAll(() => {
  const lab = readLab(inject('labFile'));
  // A replica no operations test restarts: its observer connections are this file's alone.
  const found = lab.instances.find((i) => i.role === 'replica' && !isOpsTestHerd(i.environment, i.herd) && i.environment === 'staging');
  if (!found) throw new Error('the lab has no staging replica outside the operations tests');
  instance = found;
});
afterEach(() => {
  pool?.close();
  pool = null;
});

describe('observationPool', () => {
  it('observes over one kept connection an endpoint, sample after sample', async () => {
    pool = observationPool();
    const e = { host: instance.address, port: instance.port, serverEnvironment: instance.environment };
    const before = await observerPids();
    const first = await pool.look(e);
    expect(first).toMatchObject({ reachable: true, inRecovery: true });
    const kept = (await observerPids()).filter((p) => !before.includes(p));
    expect(kept).toHaveLength(1);
    for (let i = 0; i < 5; i++) expect(await pool.look(e)).toMatchObject({ reachable: true, inRecovery: true });
    expect((await observerPids()).filter((p) => !before.includes(p))).toEqual(kept);
    expect(pool.size()).toBe(1);
    // Unused for longer than the sweep's idle time: closed.
    await new Promise((r) => setTimeout(r, 50));
    pool.sweep(10);
    expect(pool.size()).toBe(0);
  });

  it('reads again over a new connection when the kept one died (a restart ends every backend): a true reading, not an error', async () => {
    pool = observationPool();
    const e = { host: instance.address, port: instance.port, serverEnvironment: instance.environment };
    const before = await observerPids();
    await pool.look(e);
    const [kept] = (await observerPids()).filter((p) => !before.includes(p));
    await query(instance.dsn, 'SELECT pg_terminate_backend($1)', [kept]);
    const again = await pool.look(e);
    expect(again).toMatchObject({ reachable: true, inRecovery: true });
    const now = (await observerPids()).filter((p) => !before.includes(p));
    expect(now).toHaveLength(1);
    expect(now).not.toContain(kept);
  });

  it('says unreachable when the instance takes no new connection, though its kept session still answers (a frozen postmaster)', async () => {
    // A proxy on the instance's own address (its certificate stays valid) that can stop answering new
    // connections while the open ones go on.
    const proxy = await startTcpProxy({ host: instance.address, port: instance.port }, instance.address);
    pool = observationPool();
    const e = { host: instance.address, port: proxy.port, serverEnvironment: instance.environment };
    try {
      expect(await pool.look(e)).toMatchObject({ reachable: true, inRecovery: true });
      expect(await postmasterAnswers(e, 1000)).toBeNull();
      proxy.hangNew();
      const frozen = await pool.look(e, 1000);
      expect(frozen).toMatchObject({ reachable: false });
      expect(frozen.error).toMatch(/no answer to a new connection within 1000 ms \(an open session still answers\)/);
      proxy.restore();
      expect(await pool.look(e)).toMatchObject({ reachable: true, inRecovery: true });
    } finally {
      await proxy.close();
    }
  });

  it('says unreachable, never a kept reading, when nothing answers', async () => {
    pool = observationPool();
    // A port nothing listens on, at the instance's address.
    const o = await pool.look({ host: instance.address, port: 1, serverEnvironment: instance.environment }, 1000);
    expect(o).toMatchObject({ reachable: false });
    expect(pool.size()).toBe(0);
  });
});

describe('a setting that waits for a restart', () => {
  it('is reported by an observation (the refresher\u2019s), and left out of the gate\u2019s readings, which do not judge it', async () => {
    const e = { host: instance.address, port: instance.port, serverEnvironment: instance.environment };
    const pending = async () =>
      (await query<{ p: boolean }>(instance.dsn, 'SELECT EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart) AS p'))[0]?.p;
    const until = (want: boolean) => waitFor(`pending_restart ${String(want)}`, async () => (await pending()) === want, 5000);
    expect(await observe(e)).toMatchObject({ reachable: true, pendingRestart: false });
    const [{ n } = { n: 100 }] = await query<{ n: number }>(instance.dsn, "SELECT current_setting('max_connections')::int AS n");
    try {
      await query(instance.dsn, `ALTER SYSTEM SET max_connections = ${n + 1}`);
      await query(instance.dsn, 'SELECT pg_reload_conf()');
      await until(true);
      expect(await observe(e)).toMatchObject({ reachable: true, pendingRestart: true });
      pool = observationPool();
      const reading = await pool.look(e);
      expect(reading).toMatchObject({ reachable: true, inRecovery: true });
      expect(reading).not.toHaveProperty('pendingRestart');
    } finally {
      await query(instance.dsn, 'ALTER SYSTEM RESET max_connections');
      await query(instance.dsn, 'SELECT pg_reload_conf()');
      await until(false);
    }
  });
});
