// The switchover capability's contract: what an action asks (its parameters), which pair it moves
// between, and what its steps tell each other, whichever driver switches the herd over.
import { z } from 'zod';
import { idText, MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { chooseCandidate } from '@/lib/fleet/candidates';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import type { Session } from '@/lib/fleet/observe';
import { PAUSE_BUDGET_LIMITS_S } from '@/lib/actions/steps/pooler-resume';
import type { RejoinState } from '@/lib/actions/steps/topology-steps';
import type { PatroniSwitchState } from './patroni/switch';

export const DEFAULT_MAX_LAG_BYTES = 16 * 1024 * 1024;

export const switchoverParams = z
  .object({
    /** The replica to promote; left out: the most up-to-date running replica. */
    candidateInstanceId: idText('candidateInstanceId', MAX_BIG_ID).optional(),
    /** Refuse when the candidate's replay is further behind than this (default 16 MB). */
    maxLagBytes: z.coerce
      .number()
      .int()
      .min(0)
      .max(2 ** 50)
      .optional(),
    /** How long the candidate may take to replay the old primary's last WAL before the switchover is undone (ms, default 30 s). */
    catchUpDeadlineMs: z.coerce.number().int().min(100).max(3_600_000).optional(),
    /** How long to wait for the candidate to leave recovery once pg_promote is sent (ms, default 60 s). */
    promoteDeadlineMs: z.coerce.number().int().min(1).max(600_000).optional(),
    /** How long the herd's PgBouncers may stay paused at most (s, default 60): a RESUME armed on each one's host fires then. */
    pauseBudgetSeconds: z.coerce.number().int().min(PAUSE_BUDGET_LIMITS_S.min).max(PAUSE_BUDGET_LIMITS_S.max).optional(),
    /** A herd Patroni runs only: Patroni switches over at this time (ISO 8601 with its offset, 30 seconds to 7 days ahead). */
    scheduledAt: z.iso
      .datetime({ offset: true, message: 'scheduledAt: a date and time in ISO 8601 with its offset (2026-11-25T02:00:00Z)' })
      .optional(),
  })
  .strict();

/** The herd's running primary and the candidate, per the inventory; or why the switchover cannot be. */
export function switchoverPair(h: HerdRef, candidateId?: number): { old: InstanceRef; cand: InstanceRef } | string {
  const [old, ...more] = h.members.filter((m) => m.role === 'primary' && m.state === 'running');
  if (!old) return 'the herd has no running primary: use DR failover';
  if (more.length) return `the herd has ${more.length + 1} running primaries`;
  const cand = chooseCandidate(h.members, candidateId);
  if (typeof cand === 'string') return cand;
  return { old, cand };
}

/** The herd as it is once the candidate is the primary and everyone else follows it. */
export function membersAfterSwitchover(h: HerdRef, old: InstanceRef, cand: InstanceRef): InstanceRef[] {
  return h.members.map((m) =>
    m.id === cand.id
      ? { ...m, role: 'primary' as const, state: 'running', upstreamId: null }
      : { ...m, role: m.id === old.id ? ('replica' as const) : m.role, upstreamId: cand.id },
  );
}

/** What the steps of one switchover tell each other. */
export interface SwitchoverState extends RejoinState, PatroniSwitchState {
  /** The old primary's stop was sent. */
  stopping: boolean;
  /** The candidate accepts writes. */
  promoted: boolean;
  /** pg_promote went out: the promotion may complete whatever this worker sees, so the old primary is never started again as a primary. */
  promoteSent: boolean;
  promoteAttempt: Promise<unknown> | null;
  /** The poolers already pointed at the candidate. */
  repointed: Set<number>;
  /**
   * A session to the candidate, opened by the pre-flight (pg_ctl's switchover): the pause then waits for
   * its replay and promotes it over it, with no TLS handshake while the clients wait.
   */
  candidate?: Session;
  /** The old primary's shutdown checkpoint, as pg_controldata said right after its stop. */
  shutdownAt?: string;
}

export const newSwitchoverState = (): SwitchoverState => ({
  stopping: false,
  promoted: false,
  promoteSent: false,
  promoteAttempt: null,
  repointed: new Set(),
  rewound: false,
});

export type SwitchoverParams = z.output<typeof switchoverParams>;
