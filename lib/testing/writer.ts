// A client committing numbered rows one after another, recording every acknowledged commit, every
// error and the longest gap between two acknowledgements: the switchover test's and benchmark's load.
import { performance } from 'node:perf_hooks';
import pg from 'pg';

export interface Writer {
  acked: number[];
  errors: string[];
  /** Longest time between two acknowledged commits since the start (or the last resetGap). */
  readonly maxGapMs: number;
  /** Longest time one statement waited for any answer, a commit or an error (PgBouncer paused, say). */
  readonly maxWaitMs: number;
  resetGap(): void;
  stop(): Promise<void>;
}

/** What both writers keep: the acknowledged numbers, the errors, the longest gap; and their handle. */
function tally() {
  const acked: number[] = [];
  const errors: string[] = [];
  let last = performance.now();
  let maxGapMs = 0;
  let maxWaitMs = 0;
  const state = { stopping: false };
  return {
    acked,
    errors,
    state,
    /** Runs one statement, timing how long it waited for its answer. */
    async timed<T>(q: Promise<T>): Promise<T> {
      const t0 = performance.now();
      try {
        return await q;
      } finally {
        maxWaitMs = Math.max(maxWaitMs, performance.now() - t0);
      }
    },
    ack(n: number) {
      acked.push(n);
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
    },
    handle(done: Promise<void>): Writer {
      return {
        acked,
        errors,
        get maxGapMs() {
          return maxGapMs;
        },
        get maxWaitMs() {
          return maxWaitMs;
        },
        resetGap: () => {
          maxGapMs = 0;
          last = performance.now();
        },
        stop: async () => {
          state.stopping = true;
          await done;
        },
      };
    },
  };
}

/** Writes into `table` (n int), which must exist; `everyMs`: a commit that often at most (a paced client), else back to back. */
export function startWriter(dsn: string, table = 'writes', opts: { everyMs?: number } = {}): Writer {
  const t = tally();
  const { errors, state } = t;
  const c = new pg.Client({ connectionString: dsn });
  c.on('error', (e) => errors.push(`connection: ${e.message}`));
  const writeUntilStopped = async () => {
    await c.connect();
    for (let n = 1; !state.stopping; n++) {
      try {
        const t0 = performance.now();
        await t.timed(c.query(`INSERT INTO ${table} (n) VALUES ($1)`, [n]));
        t.ack(n);
        const rest = (opts.everyMs ?? 0) - (performance.now() - t0);
        if (rest > 0) await new Promise((r) => setTimeout(r, rest));
      } catch (e) {
        errors.push((e as Error).message);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await c.end();
  };
  return t.handle(writeUntilStopped());
}

/**
 * Writes through a name, as a client with no DNS cache and a retry loop does: each connection goes
 * where `dsnNow()` says when it is made (the write name resolved then); any error closes it, and the
 * next write opens a new one. Only commits the server acknowledged count.
 */
export function startReconnectingWriter(dsnNow: () => Promise<string>, table = 'writes'): Writer {
  const t = tally();
  const { errors, state } = t;
  const writeUntilStopped = async () => {
    let c: pg.Client | null = null;
    for (let n = 1; !state.stopping; n++) {
      try {
        if (!c) {
          const fresh = new pg.Client({ connectionString: await dsnNow(), connectionTimeoutMillis: 2000 });
          fresh.on('error', () => {});
          c = fresh;
          await fresh.connect();
        }
        await t.timed(c.query(`INSERT INTO ${table} (n) VALUES ($1)`, [n]));
        t.ack(n);
      } catch (e) {
        errors.push((e as Error).message);
        await c?.end().catch(() => {});
        c = null;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await c?.end().catch(() => {});
  };
  return t.handle(writeUntilStopped());
}
