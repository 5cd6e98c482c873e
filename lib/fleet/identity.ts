// A member is who it says it is: before pgherd promotes an instance or points it at an upstream, the
// instance itself must report the herd's system identifier and a timeline consistent with the herd.
// An address reused by another cluster, a restored backup started on its own, or a replica left on an
// old timeline by an earlier failover would otherwise be promoted into the herd (or made to stream
// from a history it does not share).
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import type { Observed } from '@/lib/fleet/observe';

export interface HerdIdentity {
  /** The system identifier every member must report; null when neither the inventory nor the members say. */
  systemIdentifier: string | null;
  /** The timeline the herd is on (its primary's); null when unknown. */
  timeline: number | null;
}

/** Why `o` (what member `m` said) is not a member of the herd described by `want`; null when it is. */
export function identityProblem(m: Pick<InstanceRef, 'label'>, o: Observed, want: HerdIdentity): string | null {
  if (!o.reachable) return null;
  if (want.systemIdentifier && o.systemIdentifier && o.systemIdentifier !== want.systemIdentifier) {
    return `${m.label} reports system identifier ${o.systemIdentifier}, the herd's is ${want.systemIdentifier}: it is another cluster`;
  }
  if (want.timeline !== null && o.timeline !== undefined && o.timeline !== want.timeline) {
    return o.timeline > want.timeline
      ? `${m.label} is on timeline ${o.timeline}, ahead of the herd's ${want.timeline}: it was promoted somewhere else and has diverged`
      : `${m.label} is on timeline ${o.timeline}, behind the herd's ${want.timeline}: it did not follow an earlier failover (rebuild it)`;
  }
  return null;
}

/**
 * The herd's system identifier: the inventory's, else the one the answering members agree on. When
 * none is recorded and the members report several, nobody can be checked: `ambiguous` says why, and
 * the caller refuses.
 */
export function herdIdentity(recorded: string | null, seen: Observed[]): { systemIdentifier: string | null; ambiguous: string | null } {
  if (recorded) return { systemIdentifier: recorded, ambiguous: null };
  const ids = [...new Set(seen.flatMap((o) => (o.reachable && o.systemIdentifier ? [o.systemIdentifier] : [])))];
  if (ids.length <= 1) return { systemIdentifier: ids[0] ?? null, ambiguous: null };
  return {
    systemIdentifier: null,
    ambiguous: `the members report ${ids.length} different system identifiers (${ids.join(', ')}) and the inventory records none: set the herd's system identifier first`,
  };
}
