// Preemption: an urgent action (a spot evacuation on its two minutes' notice, a DR failover) cannot
// wait behind whatever holds its herd (a seed that restores for an hour). Its target goes before the
// herd's queued targets (claim-targets.sql), and, while another target holds the herd's lease, asks that
// target to stop at its next safe point: `preempted_by` on the holder's row, and a NOTIFY that reaches
// the worker running it at once (its heartbeat reads the row too, should the notification be lost).
// There the holder stops before its next step, or abandons a step marked preemptible (one whose
// half-done work a cleanup registered before it undoes), runs its cleanups as after a cancel, gives the
// herd back and ends `preempted`, saying by which operation; it can be planned again from its page.
// An urgent target never preempts another urgent one: it waits its turn.
import { EventEmitter } from 'node:events';
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { PreemptedError } from '@/lib/engine/pipeline';

/** The channel a preemption is announced on: its payload, `<the target asked to stop>:<the urgent target>`. */
export const PREEMPT_CHANNEL = 'pgherd_preempt';

/**
 * Asks the target holding `herdId`'s lease, when it is not urgent, to stop for `urgentTargetId`, and tells
 * the workers. Whether the herd is held by a target that is now asked to stop (for this one, or for an
 * urgent one before it): false when the herd is free, or held by an urgent target (the caller waits as usual).
 */
export async function askPreemption(db: Db, herdId: number, urgentTargetId: number): Promise<boolean> {
  const res = await db.execute<{ id: number; asked: boolean }>(sql`
    WITH holder AS (
      SELECT h.id, h.preempted_by FROM herd_leases l JOIN operation_targets h ON h.id = l.target_id
      WHERE l.herd_id = ${herdId} AND l.expires_at > now() AND h.status = 'running' AND NOT h.urgent AND h.id <> ${urgentTargetId}),
    asked AS (
      UPDATE operation_targets x SET preempted_by = ${urgentTargetId}, updated_at = now()
      FROM holder WHERE x.id = holder.id AND holder.preempted_by IS NULL
      RETURNING x.id, pg_notify(${PREEMPT_CHANNEL}, x.id::text || ':' || ${urgentTargetId}::text))
    SELECT holder.id::float8 AS id, EXISTS (SELECT 1 FROM asked) AS asked FROM holder`);
  return res.rows.length > 0;
}

/** The targets this process runs that may be preempted, each with what stops it. */
const running = new Map<number, (by: number) => void>();

/** While a target runs here (an urgent one is never registered): `stop` is called (once) when it is asked to stop. Returns its deregistration. */
export function preemptibleHere(targetId: number, stop: (by: number) => void): () => void {
  let stopped = false;
  running.set(targetId, (by) => {
    if (stopped) return;
    stopped = true;
    stop(by);
  });
  return () => running.delete(targetId);
}

/**
 * A preemption announced (a NOTIFY's payload): stops the target if it runs here, once the database says
 * so. The notification is only a hint: any role that can connect to pgherd's database can NOTIFY, so the
 * target's row must name an urgent target that still waits or runs.
 */
export async function preemptHere(db: Db, payload: string): Promise<PreemptVerdict> {
  const m = /^(\d+):(\d+)$/.exec(payload);
  if (!m) return said({ verdict: 'refused', holder: null, by: null });
  const [holder, by] = [Number(m[1]), Number(m[2])];
  const stop = running.get(holder);
  if (!stop) return said({ verdict: 'not-here', holder, by });
  const asked = await db.execute(sql`
    SELECT 1 FROM operation_targets x JOIN operation_targets u ON u.id = x.preempted_by JOIN operations uo ON uo.id = u.operation_id
    WHERE x.id = ${holder} AND u.id = ${by} AND u.urgent AND u.status IN ('queued', 'running') AND NOT uo.cancel_requested`);
  if (!asked.rows.length) return said({ verdict: 'refused', holder, by });
  stop(by);
  return said({ verdict: 'stopped', holder, by });
}

/**
 * What a preemption's NOTIFY came to: `stopped` (the row said so), `not-here` (the target does not run
 * in this process), `refused` (a payload or a row that does not say so: a forgery, or an ask withdrawn).
 */
export interface PreemptVerdict {
  verdict: 'stopped' | 'not-here' | 'refused';
  holder: number | null;
  by: number | null;
}

/** Each verdict as it is reached ('verdict' events), for whoever watches this process (its log, a test). */
export const preemptVerdicts = new EventEmitter<{ verdict: [PreemptVerdict] }>();

function said(v: PreemptVerdict): PreemptVerdict {
  preemptVerdicts.emit('verdict', v);
  return v;
}

/**
 * Why the target stopped, in the words its operation page shows: the operation that preempted it, what
 * it is and who asked for it, and that it can be planned again.
 */
export async function preemptedError(db: Db, by: number): Promise<PreemptedError> {
  const row = (
    await db
      .execute<{ operation_id: number; label: string; action: string; requested_by_name: string }>(
        sql`SELECT o.id::float8 AS operation_id, t.label, o.action, o.requested_by_name
            FROM operation_targets t JOIN operations o ON o.id = t.operation_id WHERE t.id = ${by}`,
      )
      .catch(() => ({ rows: [] }))
  ).rows[0];
  const who = row
    ? `operation #${row.operation_id} (${row.action} of ${row.label}, asked by ${row.requested_by_name})`
    : `the urgent target ${by}`;
  return new PreemptedError(
    by,
    `preempted by ${who}: stopped at a safe point, its cleanups run; plan it again from this page once that operation is done`,
  );
}
