import { describe, expect, it, vi } from 'vitest';
import { createDb } from '@/db/client';
import { choreRunner, type Chore } from './chores';

/** A promise and the hand that settles it: a chore that runs until the test lets it finish. */
function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

// Chores without a turn never touch the database (this one has no server behind it).
const { db: noDb } = createDb('postgres://nobody@127.0.0.1:1/none', 1);

function runner(chores: Chore[]) {
  const logged: string[] = [];
  const r = choreRunner(chores, { db: noDb, holder: 'unit', log: (e, f) => logged.push(`${e} ${JSON.stringify(f)}`) });
  return { r, logged };
}

describe('a chore', () => {
  it('never runs twice at once: asked while it runs, a skip chore drops the ask', async () => {
    const g = gate();
    let runs = 0;
    const { r } = runner([{ name: 'refresh', every: null, run: () => (runs++, g.p) }]);
    r.ask('refresh');
    r.ask('refresh');
    r.ask('refresh');
    expect(runs).toBe(1);
    expect(r.inFlight()).toEqual(['refresh']);
    g.open();
    await r.close();
    expect(runs).toBe(1);
  });

  it('asked while it runs, an again chore runs once more right after, with what was asked meanwhile', async () => {
    const gates = [gate(), gate()];
    const seen: string[][] = [];
    const { r } = runner([
      {
        name: 'notifications',
        every: null,
        whileRunning: 'again',
        run: (asked) => (seen.push([...asked].sort()), gates[seen.length - 1]?.p ?? Promise.resolve()),
      },
    ]);
    r.ask('notifications', 'first');
    r.ask('notifications', 'notify');
    r.ask('notifications', 'timer');
    expect(seen).toEqual([['first']]);
    gates[1]!.open();
    gates[0]!.open();
    // The second run starts once the first ends (a closing runner starts no more).
    await vi.waitFor(() => expect(r.inFlight()).toEqual([]));
    await r.close();
    expect(seen).toEqual([['first'], ['notify', 'timer']]);
  });

  it('that fails is logged as <name>.error and runs again when next asked', async () => {
    let runs = 0;
    const { r, logged } = runner([
      {
        name: 'rules.runs',
        every: null,
        run: () => (++runs === 1 ? Promise.reject(new Error('database is starting up')) : Promise.resolve()),
      },
    ]);
    r.ask('rules.runs');
    await vi.waitFor(() => expect(r.inFlight()).toEqual([]));
    expect(logged).toEqual([expect.stringMatching(/^rules\.runs\.error .*database is starting up/)]);
    r.ask('rules.runs');
    await r.close();
    expect(runs).toBe(2);
    expect(logged).toHaveLength(1);
  });

  it('runs on its clock from start(), at start when asked to, and not at all once closed', async () => {
    const seen: string[] = [];
    const ticked = gate();
    const { r } = runner([
      {
        name: 'tick',
        every: 5,
        run: async (asked) => {
          seen.push(`tick:${[...asked].join()}`);
          ticked.open();
        },
      },
      { name: 'first', every: null, atStart: 'await', run: async () => void seen.push('first') },
    ]);
    await r.start();
    expect(seen).toEqual(['first']);
    await ticked.p;
    await r.close();
    const n = seen.length;
    expect(seen.slice(1).every((s) => s === 'tick:timer')).toBe(true);
    r.ask('tick');
    r.errand('late', async () => void seen.push('late'));
    expect(seen).toHaveLength(n);
  });

  it('once stopped starts nothing more (no clock, no ask, no errand) while what runs goes on to its end', async () => {
    const g = gate();
    const seen: string[] = [];
    const { r } = runner([
      { name: 'long', every: null, run: () => g.p.then(() => void seen.push('long')) },
      { name: 'tick', every: 5, run: async () => void seen.push('tick') },
    ]);
    await r.start();
    r.ask('long');
    r.stop();
    const n = seen.length;
    r.ask('tick');
    r.errand('late', async () => void seen.push('late'));
    expect(r.inFlight()).toEqual(['long']);
    g.open();
    await r.close();
    expect(seen.slice(n)).toEqual(['long']);
  });

  it('close waits for the runs and errands in flight', async () => {
    const g = gate();
    const done: string[] = [];
    const { r } = runner([{ name: 'slow', every: null, run: () => g.p.then(() => void done.push('slow')) }]);
    r.ask('slow');
    r.errand('rules.run', () => g.p.then(() => done.push('errand')));
    let closed = false;
    const closing = r.close().then(() => (closed = true));
    await Promise.resolve();
    expect(closed).toBe(false);
    g.open();
    await closing;
    expect(done.sort()).toEqual(['errand', 'slow']);
  });

  it('is refused when two share a name or when asked for by a name no chore has', () => {
    expect(() =>
      runner([
        { name: 'a', every: null, run: async () => {} },
        { name: 'a', every: 1, run: async () => {} },
      ]),
    ).toThrow('two chores share a name');
    expect(() => runner([]).r.ask('nope')).toThrow('no chore named nope');
  });
});
