// The refresh, shared by every worker. Each herd carries when its members are next due to be observed
// (herds.observe_due_at); a worker claims due herds in batches, moving that time on by one interval as it
// claims them, so no two workers observe a herd in the same interval, and a fleet larger than one worker
// can read in an interval is read by as many as run. Each worker keeps one session an instance it
// observes (TLS and SCRAM paid once, not every interval), and first claims the herds it claimed last
// (its sessions are there); another worker's herds it takes only once they are overdue by half an
// interval (that worker is gone, or behind). Herds are claimed whole: a pass reads a replica's lag
// against its primary as seen in the same pass, and judges a herd by all its members.
//
// A kept session answers while its postmaster is frozen: the refresh's picture is the inventory's,
// never a fence's or a liveness probe's, which open a connection of their own (observe(), postmasterAnswers).
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { observationPool, type Observed } from '@/lib/fleet/observe';
import { heldHerds, recordPass } from '@/lib/fleet/refresher';
import { setting } from '@/lib/settings/settings';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

/** The refresh's kept sessions, as pg_stat_activity names them. */
export const REFRESH_APPLICATION = 'pgherd-refresh';

export interface ShareOptions {
  /** The claiming worker (workers_alive's holder). */
  holder: string;
  intervalMs: number;
  /** Observations at once (default 64). */
  concurrency?: number;
  /** Herds claimed at a time (default 256). */
  batchHerds?: number;
  timeoutMs?: number;
  /** Sessions kept at most (default PGHERD_REFRESH_KEPT_SESSIONS). */
  keptAtMost?: number;
}

export interface RoundSummary {
  herds: number;
  observed: number;
  reachable: number;
  /** Connections opened in the round (kept or not): 0 once every session is open. */
  opened: number;
  /** Sessions kept after the round. */
  kept: number;
  ms: number;
}

/** What a round observed, herd by herd, with the database's time of each claim (for tests and the bench). */
export interface Claim {
  herdId: number;
  claimedAt: Date;
}

/**
 * Claims up to `limit` due herds for `holder`, oldest due first: its own and those never claimed as soon
 * as they are due, another worker's once overdue by half an interval. Each claimed herd is due again
 * one interval from now.
 */
export async function claimDueHerds(db: Db, holder: string, intervalMs: number, limit: number): Promise<Claim[]> {
  const r = await db.execute<{ id: number; at: Date }>(
    withParams(sqlFile('lib/fleet/claim-due-herds.sql'), [holder, intervalMs / 2000, limit, intervalMs / 1000]),
  );
  return r.rows.map((x) => ({ herdId: x.id, claimedAt: new Date(x.at) }));
}

/** Batches a round has claimed and not yet written, at most. */
const MAX_BATCHES_IN_FLIGHT = 32;

/** At most `n` calls of run() at once; the others wait their turn, in order. */
function limiter(n: number) {
  let active = 0;
  const queue: (() => void)[] = [];
  return {
    waiting: () => queue.length,
    async run<T>(fn: () => Promise<T>): Promise<T> {
      // A slot ending is handed to the next in line as it is (never freed and taken by a newcomer meanwhile).
      if (active >= n) await new Promise<void>((r) => queue.push(r));
      else active++;
      try {
        return await fn();
      } finally {
        const next = queue.shift();
        if (next) next();
        else active--;
      }
    },
  };
}

/** One worker's share of the refresh: `round()` observes every herd due now that it may claim. */
export function refreshShare(db: Db, opts: ShareOptions) {
  const pool = observationPool({
    probe: false,
    pending: true,
    keptAtMost: opts.keptAtMost ?? setting('PGHERD_REFRESH_KEPT_SESSIONS'),
    applicationName: REFRESH_APPLICATION,
    risksEveryMs: () => setting('PGHERD_RISKS_READ_MS'),
  });
  const batch = opts.batchHerds ?? 256;
  const slots = limiter(opts.concurrency ?? 64);
  const claims: Claim[] = [];
  let stopped = false;
  return {
    /** The claims made since the last call (each herd once an interval, whichever worker made it). */
    takeClaims: () => claims.splice(0),
    async round(): Promise<RoundSummary> {
      const t0 = Date.now();
      const opened0 = pool.opened();
      let herds = 0;
      let observed = 0;
      let reachable = 0;
      // Batches overlap: each is written as soon as its own members are read, and the next is claimed as
      // soon as no observation waits for a slot. A member that does not answer (a dead host, up to the
      // timeout) holds one slot and its own batch's write, never the rest of the fleet's.
      const inFlight = new Set<Promise<void>>();
      // Batches claimed whose observations are not yet waiting for a slot (their members are being read):
      // the next claim waits for them, or a worker whose sessions are all new (a cold start: a TLS
      // handshake and SCRAM each) would claim herds faster than it can observe them, they would fall due
      // again before their first observation, and other workers would take them, opening sessions again.
      let preparing = 0;
      const one = async (claimed: Claim[]) => {
        let queued = false;
        const nowQueued = () => {
          if (!queued) preparing--;
          queued = true;
        };
        try {
          const heldBefore = await heldHerds(db);
          const refs = await loadInstanceRefs(db, [], { herdIds: claimed.map((c) => c.herdId) });
          // Each look is in line for a slot as it is made (slots.run queues synchronously).
          const looks = refs.map(async (r) => ({ r, o: await slots.run(() => pool.look(r, opts.timeoutMs ?? 3000)) }));
          nowQueued();
          const seen: { r: InstanceRef; o: Observed }[] = await Promise.all(looks);
          // Written only while the claims are still this worker's (a worker frozen past them, then thawed,
          // must not write its old readings over the newer ones another worker made meanwhile).
          await recordPass(db, seen, heldBefore, { holder: opts.holder });
          observed += seen.length;
          reachable += seen.filter((x) => x.o.reachable).length;
        } finally {
          nowQueued();
        }
      };
      // (Set by a batch that failed: the round claims nothing more and says why.)
      const failure: { err: Error | null } = { err: null };
      // A round ends once nothing is due, or after an interval (a worker that cannot keep up goes on in the
      // next round: it logs, sweeps, and stops when told), or when the worker stops.
      while (!stopped && failure.err === null && Date.now() - t0 < opts.intervalMs) {
        if (slots.waiting() > 0 || preparing > 0 || inFlight.size >= MAX_BATCHES_IN_FLIGHT) {
          await Promise.race([...inFlight, new Promise((r) => setTimeout(r, 5))]);
          continue;
        }
        const claimed = await claimDueHerds(db, opts.holder, opts.intervalMs, batch);
        if (!claimed.length) break;
        claims.push(...claimed);
        herds += claimed.length;
        preparing++;
        const p: Promise<void> = one(claimed)
          .catch((err: unknown) => {
            failure.err ??= err instanceof Error ? err : new Error(String(err));
          })
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (claimed.length < batch) break;
      }
      await Promise.all(inFlight);
      // A session unused for two intervals: its herd went to another worker, or is gone.
      pool.sweep(2 * opts.intervalMs + 5000);
      if (failure.err) throw failure.err;
      return { herds, observed, reachable, opened: pool.opened() - opened0, kept: pool.size(), ms: Date.now() - t0 };
    },
    keptSessions: () => pool.size(),
    /** Reads every member's risks in the next round, whatever the interval (see ObservationPool). */
    readRisksNow: () => pool.readRisksNow(),
    /** Claims nothing more: a round in progress ends after the batch it observes. */
    stop: () => {
      stopped = true;
    },
    close: () => {
      stopped = true;
      pool.close();
    },
  };
}

export type RefreshShare = ReturnType<typeof refreshShare>;
