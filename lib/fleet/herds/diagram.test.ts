import { describe, expect, it } from 'vitest';
import { herdAfter } from './diagram-after';
import { layoutHerd, SPACING, textsOf, type DiagramInput, type DiagramMember } from './diagram';
import { FONTS } from './diagram-labels';
import { textWidth } from './text-metrics';

const m = (id: number, role: DiagramMember['role'], upstreamId: number | null, extra: Partial<DiagramMember> = {}): DiagramMember => ({
  id,
  label: `db-${id}:5432`,
  site: id % 2 ? 'east' : 'west',
  role,
  state: 'running',
  upstreamId,
  lagBytes: role === 'replica' ? 100 * id : null,
  lagSeconds: role === 'replica' ? 0.5 : null,
  ...extra,
});

// 1 primary; 2 and 3 stream from it; 4 cascades from 3.
const herd: DiagramInput = {
  members: [m(4, 'replica', 3), m(2, 'replica', 1), m(1, 'primary', null), m(3, 'replica', 1)],
  dns: [
    { name: 'orders.db', memberIds: [1], ok: true },
    { name: 'orders-ro.db', memberIds: [2, 3], ok: false },
  ],
  poolers: [{ label: 'bouncer-1', memberId: 1 }],
};

describe('layoutHerd', () => {
  it('puts the primary on top, its replicas under it, a cascading replica under its upstream, with the lag on each edge', () => {
    const l = layoutHerd(herd);
    const node = (id: number) => l.nodes.find((n) => n.member.id === id)!;
    expect([1, 2, 3, 4].map((id) => node(id).depth)).toEqual([0, 1, 1, 2]);
    expect(node(4).x).toBe(node(3).x);
    expect(node(2).x).toBeLessThan(node(3).x);
    // The primary centred over its two columns.
    expect(node(1).x).toBe((node(2).x + node(3).x) / 2);
    expect(l.edges.map((e) => [e.from, e.to, e.label])).toEqual([
      [1, 2, '200 B, 0.5 s'],
      [1, 3, '300 B, 0.5 s'],
      [3, 4, '400 B, 0.5 s'],
    ]);
    expect(node(1).dns).toEqual(['orders.db']);
    expect([node(2).dnsOk, node(1).dnsOk]).toEqual([false, true]);
    expect(l.poolers.map((p) => [p.label, p.memberId, p.x - node(1).x])).toEqual([['bouncer-1', 1, SPACING.indent]]);
    // The PgBouncer's line ends on the primary's box.
    expect(l.poolers[0]!.points.at(-1)).toEqual([node(1).x + SPACING.lane, node(1).y]);
    // Short names: boxes of the narrowest width, two columns.
    expect(l.box.width).toBe(SPACING.minBoxWidth);
    expect(l.width).toBe(SPACING.side * 2 + 2 * (l.box.width + SPACING.gapX) - SPACING.gapX);
  });

  it('draws two primaries side by side, a member streaming from outside the herd as a root, and survives a cycle', () => {
    const l = layoutHerd({
      members: [m(1, 'primary', null), m(2, 'primary', null), m(3, 'replica', 99), m(5, 'replica', 6), m(6, 'replica', 5)],
      dns: [],
      poolers: [],
    });
    expect(l.nodes.filter((n) => n.depth === 0).map((n) => n.member.id)).toEqual([1, 2, 3, 5]);
    expect(l.nodes).toHaveLength(5);
    expect(l.edges.map((e) => [e.from, e.to, e.label])).toEqual([[5, 6, '600 B, 0.5 s']]);
  });

  it('marks fenced and needs-rebuild members', () => {
    const l = layoutHerd({
      members: [m(1, 'primary', null), m(2, null, null, { state: 'fenced' }), m(3, 'replica', 1, { state: 'needs_rebuild' })],
      dns: [],
      poolers: [],
    });
    expect([1, 2, 3].map((id) => l.nodes.find((n) => n.member.id === id)!.marked)).toEqual([null, 'fenced', 'needs_rebuild']);
  });
});

