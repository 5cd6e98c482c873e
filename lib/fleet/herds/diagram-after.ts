// A herd as an operation will leave it, for the confirmation page's "after" diagram.
import type { DiagramInput } from './diagram';

/** What an operation will change, for the confirmation page's "after". */
export type DiagramChange =
  | { kind: 'switchover'; candidateId: number }
  | { kind: 'failover'; candidateId: number }
  | { kind: 'remaster'; targetIds: number[]; upstreamId: number };

/**
 * The herd as the operation will leave it: the candidate the primary, the others streaming from it
 * (the old primary too after a switchover; fenced after a failover), the names and PgBouncers that
 * followed the old primary following the new one. Lag afterwards is not known.
 */
export function herdAfter(input: DiagramInput, change: DiagramChange): DiagramInput {
  if (change.kind === 'remaster') {
    const moved = new Set(change.targetIds);
    return {
      ...input,
      members: input.members.map((m) => (moved.has(m.id) ? { ...m, upstreamId: change.upstreamId, lagBytes: null, lagSeconds: null } : m)),
    };
  }
  const old = input.members.filter((m) => m.role === 'primary' && m.id !== change.candidateId).map((m) => m.id);
  const follows = (id: number) => (old.includes(id) ? change.candidateId : id);
  return {
    members: input.members.map((m) => {
      if (m.id === change.candidateId)
        return { ...m, role: 'primary', state: 'running', upstreamId: null, lagBytes: null, lagSeconds: null };
      if (old.includes(m.id))
        return change.kind === 'switchover'
          ? { ...m, role: 'replica', upstreamId: change.candidateId, lagBytes: null, lagSeconds: null }
          : { ...m, role: 'unknown', state: 'fenced', upstreamId: null, lagBytes: null, lagSeconds: null };
      return m.state === 'fenced' ? m : { ...m, upstreamId: change.candidateId, lagBytes: null, lagSeconds: null };
    }),
    dns: input.dns.map((d) => ({ ...d, memberIds: [...new Set(d.memberIds.map(follows))], ok: true })),
    poolers: input.poolers.map((p) => ({ ...p, memberId: p.memberId === null ? null : follows(p.memberId) })),
  };
}
