// The herd lease: one mutating target per herd at a time, granted in target order; a holder that
// stops heartbeating loses it after the TTL. Each grant has a generation (a fencing token): the
// worker confirms, before each step, that the lease is still that grant and unexpired, and stops
// when it is not, so a worker paused past its TTL (or cut off from the database) never runs another
// step on a herd that may by then be someone else's.
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { and, eq } from 'drizzle-orm';
import { isDatabaseUnavailable, prepared, type Db } from '@/db/client';
import { coalescer, type Coalescer } from '@/lib/engine/coalesce';
import { herdLeases } from '@/db/schema';
import { type RefRow } from '@/lib/fleet/instance-ref';
import { CancelledError, PreemptedError } from '@/lib/engine/pipeline';
import { setting } from '@/lib/settings/settings';
import type { ConfirmedStep } from '@/lib/engine/plan-identity';

/** How long a lease outlives its last heartbeat (read each time, so tests can shorten it). */
export const leaseTtlMs = () => setting('PGHERD_LEASE_TTL_MS');

export interface ClaimedTarget {
  id: number;
  status: string;
  instance_id: number | null;
  herd_id: number | null;
  operation_id: number;
  action: string;
  /** The parameters confirmed for the operation. */
  action_params: Record<string, unknown> | null;
  /**
   * The steps confirmed for this target, what each does and its words (actions that run only what was
   * confirmed); words only in rows written before steps carried what they do.
   */
  confirmed_steps: (ConfirmedStep | string)[] | null;
  cancel_requested: boolean;
  /** An urgent action's target: it goes first and preempts the herd's holder (lib/engine/preempt.ts). */
  urgent: boolean;
  /** Held back: its wave has not started, or its operation is paused (its job ends; a release enqueues it again). */
  held: boolean;
  paused: boolean;
  site: string;
  environment_id: number | null;
  environment_cap: number | null;
  site_cap: number | null;
  requested_by: number | null;
  requested_by_name: string;
  requested_by_system: boolean;
  /** The attempt this run is, when the lease was granted; null when the target must wait (or not run). */
  attempts: number | null;
  /** The lease's generation (the fencing token), when it was granted. */
  generation: number | null;
  /**
   * An instance target that was granted its lease: every member of the instance's herd as the
   * inventory is now, read by the claim itself (a round trip less a target). Null otherwise, and when
   * the instance is gone.
   */
  members: RefRow[] | null;
}

// A lease is granted only to a queued target (a running one is never claimed again, by anyone: a job
// delivered twice must not run its steps twice) that is not held back (a later wave, a paused
// operation), when the herd's lease is free or expired, no earlier target of the herd is still open
// (held ones do not count: a paused operation must not stop another's targets on its herds), the
// operation is not being cancelled, and the caps of the target's environment and site leave room.
// A capped target is granted only by a claim made under the caps' locks ($4, see claimTarget): two
// claims counting the same site at once would both see room for one.
// Several targets are claimed in one statement (what a worker's slots ask for at once), each found
// by its id (a list of ids, never a join the planner could answer by hashing a whole table): of two
// targets of one herd, the later one sees the earlier one open and is not granted, so no lease is
// written twice. The rows a claim locks are taken in one order by every claim (the leases by herd,
// the operations started by id), so two claims over the same herds or operations wait for each
// other, never on each other.
export const CLAIM = {
  name: 'pgherd_claim_targets_v11',
  text: sqlFile('lib/engine/claim-targets.sql'),
};

/** Advisory lock keys of the caps (one space per kind, so an environment id never meets a site's hash). */
const CAP_LOCKS = {
  name: 'pgherd_cap_locks',
  text: `SELECT pg_advisory_xact_lock(72842100, $1::int), pg_advisory_xact_lock(72842101, hashtext($2::text))`,
};

// A pause (or a failure budget) that holds the target after this statement's snapshot was taken but
// before its UPDATE reaches the row: the UPDATE re-reads the row, sees it held and starts nothing
// ("AND NOT held" above). The lease granted in the same statement is then given back by the caller
// (executeTarget: attempts null with a generation).

/**
 * One round trip, shared with the other claims this process makes at the same moment (claimMany):
 * reads the target and its operation, takes the herd's lease for it when it may run, and then marks
 * it running, its operation started, and reads its herd (an instance target's). Null when the target
 * does not exist. A target under a cap is claimed again, alone, in a transaction holding its
 * environment's and site's locks, so that no two workers fill the last place at once.
 */
