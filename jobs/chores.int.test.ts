// The chores several workers share, against pgherd's Postgres: one worker at a time by the chore's
// advisory lock, and a holder that falls silent (frozen with the lock) loses it to the next worker.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { observeFor, waitFor } from '@/lib/testing/wait';
import { choreRunner, type Chore } from './chores';

let t: TestDb;
const pools: pg.Pool[] = [];
beforeAll(async () => {
  t = await freshDatabase();
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await ifAssigned(t)?.close();
});

function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

/** A worker's runner over its own pool: `run` is the shared chore's body. */
function worker(run: Chore['run'], lock: number, opts: { lockBeatMs?: number; lockIdleMs?: number } = {}) {
  const pool = new pg.Pool({ connectionString: t.url, max: 3 });
  pools.push(pool);
  const logged: string[] = [];
  const r = choreRunner([{ name: 'refresh', every: null, lock, run }], { pool, log: (e) => logged.push(e), ...opts });
  return { r, logged, pool };
}

const holder = async (lock: number) =>
  (await t.db.$client.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted", [lock]))
    .rows[0]?.pid ?? null;

describe('a shared chore', () => {
  it('runs on one worker at a time: the other skips it while the first holds its lock', async () => {
    const g = gate();
    let runsA = 0;
    let runsB = 0;
    const a = worker(() => (runsA++, g.p), 73_000_001);
    const b = worker(async () => void runsB++, 73_000_001);
    a.r.ask('refresh');
    await waitFor('worker a holds the lock', () => holder(73_000_001));
    b.r.ask('refresh');
    await waitFor("worker b's ask over", () => b.r.inFlight().length === 0);
    expect([runsA, runsB]).toEqual([1, 0]);
    g.open();
    await a.r.close();
    expect(await holder(73_000_001)).toBeNull();
    b.r.ask('refresh');
    await b.r.close();
    expect(runsB).toBe(1);
  });

  it('is taken over when the worker holding it falls silent: Postgres ends its session and the lock goes', async () => {
    const g = gate();
    let runsB = 0;
    // Worker a never speaks on its lock's session (as if frozen): silent for 1 s, Postgres ends it.
    const a = worker(() => g.p, 73_000_002, { lockBeatMs: 600_000, lockIdleMs: 1000 });
    const b = worker(async () => void runsB++, 73_000_002);
    a.r.ask('refresh');
    const frozen = await waitFor('worker a holds the lock', () => holder(73_000_002));
    await waitFor(
      'worker b runs the chore',
      () => {
        b.r.ask('refresh');
        return runsB > 0;
      },
      10_000,
    );
    expect(await holder(73_000_002)).not.toBe(frozen);
    // Worker a thaws: its chore ends, its dead session is not given back to its pool, which still works.
    g.open();
    await a.r.close();
    expect(a.logged).toEqual([]);
    expect((await a.pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one).toBe(1);
    await b.r.close();
  });

  it('keeps its lock while the worker holding it speaks, however long the chore runs', async () => {
    const g = gate();
    let runsB = 0;
    const a = worker(() => g.p, 73_000_003, { lockBeatMs: 200, lockIdleMs: 1000 });
    const b = worker(async () => void runsB++, 73_000_003);
    a.r.ask('refresh');
    const first = await waitFor('worker a holds the lock', () => holder(73_000_003));
    // Postgres ends a silent session after the idle timeout, with no event: a window three of them long.
    await observeFor(3000, "three of Postgres' idle timeouts of the lock's session", async () => {
      b.r.ask('refresh');
      await waitFor("worker b's ask over", () => b.r.inFlight().length === 0);
      return (await holder(73_000_003)) === first;
    });
    expect(runsB).toBe(0);
    g.open();
    await a.r.close();
    await b.r.close();
  });
});
