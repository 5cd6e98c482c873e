// Who should be a herd's next primary, by what the inventory last observed. Switchover and DR
// failover measure again at execution; this is what their plans and the DR changelist show.
import { formatBytes } from '@/lib/adapters/format/units';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

/** Running replicas, most up to date first (WAL position, then lag, then id for a stable order). */
export function rankReplicas(members: InstanceRef[]): InstanceRef[] {
  return members
    .filter((m) => m.role === 'replica' && m.state === 'running')
    .sort((a, b) => (b.lsn ?? -1) - (a.lsn ?? -1) || (a.lagBytes ?? Infinity) - (b.lagBytes ?? Infinity) || a.id - b.id);
}

/** The inventory's primary of the herd (running or not: a failover starts from a dead one). */
export function recordedPrimary(members: InstanceRef[]): InstanceRef | string {
  const p = members.filter((m) => m.role === 'primary' && m.state !== 'fenced');
  if (!p.length) return 'the herd has no primary in the inventory';
  const [only, ...others] = p;
  if (!only) return 'the herd has no primary in the inventory';
  if (others.length) return `the herd has ${p.length} primaries in the inventory (${p.map((m) => m.label).join(', ')}): fence one first`;
  return only;
}

/** The candidate asked for (checked), or the best replica; a string says why there is none. */
export function chooseCandidate(members: InstanceRef[], wanted?: number): InstanceRef | string {
  if (wanted !== undefined) {
    const c = members.find((m) => m.id === wanted);
    if (!c) return `instance ${wanted} is not a member of the herd`;
    if (c.role !== 'replica') return `${c.label} is not a replica (the inventory says ${c.role})`;
    if (c.state !== 'running') return `${c.label} is not running (the inventory says ${c.state})`;
    return c;
  }
  return rankReplicas(members)[0] ?? 'the herd has no running replica';
}

/** Bytes `c` is behind `p` as last observed, or null when either position is unknown. */
export function lagOf(p: InstanceRef, c: InstanceRef): number | null {
  return p.lsn !== null && c.lsn !== null ? Math.max(0, p.lsn - c.lsn) : c.lagBytes;
}

export const bytesOrUnknown = (n: number | null) => (n === null ? 'unknown' : formatBytes(n));
