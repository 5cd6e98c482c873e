import { describe, expect, it } from 'vitest';
import { herdAfter, layoutHerd, NODE, type DiagramInput, type DiagramMember } from './diagram';

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
    expect(l.poolers).toEqual([{ label: 'bouncer-1', memberId: 1, x: node(1).x, y: 8 }]);
    expect(l.width).toBe(NODE.side * 2 + 2 * (NODE.width + NODE.gapX) - NODE.gapX);
  });

  it('draws two primaries side by side, a member streaming from outside the herd as a root, and survives a cycle', () => {
    const l = layoutHerd({
      members: [m(1, 'primary', null), m(2, 'primary', null), m(3, 'replica', 99), m(5, 'replica', 6), m(6, 'replica', 5)],
      dns: [],
      poolers: [],
    });
    expect(l.nodes.filter((n) => n.depth === 0).map((n) => n.member.id)).toEqual([1, 2, 3, 5]);
    expect(l.nodes).toHaveLength(5);
    expect(l.edges).toEqual([{ from: 5, to: 6, label: '600 B, 0.5 s' }]);
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