export async function claimTarget(db: Db, targetId: number, holder: string): Promise<ClaimedTarget | null> {
  let claim = claimers.get(db);
  if (!claim) {
    claim = coalescer((items: { id: number; holder: string }[]) => claimMany(db, items), {
      key: (c) => c.holder,
      whole: isDatabaseUnavailable,
    });
    claimers.set(db, claim);
  }
  const row = await claim({ id: targetId, holder });
  if (!row || row.attempts !== null || !mayClaimUnderCaps(row)) return row;
  const client = await db.$client.connect();
  try {
    await client.query('BEGIN');
    await client.query({
      name: CAP_LOCKS.name,
      text: CAP_LOCKS.text,
      values: [row.environment_cap === null ? 0 : row.environment_id, row.site_cap === null ? '' : row.site],
    });
    const res = await client.query<ClaimedTarget>({ name: CLAIM.name, text: CLAIM.text, values: [[targetId], holder, leaseTtlMs(), true] });
    await client.query('COMMIT');
    return res.rows[0] ?? null;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

const claimers = new WeakMap<Db, Coalescer<{ id: number; holder: string }, ClaimedTarget | null>>();

/**
 * The claims one holder asks for at once, in one statement: a row each, or null. A target asked for
 * twice in one batch (its job delivered twice) is granted once: the second gets the row without the
 * grant, as if it had asked a moment later.
 */
export async function claimMany(db: Db, items: { id: number; holder: string }[]): Promise<(ClaimedTarget | null)[]> {
  const ids = [...new Set(items.map((c) => c.id))];
  const rows = await prepared<ClaimedTarget>(db, CLAIM.name, CLAIM.text, [ids, items[0]?.holder, leaseTtlMs(), false]);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const answered = new Set<number>();
  return items.map((c) => {
    const r = byId.get(c.id) ?? null;
    if (!r || !answered.has(c.id)) {
      answered.add(c.id);
      return r;
    }
    return { ...r, attempts: null, generation: null, members: null };
  });
}

const mayClaimUnderCaps = (t: ClaimedTarget) =>
  t.status === 'queued' && !t.held && !t.paused && !t.cancel_requested && (t.environment_cap !== null || t.site_cap !== null);

/**
 * Confirms and extends the grant: false when the lease is no longer this grant (or has expired); else
 * held, with the urgent target that asked this one to stop, if one did (lib/engine/preempt.ts).
 */
export async function heartbeat(
  db: Db,
  herdId: number,
  targetId: number,
  generation: number,
): Promise<false | { preemptedBy: number | null }> {
  const rows = await prepared<{ p: number | null }>(db, RENEW.name, RENEW.text, [herdId, targetId, generation, leaseTtlMs()]);
  return rows.length === 1 ? { preemptedBy: rows[0]?.p ?? null } : false;
}

/**
 * The urgent target that asked target $2 to stop, while it still waits or runs: one cancelled (or ended)
 * meanwhile asks nothing any more, and the holder goes on.
 */
const PREEMPTED_BY = `SELECT u.id::float8 FROM operation_targets x JOIN operation_targets u ON u.id = x.preempted_by
                      JOIN operations uo ON uo.id = u.operation_id
                      WHERE x.id = $2 AND NOT x.urgent AND u.urgent AND u.status IN ('queued', 'running') AND NOT uo.cancel_requested`;

const RENEW = {
  name: 'pgherd_renew_lease_v3',
  text: `UPDATE herd_leases SET expires_at = now() + $4 * interval '1 millisecond'
         WHERE herd_id = $1 AND target_id = $2 AND generation = $3 AND expires_at > now()
         RETURNING (${PREEMPTED_BY}) AS p`,
};

/** The herd's lease is no longer this target's grant: its steps must stop. */
export class LeaseLostError extends Error {
  /**
   * `mayBeTaken`: false when the lease was given up unconfirmed (pgherd's database did not answer),
   * so no one else may take the herd before it expires; true when it was found gone or taken over.
   */
  constructor(
    why: string,
    readonly mayBeTaken = true,
  ) {
    super(`stopped: the herd's lease was lost (${why}); no further step ran, and another worker may take the herd`);
    this.name = 'LeaseLostError';
  }
}

// Between two steps, one round trip: renews the grant (only if it is still ours and unexpired) and
// reads whether the operation is being cancelled, or the target preempted.
const GATE = {
  name: 'pgherd_step_gate_v3',
  text: `WITH l AS (UPDATE herd_leases SET expires_at = now() + $4 * interval '1 millisecond'
                    WHERE herd_id = $1 AND target_id = $2 AND generation = $3 AND expires_at > now() RETURNING 1)
         SELECT (SELECT cancel_requested FROM operations WHERE id = $5) AS c, EXISTS (SELECT 1 FROM l) AS held,
                (${PREEMPTED_BY}) AS p`,
};

/** The lease could not be confirmed (pgherd's database did not answer): not known to be lost, nor to be held. */
export class LeaseUnconfirmedError extends LeaseLostError {
  constructor(readonly reason: unknown) {
    super(`it could not be confirmed: ${reason instanceof Error ? reason.message : String(reason)}`, false);
    this.name = 'LeaseUnconfirmedError';
  }
}

/** What stops the next step: a cancel, a preemption, or a lease that is not this grant any more (or cannot be confirmed). */
export async function gate(
  db: Db,
  lease: { herdId: number; targetId: number; generation: number; operationId: number },
): Promise<Error | null> {
  let row: { c: boolean; held: boolean; p: number | null } | undefined;
  try {
    [row] = await prepared<{ c: boolean; held: boolean; p: number | null }>(db, GATE.name, GATE.text, [
      lease.herdId,
      lease.targetId,
      lease.generation,
      leaseTtlMs(),
      lease.operationId,
    ]);
  } catch (err) {
    return new LeaseUnconfirmedError(err);
  }
  if (!row?.held) return new LeaseLostError('it expired or was taken over');
  if (row.c) return new CancelledError();
  return row.p === null ? null : new PreemptedError(row.p);
}

export async function releaseLease(db: Db, herdId: number, targetId: number): Promise<void> {
  await db.delete(herdLeases).where(and(eq(herdLeases.herdId, herdId), eq(herdLeases.targetId, targetId)));
}
