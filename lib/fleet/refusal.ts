// A refusal: pgherd will not do this, and did nothing (or nothing more). A value of its own type with
// a code, so the engine tells it from a failure by its type, never by its words: a plan shows it, a
// step throws it before it changes anything, a target refused is never retried as if it had failed.

export type RefusalCode =
  /** The parameters do not fit the action. */
  | 'params'
  /** A server it touches has no pinned SSH host key. */
  | 'unpinned-host-key'
  /** A server it touches was found by EC2 discovery where an admin's approval is asked for, and waits for it. */
  | 'pending-approval'
  /** The requester lacks the action's role where it would run (checked again at execution). */
  | 'access'
  /** The instance or herd is gone from the inventory. */
  | 'gone'
  /** The target's role or state rules the action out (a primary asked to follow an upstream, a fenced instance started). */
  | 'not-applicable'
  /** No primary, several primaries, or no replica to promote. */
  | 'topology'
  /** A member other than the recorded primary answers as a primary. */
  | 'split-brain'
  /** A member is not the herd's (system identifier) or not on its timeline. */
  | 'identity'
  /** A member that must answer does not, or answers as what it should not be. */
  | 'unreachable'
  /** The candidate is further behind than allowed. */
  | 'lag'
  /** The old primary could not be proven unable to accept writes. */
  | 'not-fenced'
  /** A DNS record cannot be changed: its zone, server, key or owner. */
  | 'dns'
  /** A PgBouncer's configuration lacks what pgherd must move. */
  | 'pooler'
  /** The SSH host key asked for is not the one to pin. */
  | 'host-key'
  /** The cloud cannot do it: not an EC2 server, AWS not configured, a type the instance cannot run. */
  | 'cloud'
  /** A setting Postgres would not take, or one that would stop a member (a replica below its primary). */
  | 'settings'
  /** What it would act on is in use (a slot something streams from, a session of pgherd's own). */
  | 'in-use'
  /** What it would do changed between the confirmation and its start (an action that runs only what was confirmed). */
  | 'stale'
  /** Refused before refusals had codes (targets recorded before migration 0016). */
  | 'unclassified';

export class Refusal extends Error {
  /** `reason`: why, in words, without the leading "refused: ". */
  constructor(
    readonly code: RefusalCode,
    readonly reason: string,
  ) {
    super(`refused: ${reason}`);
    this.name = 'Refusal';
  }
}

export const refuse = (code: RefusalCode, reason: string): Refusal => new Refusal(code, reason);
