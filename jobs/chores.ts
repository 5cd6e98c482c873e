// A worker's chores: each one a name, how often it runs, whether one worker at a time runs it (in its
// turn, lib/engine/turns.ts), and what it does. One runner starts them all the same way: a chore never
// runs twice at once in a process, its errors are logged as `<name>.error` and never stop the others,
// and closing waits for the runs in flight before the pool they use is ended.
import type { Db } from '@/db/client';
import { errorText } from '@/lib/engine/errors';
import { inTurn, type Turn } from '@/lib/engine/turns';

export interface Chore {
  name: string;
  /** What it does, in a line: docs/architecture.md's table of the worker's chores is made of these (a test's own chore needs none). */
  says?: string;
  /** Milliseconds between runs; null or 0: only when asked (a notification, another chore, the start). */
  every: number | null;
  /** How often, in words, where a setting decides it (its name) or the number alone would mislead. */
  everySays?: string;
  /**
   * The workers share the chore: it runs on one at a time, in its turn (a row of chore_turns named as
   * the chore), and is given the turn to fence what it writes that acts.
   */
  turn?: true;
  /**
   * Asked again while it runs: 'skip' (the default) drops the ask, for chores that look at everything
   * each time; 'again' runs it once more right after, for chores asked because something new happened.
   */
  whileRunning?: 'skip' | 'again';
  /** Run once when the runner starts ('await': before start() returns). */
  atStart?: 'run' | 'await';
  /** What it does; `asked` says who asked since the run before ('timer', 'start', or what ask() was given). */
  run: (asked: ReadonlySet<string>, turn?: Turn) => Promise<void>;
}

export interface ChoreRunner {
  /** Runs the chore now (or once more after the run in flight, for an 'again' chore). */
  ask: (name: string, why?: string) => void;
  /** Starts the timers and the chores that run at start. */
  start: () => Promise<void>;
  /** Runs a one-off errand (a run's job, say) that close() waits for like a chore; its error is logged as `<name>.error`. */
  errand: (name: string, fn: () => Promise<unknown>) => void;
  /** What runs now, by name (for a close that waits to say what it waits for). */
  inFlight: () => string[];
  /** Starts nothing more: the clocks stop, asks and errands are dropped (what runs goes on). */
  stop: () => void;
  /** Stops, then waits for the runs in flight. */
  close: () => Promise<void>;
}

export interface ChoreDeps {
  db: Db;
  /** This worker, as its turns name it. */
  holder: string;
  log: (event: string, fields: object) => void;
  /** A turn's TTL (default PGHERD_LEASE_TTL_MS) and how often it is renewed while its chore runs (a quarter of it). */
  turnTtlMs?: number;
  turnBeatMs?: number;
}

export function choreRunner(chores: Chore[], deps: ChoreDeps): ChoreRunner {
  const byName = new Map(chores.map((c) => [c.name, c]));
  if (byName.size !== chores.length) throw new Error('two chores share a name');
  const states = new Map(chores.map((c) => [c.name, { running: false, asked: new Set<string>() }]));
  const stateOf = (name: string) => {
    const s = states.get(name);
    if (!s) throw new Error(`no chore named ${name}`);
    return s;
  };
  const flights = new Map<Promise<void>, string>();
  const timers: NodeJS.Timeout[] = [];
  let closed = false;
  const stop = () => {
    closed = true;
    for (const t of timers) clearInterval(t);
  };

  // A chore several workers share: run in its turn, by whoever takes it first, skipped by the others.
  // A worker frozen in its turn loses it when it expires; thawed, its chore's next fence refuses it.
  const inItsTurn = async (c: Chore, asked: ReadonlySet<string>) => {
    await inTurn(deps.db, c.name, deps.holder, (turn) => c.run(asked, turn), {
      ttlMs: deps.turnTtlMs,
      beatMs: deps.turnBeatMs,
      log: deps.log,
    });
  };

  const runOnce = async (c: Chore) => {
    const s = stateOf(c.name);
    s.running = true;
    try {
      // (A loop: an 'again' chore asked while it ran goes round once more with what was asked meanwhile.)
      while (s.asked.size && !closed) {
        const asked = new Set(s.asked);
        s.asked.clear();
        await (c.turn ? inItsTurn(c, asked) : c.run(asked));
      }
    } finally {
      s.running = false;
      s.asked.clear();
    }
  };

  const track = (name: string, work: Promise<unknown>): Promise<void> => {
    const p: Promise<void> = work
      .then(() => {})
      .catch((err: unknown) => deps.log(`${name}.error`, { error: errorText(err) }))
      .finally(() => flights.delete(p));
    flights.set(p, name);
    return p;
  };

  const ask = (name: string, why = 'asked'): Promise<void> | undefined => {
    const c = byName.get(name);
    if (!c) throw new Error(`no chore named ${name}`);
    const s = stateOf(name);
    if (closed) return;
    if (s.running) {
      if (c.whileRunning === 'again') s.asked.add(why);
      return;
    }
    s.asked.add(why);
    return track(name, runOnce(c));
  };

  return {
    ask: (name, why) => void ask(name, why),
    errand: (name, fn) => {
      if (!closed) void track(name, fn());
    },
    async start() {
      for (const c of chores) if (c.every) timers.push(setInterval(() => void ask(c.name, 'timer'), c.every));
      for (const c of chores.filter((x) => x.atStart === 'await')) await ask(c.name, 'start');
      for (const c of chores.filter((x) => x.atStart === 'run')) void ask(c.name, 'start');
    },
    inFlight: () => [...flights.values()],
    stop,
    async close() {
      stop();
      await Promise.all(flights.keys());
    },
  };
}