// Names as fleets have them: 60 and more characters, two replicas side by side with their read names.
const long = (s: string) => `${s}.eu-west-1.compute.internal.databases.example-company.com:5432`;
const longHerd: DiagramInput = {
  members: [
    m(1, 'primary', null, { label: long('db-prod-orders-primary-1'), site: 'eu-west-1a-datacenter-frankfurt-2' }),
    m(2, 'replica', 1, { label: long('db-prod-orders-replica-2') }),
    m(3, 'replica', 1, { label: long('db-prod-orders-replica-3'), lagBytes: 123_456_789_012, lagSeconds: 98_765.4 }),
    m(4, 'replica', 3, { label: long('db-prod-orders-cascade-4'), state: 'needs_rebuild' }),
    m(5, null, null, { label: long('db-prod-orders-old-primary-5'), state: 'fenced' }),
  ],
  dns: [
    { name: 'orders-primary-write-endpoint.production.db.example-company.com', memberIds: [1], ok: true },
    { name: 'orders-replica-2-read-endpoint.production.db.example-company.com', memberIds: [2], ok: true },
    { name: 'orders-replica-3-read-endpoint.production.db.example-company.com', memberIds: [3], ok: false },
    { name: 'orders-any-replica-read-endpoint.production.db.example-company.com', memberIds: [2, 3, 4], ok: true },
  ],
  poolers: [
    { label: 'pgbouncer-orders-frontend-a.eu-west-1.compute.internal', memberId: 1 },
    { label: 'pgbouncer-orders-frontend-b.eu-west-1.compute.internal', memberId: 1 },
    { label: 'pgbouncer-orders-lost.eu-west-1.compute.internal', memberId: null },
  ],
};

interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}
const meet = (a: Rect, b: Rect) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
const within = (a: Rect, b: Rect) => a.x >= b.x && a.y >= b.y && a.x + a.width <= b.x + b.width && a.y + a.height <= b.y + b.height;

/** Every way two labels, two boxes, or a label and a box it is not in, could meet, and what leaves the picture. */
function collisions(input: DiagramInput): string[] {
  const l = layoutHerd(input);
  const texts = textsOf(l);
  const found: string[] = [];
  const pairs = <T>(xs: T[], f: (a: T, b: T) => void) => xs.forEach((a, i) => xs.slice(i + 1).forEach((b) => f(a, b)));
  pairs(texts, (a, b) => {
    if (meet(a, b)) found.push(`${a.kind} "${a.text}" meets ${b.kind} "${b.text}"`);
  });
  // Member boxes and PgBouncer boxes, each with the labels drawn inside it.
  const shapes = [
    ...l.nodes.map((n) => ({
      name: `${n.member.label}'s box`,
      rect: { x: n.x, y: n.y, ...l.box },
      inside: n.texts.filter((t) => t.kind !== 'dns'),
    })),
    ...l.poolers.map((p) => ({ name: `PgBouncer ${p.label}'s box`, rect: p, inside: [p.text] })),
  ];
  pairs(shapes, (a, b) => {
    if (meet(a.rect, b.rect)) found.push(`${a.name} meets ${b.name}`);
  });
  for (const s of shapes) {
    for (const t of s.inside) if (!within(t, s.rect)) found.push(`${t.kind} "${t.text}" leaves ${s.name}`);
    for (const t of texts) if (!s.inside.includes(t) && meet(t, s.rect)) found.push(`${t.kind} "${t.text}" meets ${s.name}`);
  }
  const picture = { x: 0, y: 0, width: l.width, height: l.height };
  for (const r of [...texts, ...shapes.map((s) => s.rect)])
    if (!within(r, picture)) found.push(`${JSON.stringify(r)} is outside the picture`);
  return found;
}

