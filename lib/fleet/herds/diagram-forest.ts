// Where each member of a herd sits in its diagram, in columns and rows (lib/fleet/herds/diagram.ts
// turns them into pixels): a forest whose roots are the primaries and the members whose upstream is
// not in the herd (or who stream from nothing), each replica under its upstream, siblings by label.

/** What the forest needs of a member. */
export interface ForestMember {
  id: number;
  label: string;
  role: string | null;
  upstreamId: number | null;
}

export interface Slot<M extends ForestMember> {
  member: M;
  /** The first column of the member's subtree, and how many columns it takes (a leaf takes one). */
  column: number;
  span: number;
  /** Its row: 0 for a root. */
  depth: number;
  /** The member it is drawn under (null for a root). */
  upstream: M | null;
}

/**
 * The members in the order they are placed (depth first), and the number of columns. A cycle (two
 * replicas naming each other, as a broken re-point can leave) is cut where it is found.
 */
export function forestOf<M extends ForestMember>(members: M[]): { slots: Slot<M>[]; columns: number } {
  const byId = new Map(members.map((m) => [m.id, m]));
  const children = new Map<number, M[]>();
  const roots: M[] = [];
  const order = [...members].sort(
    (a, b) => (a.role === 'primary' ? -1 : 0) - (b.role === 'primary' ? -1 : 0) || a.label.localeCompare(b.label),
  );
  for (const m of order) {
    const up = m.upstreamId === null || m.upstreamId === m.id ? undefined : byId.get(m.upstreamId);
    if (!up || m.role === 'primary') roots.push(m);
    else children.set(up.id, [...(children.get(up.id) ?? []), m]);
  }
  // Cycles: whatever no root reaches becomes a root itself.
  const reached = new Set<number>();
  const walk = (m: M) => {
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
  const spans = new Map<number, number>();
  const visiting = new Set<number>();
  const spanOf = (m: M): number => {
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
  const slots: Slot<M>[] = [];
  const placed = new Set<number>();
  const place = (m: M, column: number, depth: number, upstream: M | null) => {
    if (placed.has(m.id)) return;
    placed.add(m.id);
    slots.push({ member: m, column, span: spanOf(m), depth, upstream });
    let c = column;
    for (const k of children.get(m.id) ?? []) {
      if (placed.has(k.id)) continue;
      place(k, c, depth + 1, m);
      c += spanOf(k);
    }
  };
  let columns = 0;
  for (const r of roots) {
    if (placed.has(r.id)) continue;
    place(r, columns, 0, null);
    columns += spanOf(r);
  }
  return { slots, columns };
}
