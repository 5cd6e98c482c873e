// The chores several workers share, against pgherd's Postgres: one worker at a time, in the chore's
// turn; a holder that stops renewing (frozen in its turn) loses it to the next worker, and thawed, the
// write it was about to make is refused by the turn's fence, in the write's own transaction.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '@/db/client';
import { takeTurn, TurnLostError, type Turn } from '@/lib/engine/turns';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { observeFor, waitFor } from '@/lib/testing/wait';
import { choreRunner, type Chore } from './chores';

let t: TestDb;
const closers: (() => Promise<void>)[] = [];
beforeAll(async () => {
  t = await freshDatabase();
  await t.db.execute(sql`CREATE TABLE chore_acts (chore text, holder text, generation bigint)`);
});
afterAll(async () => {
  await Promise.all(closers.map((c) => c()));
  await ifAssigned(t)?.close();
});

function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

/** A worker's runner over its own pool, its one chore shared (in its turn). */
function worker(holder: string, run: Chore['run'], opts: { turnTtlMs?: number; turnBeatMs?: number } = {}) {
  const { db, pool } = createDb(t.url, 3);
  closers.push(() => pool.end());
  const logged: string[] = [];
  const r = choreRunner([{ name: 'refresh', every: null, turn: true, run }], {
    db,
    holder,
    log: (e, f) => logged.push(`${e} ${JSON.stringify(f)}`),
    ...opts,
  });
  return { r, logged, db };
}

/** What a chore does that acts: one row, written in a transaction fenced by its turn. */
const act = (db: Db, turn: Turn | undefined) =>
  db.transaction(async (tx) => {
    await turn?.fence(tx);
    await tx.execute(sql`INSERT INTO chore_acts VALUES (${turn?.name ?? null}, ${turn?.holder ?? null}, ${turn?.generation ?? null})`);
  });

const turnRow = async () =>
  (
    await t.db.execute<{ holder: string; generation: string; live: boolean }>(
      sql`SELECT holder, generation, expires_at > now() AS live FROM chore_turns WHERE name = 'refresh'`,
    )
  ).rows[0];
const acts = async () =>
  (await t.db.execute<{ holder: string }>(sql`SELECT holder FROM chore_acts ORDER BY generation`)).rows.map((r) => r.holder);

describe('a shared chore', () => {
  it('runs on one worker at a time: the other skips it while the first holds its turn', async () => {
    const g = gate();
    let runsA = 0;
    let runsB = 0;
    const a = worker('a', () => (runsA++, g.p));
    const b = worker('b', async () => void runsB++);
    a.r.ask('refresh');
    await waitFor('worker a holds the turn', async () => ((await turnRow())?.holder === 'a' ? true : undefined));
    b.r.ask('refresh');
    await waitFor("worker b's ask over", () => b.r.inFlight().length === 0);
    expect([runsA, runsB]).toEqual([1, 0]);
    g.open();
    await a.r.close();
    // Given back: the next ask, by anyone, takes it at once.
    expect((await turnRow())?.live).toBe(false);
    b.r.ask('refresh');
    await b.r.close();
    expect(runsB).toBe(1);
    expect((await turnRow())?.holder).toBe('b');
  });

  it('is taken over when its holder stops renewing; thawed, what the holder was about to do is refused', async () => {
    await t.db.execute(sql`TRUNCATE chore_acts`);
    const g = gate();
    // Worker a never renews (as if frozen): its 1.5 s turn expires, and b takes it with a new generation.
    const a = worker(
      'a',
      async (_, turn) => {
        await g.p;
        await act(a.db, turn);
      },
      { turnTtlMs: 1500, turnBeatMs: 600_000 },
    );
    const b = worker('b', (_, turn) => act(b.db, turn));
    a.r.ask('refresh');
    const first = await waitFor('worker a holds the turn', async () => {
      const r = await turnRow();
      return r?.holder === 'a' && r.live ? Number(r.generation) : undefined;
    });
    await waitFor(
      'worker b takes the turn and acts',
      async () => {
        b.r.ask('refresh');
        await waitFor("b's ask over", () => b.r.inFlight().length === 0);
        return (await acts()).includes('b') ? true : undefined;
      },
      10_000,
    );
    expect(Number((await turnRow())?.generation)).toBeGreaterThan(first);
    // Worker a thaws and goes on to its write: refused, nothing written, and said in its log.
    g.open();
    await a.r.close();
    expect(await acts()).toEqual(['b']);
    expect(a.logged.join('\n')).toMatch(/^refresh\.error .*stopped: the turn of refresh was lost/m);
    await b.r.close();
  });

  it("refuses a write from a holder whose clock says it missed its renewals, even before the turn's row expired", async () => {
    await t.db.execute(sql`TRUNCATE chore_acts`);
    // A 2 s turn whose holder is then silent for more than 3/4 of it: its own clock stops it, at 1.5 s.
    const turn = await takeTurn(t.db, 'local', 'a', 2000);
    if (!turn) throw new Error('no turn');
    await waitFor("the holder's own clock gives the turn up", () => (turn.held() ? undefined : true));
    const live = await t.db.execute(sql`SELECT 1 FROM chore_turns WHERE name = 'local' AND expires_at > now()`);
    expect(live.rows).toHaveLength(1);
    await expect(act(t.db, turn)).rejects.toThrow(TurnLostError);
    expect(await acts()).toEqual([]);
  });

  it('holds off a taker until the write it fences commits: the taker waits, then takes it', async () => {
    const turn = await takeTurn(t.db, 'fenced', 'a', 300);
    if (!turn) throw new Error('no turn');
    const other = createDb(t.url, 2);
    closers.push(() => other.pool.end());
    const g = gate();
    let taken: number | null | undefined;
    let asked = false;
    const inside = t.db.transaction(async (tx) => {
      await turn.fence(tx);
      // The turn's row expires while this transaction holds it: a taker must wait for the commit.
      await new Promise((r) => setTimeout(r, 600));
      asked = true;
      void takeTurn(other.db, 'fenced', 'b', 10_000).then((x) => (taken = x?.generation ?? null));
      await g.p;
      await tx.execute(sql`INSERT INTO chore_acts VALUES ('fenced', 'a', ${turn.generation})`);
    });
    await waitFor('the taker asks', () => asked || undefined);
    await observeFor(1000, 'the taker waits for the fenced transaction', () => taken === undefined);
    g.open();
    await inside;
    await waitFor('the taker takes the turn', () => (taken === undefined ? undefined : true));
    expect(taken).toBe(turn.generation + 1);
  });

  it('keeps its turn while its holder renews it, however long the chore runs', async () => {
    const g = gate();
    let runsB = 0;
    const a = worker('a', () => g.p, { turnTtlMs: 1000, turnBeatMs: 200 });
    const b = worker('b', async () => void runsB++);
    a.r.ask('refresh');
    const first = await waitFor('worker a holds the turn', async () => {
      const r = await turnRow();
      return r?.holder === 'a' && r.live ? r.generation : undefined;
    });
    await observeFor(3000, 'three TTLs of the turn', async () => {
      b.r.ask('refresh');
      await waitFor("worker b's ask over", () => b.r.inFlight().length === 0);
      return (await turnRow())?.generation === first;
    });
    expect(runsB).toBe(0);
    g.open();
    await a.r.close();
    await b.r.close();
  });
});
