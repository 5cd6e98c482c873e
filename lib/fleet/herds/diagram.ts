// A herd's shape as a picture (components/herds/topology-diagram.tsx draws it): the primary at the
// top, each replica under the member it streams from (cascading replicas under their upstream), the
// PgBouncers above the member they point at, the DNS names beside the members they answer. Laid out
// here, without React, so that the layout and the "after" of a switchover, a failover or a remaster
// are tested on their own.

export interface DiagramMember {
  id: number;
  label: string;
  site: string;
  /** As observed (null: it does not answer). */
  role: 'primary' | 'replica' | 'unknown' | null;
  state: string;
  /** The member it streams from (null: none, or not a member of the herd). */
  upstreamId: number | null;
  lagBytes: number | null;
  lagSeconds: number | null;
}

export interface DiagramInput {
  members: DiagramMember[];
  /** Each DNS name and the members its answer names (and whether that is what it should answer). */
  dns: { name: string; memberIds: number[]; ok: boolean }[];
  /** Each PgBouncer and the member its entries point at (null: unknown). */
  poolers: { label: string; memberId: number | null }[];
}

/** What an operation will change, for the confirmation page's "after". */
export type DiagramChange =
  | { kind: 'switchover'; candidateId: number }
  | { kind: 'failover'; candidateId: number }
  | { kind: 'remaster'; targetIds: number[]; upstreamId: number };

export const NODE = { width: 210, height: 70, gapX: 28, gapY: 78, top: 96, side: 16 } as const;

export interface PlacedMember {
  member: DiagramMember;
  x: number;
  y: number;
  depth: number;
  /** Fenced or needing a rebuild: drawn as such. */
  marked: 'fenced' | 'needs_rebuild' | null;
  dns: string[];
  dnsOk: boolean;
}

export interface Layout {
  width: number;
  height: number;
  nodes: PlacedMember[];
  /** Replication: upstream -> replica, with its lag in words. */
  edges: { from: number; to: number; label: string }[];
  poolers: { label: string; x: number; y: number; memberId: number | null }[];
}

const lagWords = (m: DiagramMember, bytes: (n: number) => string): string => {
  const parts = [m.lagBytes === null ? null : bytes(m.lagBytes), m.lagSeconds === null ? null : `${m.lagSeconds.toFixed(1)} s`].filter(
    Boolean,
  );
  return parts.length ? parts.join(', ') : 'lag unknown';
};

/**
 * Places the members as a forest: roots are the primaries and the members whose upstream is not in
 * the herd (or who stream from nothing), each replica under its upstream, siblings by label. A cycle
 * (two replicas naming each other, as a broken re-point can leave) is cut where it is found.
 */
export function layoutHerd(input: DiagramInput, bytes: (n: number) => string = (n) => `${n} B`): Layout {
  const byId = new Map(input.members.map((m) => [m.id, m]));
  const children = new Map<number, DiagramMember[]>();
  const roots: DiagramMember[] = [];
  const order = [...input.members].sort(
    (a, b) => (a.role === 'primary' ? -1 : 0) - (b.role === 'primary' ? -1 : 0) || a.label.localeCompare(b.label),
  );
  for (const m of order) {
    const up = m.upstreamId === null || m.upstreamId === m.id ? undefined : byId.get(m.upstreamId);
    if (!up || m.role === 'primary') roots.push(m);
    else children.set(up.id, [...(children.get(up.id) ?? []), m]);
  }
  // Cycles: whatever no root reaches becomes a root itself.
  const reached = new Set<number>();
  const walk = (m: DiagramMember) => {
    if (reached.has(m.id)) return;
    reached.add(m.id);
    for (const c of children.get(m.id) ?? []) walk(c);
  };
  roots.forEach(walk);
  for (const m of order)
    if (!reached.has(m.id)) {
      roots.push(m);
      walk(m);
    }
  // Widths in columns (a leaf is one), then x by column, depth-first.
  const spans = new Map<number, number>();
  const visiting = new Set<number>();
  const spanOf = (m: DiagramMember): number => {
    const got = spans.get(m.id);
    if (got !== undefined) return got;
    if (visiting.has(m.id)) return 0;
    visiting.add(m.id);
    const kids = (children.get(m.id) ?? []).filter((c) => !visiting.has(c.id));
    const s = Math.max(
      1,
      kids.reduce((a, c) => a + spanOf(c), 0),
    );
    spans.set(m.id, s);
    return s;
  };
  const dnsOf = new Map<number, { names: string[]; ok: boolean }>();
  for (const d of input.dns)
    for (const id of d.memberIds) {
      const e = dnsOf.get(id) ?? { names: [], ok: true };
      e.names.push(d.name);
      e.ok &&= d.ok;
      dnsOf.set(id, e);
    }
  // Room above the first row for the PgBouncers, else for a DNS name.
  const top = input.poolers.length ? NODE.top : NODE.side + 20;
  const nodes: PlacedMember[] = [];
  const edges: Layout['edges'] = [];
  const placed = new Set<number>();
  let maxDepth = 0;
  const place = (m: DiagramMember, column: number, depth: number) => {
    if (placed.has(m.id)) return;
    placed.add(m.id);
    const s = spanOf(m);
    const x = NODE.side + (column + (s - 1) / 2) * (NODE.width + NODE.gapX);
    const y = top + depth * (NODE.height + NODE.gapY);
    maxDepth = Math.max(maxDepth, depth);
    const d = dnsOf.get(m.id);
    nodes.push({
      member: m,
      x,
      y,
      depth,
      marked: m.state === 'fenced' || m.state === 'needs_rebuild' ? m.state : null,
      dns: d?.names ?? [],
      dnsOk: d?.ok ?? true,
    });
    let c = column;
    for (const k of children.get(m.id) ?? []) {
      if (placed.has(k.id)) continue;
      edges.push({ from: m.id, to: k.id, label: lagWords(k, bytes) });
      place(k, c, depth + 1);
      c += spanOf(k);
    }
  };
  let column = 0;
  for (const r of roots) {
    if (placed.has(r.id)) continue;
    place(r, column, 0);
    column += spanOf(r);
  }
  const width = NODE.side * 2 + Math.max(1, column) * (NODE.width + NODE.gapX) - NODE.gapX;
  // PgBouncers above the member they point at (spread when several point at one), else at the left.
  const stacked = new Map<number, number>();
  const poolers = input.poolers.map((p, i) => {
    const at = p.memberId === null ? undefined : nodes.find((n) => n.member.id === p.memberId);
    const k = at ? (stacked.get(at.member.id) ?? 0) : i;
    if (at) stacked.set(at.member.id, k + 1);
    return { label: p.label, memberId: at ? p.memberId : null, x: (at?.x ?? NODE.side) + k * 24, y: 8 + k * 4 };
  });
  return { width, height: top + (maxDepth + 1) * (NODE.height + NODE.gapY) - NODE.gapY + NODE.side, nodes, edges, poolers };
}

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
