// A member is who it says it is: before pgherd promotes an instance or points it at an upstream, the
// instance itself must report the herd's system identifier and a timeline consistent with the herd.
// An address reused by another cluster, a restored backup started on its own, or a replica left on an
// old timeline by an earlier failover would otherwise be promoted into the herd (or made to stream
// from a history it does not share).
import type { InstanceRef } from './instance-ref';
import type { Observed } from './observe';

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
 * The herd's system identifier: the inventory's, else the one the answering members agree on (null
 * when they do not agree: then nobody can be checked, and the caller refuses).
 */
export function herdSystemIdentifier(recorded: string | null, seen: Observed[]): string | null {
  if (recorded) return recorded;
  const ids = new Set(seen.filter((o) => o.reachable && o.systemIdentifier).map((o) => o.systemIdentifier));
  return ids.size === 1 ? [...ids][0]! : null;
}

/** Several system identifiers among the members and none recorded: which one is the herd's cannot be told. */
export function ambiguousIdentity(recorded: string | null, seen: Observed[]): string | null {
  if (recorded) return null;
  const ids = [...new Set(seen.filter((o) => o.reachable && o.systemIdentifier).map((o) => o.systemIdentifier!))];
  return ids.length > 1 ? `the members report ${ids.length} different system identifiers (${ids.join(', ')}) and the inventory records none: set the herd's system identifier first` : null;
}
