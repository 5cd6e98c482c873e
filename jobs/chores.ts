// A worker's chores: each one a name, how often it runs, whether one worker at a time runs it (a
// session advisory lock), and what it does. One runner starts them all the same way: a chore never
// runs twice at once in a process, its errors are logged as `<name>.error` and never stop the others,
// and closing waits for the runs in flight before the pool they use is ended.
import type pg from 'pg';
import { errorText } from '@/lib/engine/errors';

export interface Chore {
  name: string;
  /** Milliseconds between runs; null or 0: only when asked (a notification, another chore, the start). */
  every: number | null;
  /** A session advisory lock: the workers share the chore, run by whoever takes the lock first. */
  lock?: number;
  /**
   * Asked again while it runs: 'skip' (the default) drops the ask, for chores that look at everything
   * each time; 'again' runs it once more right after, for chores asked because something new happened.
   */
  whileRunning?: 'skip' | 'again';
  /** Run once when the runner starts ('await': before start() returns). */
  atStart?: 'run' | 'await';
  /** What it does; `asked` says who asked since the run before ('timer', 'start', or what ask() was given). */
  run: (asked: ReadonlySet<string>) => Promise<void>;
}

/**
 * The locks of the chores pgherd's workers share. Postgres advisory locks are one number space per
 * database: these and the conductor's (72_842_002) and the counts' compaction's (72_842_003, in SQL)
 * are pgherd's.
 */
export const CHORE_LOCKS = {
  refresh: 72_842_001,
  discovery: 72_842_004,
  patroniFollow: 72_842_005,
  lagSample: 72_842_006,
  restoresExpire: 72_842_007,
  restoresJudge: 72_842_008,
  settings: 72_842_009,
} as const;

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
  pool: pg.Pool;
  log: (event: string, fields: object) => void;
  /** How often the session holding a chore's lock speaks while the chore runs (default 10 s). */
  lockBeatMs?: number;
  /** How long that session may stay silent before Postgres ends it, giving the lock up (default 3 beats). */
  lockIdleMs?: number;
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

  // A chore several workers share: run by whoever takes its session advisory lock first, skipped by the
  // others. The session that holds the lock says a word every few seconds while the chore runs, and
  // Postgres ends it when it has been silent for longer (idle_session_timeout): a worker frozen with the
  // lock (SIGSTOP, a host paused; its kernel still answers TCP, so no keepalive notices) gives it up
  // within that time instead of holding the chore from every worker until it thaws.
  const beatMs = deps.lockBeatMs ?? 10_000;
  const alone = async (lock: number, fn: () => Promise<void>) => {
    const client = await deps.pool.connect();
    let broken: Error | undefined;
    // Postgres ending the session is an error event on the client: kept here, never thrown at the process.
    const onError = (err: Error) => (broken ??= err);
    client.on('error', onError);
    try {
      const {
        rows: [row],
      } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [lock]);
      if (!row?.ok) return;
      // (Postgres before 14 has no idle_session_timeout: there the lock lasts as long as the session.)
      await client.query(`SET idle_session_timeout = ${String(deps.lockIdleMs ?? 3 * beatMs)}`).catch(() => {});
      const beat = setInterval(() => {
        client.query('SELECT 1').catch((err: unknown) => (broken ??= err instanceof Error ? err : new Error(String(err))));
      }, beatMs);
      try {
        await fn();
      } finally {
        clearInterval(beat);
        if (!broken)
          await client
            .query('SELECT pg_advisory_unlock($1)', [lock])
            .then(() => client.query('RESET idle_session_timeout'))
            .catch((err: unknown) => (broken = err instanceof Error ? err : new Error(String(err))));
      }
    } finally {
      client.off('error', onError);
      // A session Postgres ended (or one left with the timeout set) is not given back to the pool.
      client.release(broken);
    }
  };

  const runOnce = async (c: Chore) => {
    const s = stateOf(c.name);
    s.running = true;
    try {
      // (A loop: an 'again' chore asked while it ran goes round once more with what was asked meanwhile.)
      while (s.asked.size && !closed) {
        const asked = new Set(s.asked);
        s.asked.clear();
        await (c.lock === undefined ? c.run(asked) : alone(c.lock, () => c.run(asked)));
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