describe('layoutHerd with long names', () => {
  it('draws no label over another nor over a box, and keeps every label inside the picture', () => {
    expect(longHerd.members.every((x) => x.label.length >= 60)).toBe(true);
    expect(collisions(longHerd)).toEqual([]);
    // The same after a switchover and a failover (the confirmation page draws both).
    expect(collisions(herdAfter(longHerd, { kind: 'switchover', candidateId: 3 }))).toEqual([]);
    expect(collisions(herdAfter(longHerd, { kind: 'failover', candidateId: 2 }))).toEqual([]);
  });

  it('cuts no host name short: its lines give it whole, each as wide as its box allows', () => {
    const l = layoutHerd(longHerd);
    expect(l.box.width).toBe(SPACING.maxBoxWidth);
    for (const n of l.nodes) {
      const host = n.texts.find((t) => t.kind === 'host')!;
      expect(host.lines.join('')).toBe(n.member.label);
      expect(host.lines.length).toBeGreaterThan(1);
      for (const line of host.lines) expect(textWidth(line, FONTS.host)).toBeLessThanOrEqual(l.box.width - 2 * SPACING.pad);
    }
    // Each DNS name is a label of its own, whole, over the member it answers; the wrong one says so.
    const three = l.nodes.find((n) => n.member.id === 3)!;
    expect(three.texts.filter((t) => t.kind === 'dns').map((t) => [t.lines.join(''), t.warn ?? false])).toEqual([
      ['! orders-replica-3-read-endpoint.production.db.example-company.com', true],
      ['orders-any-replica-read-endpoint.production.db.example-company.com', false],
    ]);
  });

  it('keeps labels apart for names of any length, in herds of any shape', () => {
    // A small deterministic generator: the same herds on every run.
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const name = (n: number) => Array.from({ length: n }, () => 'abcdefghijklmnopqrstuvwxyzMW0123456789.-:_'[next(42)]).join('');
    for (let round = 0; round < 150; round++) {
      const size = 1 + next(7);
      const members = Array.from({ length: size }, (_, i) =>
        m(i + 1, i === 0 ? 'primary' : 'replica', i === 0 ? null : 1 + next(i), { label: name(1 + next(120)), site: name(next(40)) }),
      );
      const dns = Array.from({ length: next(6) }, () => ({
        name: name(1 + next(100)),
        memberIds: members.filter(() => next(2) === 0).map((x) => x.id),
        ok: next(3) > 0,
      }));
      const poolers = Array.from({ length: next(5) }, (_, i) => ({
        label: `${i}-${name(next(80))}`,
        memberId: next(2) ? 1 + next(size) : null,
      }));
      const input = { members, dns, poolers };
      expect(collisions(input), JSON.stringify(input)).toEqual([]);
      for (const n of layoutHerd(input).nodes) expect(n.texts.find((t) => t.kind === 'host')!.lines.join('')).toBe(n.member.label);
    }
  });
});

describe('herdAfter', () => {
  it('a switchover: the candidate leads, the old primary and the others stream from it, names and PgBouncers follow', () => {
    const after = herdAfter(herd, { kind: 'switchover', candidateId: 3 });
    const by = (id: number) => after.members.find((x) => x.id === id)!;
    expect([by(3).role, by(3).upstreamId, by(1).role, by(1).upstreamId, by(2).upstreamId, by(4).upstreamId]).toEqual([
      'primary',
      null,
      'replica',
      3,
      3,
      3,
    ]);
    expect(after.dns[0]).toEqual({ name: 'orders.db', memberIds: [3], ok: true });
    expect(after.dns[1]!.memberIds).toEqual([2, 3]);
    expect(after.poolers).toEqual([{ label: 'bouncer-1', memberId: 3 }]);
    expect(layoutHerd(after).nodes.find((n) => n.member.id === 3)!.depth).toBe(0);
  });

  it('a DR failover fences the old primary instead', () => {
    const after = herdAfter(herd, { kind: 'failover', candidateId: 2 });
    expect(after.members.find((x) => x.id === 1)).toMatchObject({ state: 'fenced', upstreamId: null });
    expect(layoutHerd(after).nodes.find((n) => n.member.id === 1)!.marked).toBe('fenced');
  });

  it('a remaster re-points its targets only', () => {
    const after = herdAfter(herd, { kind: 'remaster', targetIds: [4], upstreamId: 2 });
    expect(after.members.map((x) => [x.id, x.upstreamId])).toEqual([
      [4, 2],
      [2, 1],
      [1, null],
      [3, 1],
    ]);
  });
});
