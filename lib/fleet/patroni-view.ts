// A Patroni herd as Patroni sees it, next to pgherd's own view: GET /cluster asked of the herd's
// members in turn (the first that answers is the view; a member down is not the herd down), each of
// Patroni's members matched to pgherd's instance at the same address and port, like `patronictl list`.
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { accessFor } from '@/lib/fleet/pg-access';
import {
  getCluster,
  leaderOf,
  PatroniError,
  type PatroniAccess,
  type PatroniClusterView,
  type PatroniMemberView,
} from '@/lib/adapters/patroni/client';
import { restUrlProblem } from '@/lib/adapters/patroni/rest-url';

export interface PatroniMemberNow {
  name: string;
  role: string;
  state: string;
  timeline: number | null;
  /** Bytes behind the leader, 'unknown', or null for the leader. */
  lag: number | 'unknown' | null;
  pendingRestart: boolean;
  /** Tagged nofailover: Patroni never makes it the leader. */
  noFailover: boolean;
  /** pgherd's instance at that address and port; null: one pgherd does not know. */
  instanceId: number | null;
  label: string;
}

export interface PatroniNow {
  /** The REST address that answered; null: none did (`problems` says why). */
  askedOf: string | null;
  /** The DCS lock holder; null: nobody holds it (a failover under way, or the cluster down). */
  leader: string | null;
  /** Maintenance mode: Patroni does not fail over on its own while paused. */
  paused: boolean;
  scheduledSwitchover: { at: string; from: string | null; to: string | null } | null;
  members: PatroniMemberNow[];
  /** pgherd's members Patroni does not list (not in the cluster, or under another address). */
  unknownToPatroni: { instanceId: number; label: string }[];
  /** Members that did not answer, and why (in the order asked). */
  problems: string[];
}

/** The REST access of the members' environment: PGHERD_PG_CONFIG's patroni entry (null when none: reads only). */
export function patroniAccessFor(environment: string): PatroniAccess | null {
  const a = accessFor(environment).patroni;
  return a ? { user: a.user, password: a.password, nextPasswords: a.next, caFile: a.caFile } : null;
}

/** Whether Patroni's member is this instance: the same port, and the host its address or its server's name. */
export function isInstance(
  m: Pick<PatroniMemberView, 'host' | 'port'>,
  r: Pick<InstanceRef, 'port' | 'address' | 'hostname' | 'host'>,
): boolean {
  if (m.port !== undefined && m.port !== r.port) return false;
  const host = (m.host ?? '').toLowerCase().replace(/\.$/, '');
  return host !== '' && [r.address, r.hostname, r.host].some((x) => x !== '' && x.toLowerCase().replace(/\.$/, '') === host);
}

/** What Patroni's /cluster says, matched to pgherd's members. */
export function matchCluster(cluster: PatroniClusterView, members: InstanceRef[], askedOf: string, problems: string[] = []): PatroniNow {
  const matched = new Set<number>();
  const list = cluster.members.map((m): PatroniMemberNow => {
    const r = members.find((x) => !matched.has(x.id) && isInstance(m, x));
    if (r) matched.add(r.id);
    return {
      name: m.name,
      role: m.role,
      state: m.state,
      timeline: m.timeline ?? null,
      lag: m.lag ?? null,
      pendingRestart: m.pending_restart ?? false,
      noFailover: m.tags?.nofailover === true,
      instanceId: r?.id ?? null,
      label: r?.label ?? `${m.host ?? '?'}:${String(m.port ?? '?')}`,
    };
  });
  const s = cluster.scheduled_switchover;
  return {
    askedOf,
    leader: leaderOf(cluster)?.name ?? null,
    paused: cluster.pause === true,
    scheduledSwitchover: s ? { at: s.at, from: s.from ?? null, to: s.to ?? null } : null,
    members: list,
    unknownToPatroni: members.filter((r) => !matched.has(r.id)).map((r) => ({ instanceId: r.id, label: r.label })),
    problems,
  };
}

/**
 * Patroni's view of a herd's members: /cluster asked of each member with a REST address, in turn, until
 * one answers. `access` defaults to the members' environment's (reads need no password, only the CA).
 */
export async function patroniNow(members: InstanceRef[], access?: PatroniAccess | null): Promise<PatroniNow> {
  const problems: string[] = [];
  // Only addresses on the member's own server, over https: a view anybody on the path, or a listener
  // elsewhere, could have written is not read at all.
  const asked = members.filter((r) => {
    if (r.patroniUrl === '') return false;
    const problem = restUrlProblem(r.patroniUrl, r.host);
    if (problem) problems.push(`${r.label}: its Patroni REST address is not read: ${problem}`);
    return !problem;
  });
  if (!members.some((r) => r.patroniUrl !== ''))
    problems.push('no member has a Patroni REST address: set one on its instance (or accept what its agent reports)');
  for (const r of asked) {
    let a: PatroniAccess | null;
    try {
      a = access !== undefined ? access : patroniAccessFor(r.serverEnvironment);
    } catch (err) {
      problems.push(`${r.label}: ${(err as Error).message}`);
      continue;
    }
    try {
      return matchCluster(await getCluster(r.patroniUrl, a), members, r.patroniUrl, problems);
    } catch (err) {
      problems.push(`${r.label}: ${err instanceof PatroniError ? err.message : String(err)}`);
    }
  }
  return {
    askedOf: null,
    leader: null,
    paused: false,
    scheduledSwitchover: null,
    members: [],
    unknownToPatroni: members.map((r) => ({ instanceId: r.id, label: r.label })),
    problems,
  };
}
