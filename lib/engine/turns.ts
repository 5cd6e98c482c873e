// Turns: what must happen on one worker at a time (a shared chore, the wave conductor) is done by the
// worker whose turn it is. A turn is a row of chore_turns: its holder, until when, and a generation
// that every take raises (the fencing token). The holder renews it while it works and gives it back
// when done; one that stops renewing (killed, cut off, frozen) loses it when it expires, and the next
// worker to ask takes it with a new generation.
//
// A holder frozen past its turn and thawed must not act on what it read before: every write that acts
// (an operation started, an event raised) confirms the generation in its own transaction, the turn's
// row locked FOR SHARE (`fence`), so either the write commits while the turn is still this one (a
// taker waits for the commit) or it is refused. Before that, the holder's own clock stops it: a turn
// not renewed for 3/4 of its TTL is given up locally, without asking the database (`held`), as the
// herd's lease is (lib/engine/lease.ts).
import { performance } from 'node:perf_hooks';
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { setting } from '@/lib/settings/settings';

/** How long a turn outlives its last renewal: the lease's TTL (docs/deployment.md states the relation). */
export const turnTtlMs = () => setting('PGHERD_LEASE_TTL_MS');

/** What a fenced write runs in: a transaction (or, for one statement, the database itself). */
export type Executor = Pick<Db, 'execute'>;

/** The turn is no longer this holder's: what it was about to do is not done. */
export class TurnLostError extends Error {
  constructor(name: string, why: string) {
    super(`stopped: the turn of ${name} was lost (${why}); nothing more was done, and another worker may take it`);
    this.name = 'TurnLostError';
  }
}

export interface Turn {
  readonly name: string;
  readonly holder: string;
  readonly generation: number;
  /** Still ours by this process's clock: renewed within 3/4 of the TTL (no round trip). */
  held: () => boolean;
  /** Throws TurnLostError unless the database says the turn is still this generation and unexpired. */
  confirm: () => Promise<void>;
  /**
   * In a transaction that acts: locks the turn's row until the transaction ends (a worker taking the
   * turn waits for it), or throws TurnLostError when the turn is not this one any more.
   */
  fence: (tx: Executor) => Promise<void>;
}

export interface HeldTurn extends Turn {
  /** Milliseconds since it was last renewed (or taken). */
  age: () => number;
  /** Extends the turn; false (and held() false from then on) when it was lost. */
  renew: () => Promise<boolean>;
  /** Gives the turn back (a later take by anyone succeeds at once). */
  release: () => Promise<void>;
}

/** Takes the turn when it is free, expired, or already this holder's; null when another holds it. */
export async function takeTurn(db: Db, name: string, holder: string, ttlMs = turnTtlMs()): Promise<HeldTurn | null> {
  const asked = performance.now();
  const { rows } = await db.execute<{ generation: string }>(sql`
    INSERT INTO chore_turns (name, holder, generation, expires_at)
    VALUES (${name}, ${holder}, 1, now() + ${ttlMs} * interval '1 millisecond')
    ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, generation = chore_turns.generation + 1, expires_at = EXCLUDED.expires_at
      WHERE chore_turns.expires_at <= now() OR chore_turns.holder = EXCLUDED.holder
    RETURNING generation`);
  const row = rows[0];
  if (!row) return null;
  const generation = Number(row.generation);
  // Counted from when the take was asked: the database's clock started the TTL no earlier.
  let renewedAt = asked;
  let lost = false;
  const held = () => !lost && performance.now() - renewedAt < 0.75 * ttlMs;
  const turn: HeldTurn = {
    name,
    holder,
    generation,
    held,
    age: () => performance.now() - renewedAt,
    async confirm() {
      if (!held()) throw new TurnLostError(name, 'not renewed in time');
      const r = await db.execute(sql`SELECT 1 FROM chore_turns WHERE name = ${name} AND generation = ${generation} AND expires_at > now()`);
      if (!r.rows.length) {
        lost = true;
        throw new TurnLostError(name, 'it expired or was taken over');
      }
    },
    async fence(tx) {
      if (!held()) throw new TurnLostError(name, 'not renewed in time');
      const r = await tx.execute(
        sql`SELECT 1 FROM chore_turns WHERE name = ${name} AND generation = ${generation} AND expires_at > now() FOR SHARE`,
      );
      if (!r.rows.length) {
        lost = true;
        throw new TurnLostError(name, 'it expired or was taken over');
      }
    },
    async renew() {
      if (lost) return false;
      const at = performance.now();
      const r = await db.execute(sql`
        UPDATE chore_turns SET expires_at = now() + ${ttlMs} * interval '1 millisecond'
        WHERE name = ${name} AND generation = ${generation} AND expires_at > now() RETURNING 1`);
      if (r.rows.length) renewedAt = at;
      else lost = true;
      return !lost;
    },
    async release() {
      lost = true;
      await db.execute(sql`UPDATE chore_turns SET expires_at = now() WHERE name = ${name} AND generation = ${generation}`);
    },
  };
  return turn;
}

/**
 * Runs `fn` in the turn when this holder can take it (false when another holds it), renewing it every
 * `beatMs` while `fn` runs and giving it back after. A renewal that fails leaves `fn` to find out at its
 * next fence or confirm; the renewals' errors go to `log`.
 */
export async function inTurn(
  db: Db,
  name: string,
  holder: string,
  fn: (turn: Turn) => Promise<void>,
  opts: { ttlMs?: number; beatMs?: number; log?: (event: string, fields: object) => void } = {},
): Promise<boolean> {
  const ttlMs = opts.ttlMs ?? turnTtlMs();
  const turn = await takeTurn(db, name, holder, ttlMs);
  if (!turn) return false;
  // One renewal at a time: a database slow to answer (failing over) must not pile them up.
  let renewing = false;
  const beat = setInterval(
    () => {
      if (renewing) return;
      renewing = true;
      turn
        .renew()
        .catch((err: unknown) => opts.log?.('turn.renew_error', { name, error: err instanceof Error ? err.message : String(err) }))
        .finally(() => (renewing = false));
    },
    opts.beatMs ?? Math.max(50, Math.floor(ttlMs / 4)),
  );
  try {
    await fn(turn);
  } finally {
    clearInterval(beat);
    // A turn already lost is not given back (the row may be another's); a release that fails expires.
    if (turn.held()) await turn.release().catch(() => {});
  }
  return true;
}
