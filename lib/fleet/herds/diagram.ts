// A herd's shape as a picture (components/herds/topology-diagram.tsx draws it): the primary at the
// top, each replica under the member it streams from (cascading replicas under their upstream), the
// PgBouncers above the member they point at, the DNS names above the members they answer. Laid out
// here, without React, so that the layout (and, in diagram-after.ts, the herd a switchover, a failover
// or a remaster leaves) is tested on its own, down to no label meeting another whatever the names.
import { forestOf } from './diagram-forest';
import { FONTS, heightOf, stack, textBox, type TextBox } from './diagram-labels';
import { textWidth } from './text-metrics';

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

/** The diagram's spacing, in px. */
export const SPACING = {
  side: 16,
  /** Between two columns. */
  gapX: 28,
  /** A member's box is at least this wide, and at most this (longer names wrap onto more lines). */
  minBoxWidth: 210,
  maxBoxWidth: 360,
  /** Text inside a member's box, from its border; a PgBouncer's text is poolerPad from its top and bottom. */
  pad: 10,
  poolerPad: 5,
  /** The connectors come down at this distance from a box's left edge; labels start right of them. */
  lane: 14,
  indent: 26,
  /** From a box's bottom to the line that joins its replicas, and from a label to the box under it. */
  bus: 14,
  arrow: 14,
} as const;

export interface PlacedMember {
  member: DiagramMember;
  x: number;
  y: number;
  depth: number;
  /** Fenced or needing a rebuild: drawn as such. */
  marked: 'fenced' | 'needs_rebuild' | null;
  dns: string[];
  dnsOk: boolean;
  /** Its host name, role and state, site (in its box), then its DNS names (above it). */
  texts: TextBox[];
}

type Point = [number, number];

export interface Layout {
  width: number;
  height: number;
  /** Every member's box is this size. */
  box: { width: number; height: number };
  nodes: PlacedMember[];
  /** Replication: upstream -> replica, its path, and its lag in words above the replica. */
  edges: { from: number; to: number; label: string; points: Point[]; text: TextBox }[];
  poolers: {
    label: string;
    memberId: number | null;
    x: number;
    y: number;
    width: number;
    height: number;
    points: Point[];
    text: TextBox;
  }[];
}

/** Every label of the diagram. */
export const textsOf = (l: Layout): TextBox[] => [
  ...l.nodes.flatMap((n) => n.texts),
  ...l.edges.map((e) => e.text),
  ...l.poolers.map((p) => p.text),
];

const lagWords = (m: DiagramMember, bytes: (n: number) => string): string => {
  const parts = [m.lagBytes === null ? null : bytes(m.lagBytes), m.lagSeconds === null ? null : `${m.lagSeconds.toFixed(1)} s`].filter(
    Boolean,
  );
  return parts.length ? parts.join(', ') : 'lag unknown';
};

/**
 * Places the members in rows and columns (lib/fleet/herds/diagram-forest.ts), sizes every box to the
 * longest host name (wrapped past maxBoxWidth) and stacks each member's labels (the lag of the line
 * that reaches it, its DNS names) above it inside its own column, right of the line, with each row
 * pushed down by the tallest stack above it: two labels never meet, however long the names.
 */
export function layoutHerd(input: DiagramInput, bytes: (n: number) => string = (n) => `${n} B`): Layout {
  const S = SPACING;
  const { slots, columns } = forestOf(input.members);
  const dnsOf = new Map<number, { name: string; ok: boolean }[]>();
  for (const d of input.dns) for (const id of d.memberIds) dnsOf.set(id, [...(dnsOf.get(id) ?? []), { name: d.name, ok: d.ok }]);
  const labelOf = (d: { name: string; ok: boolean }) => (d.ok ? d.name : `! ${d.name}`);
  const inside = (m: DiagramMember) => ({
    host: m.label,
    state: `${m.role ?? 'unknown'}, ${m.state.replace('_', ' ')}`,
    site: `site ${m.site || '\u2014'}${m.state === 'fenced' ? ' \u00b7 FENCED' : m.state === 'needs_rebuild' ? ' \u00b7 NEEDS REBUILD' : ''}`,
  });
  // One width for every box: the widest text it holds or has above it, within bounds.
  const wanted = [
    ...slots.flatMap(({ member: m, upstream }) => [
      ...(['host', 'state', 'site'] as const).map((k) => textWidth(inside(m)[k], FONTS[k]) + 2 * S.pad),
      ...(dnsOf.get(m.id) ?? []).map((d) => textWidth(labelOf(d), FONTS.dns) + S.indent),
      upstream ? textWidth(lagWords(m, bytes), FONTS.lag) + S.indent : 0,
    ]),
    ...input.poolers.map((p) => textWidth(`PgBouncer ${p.label}`, FONTS.pooler) + S.indent + 2 * S.pad),
  ];
  const W = Math.min(S.maxBoxWidth, Math.max(S.minBoxWidth, ...wanted));
  const pitch = W + S.gapX;
  const members = slots.map((slot) => {
    const m = slot.member;
    const t = inside(m);
    const boxTexts = (['host', 'state', 'site'] as const).map((k) => textBox(k, t[k], W - 2 * S.pad));
    const above = [
      ...(slot.upstream ? [textBox('lag', lagWords(m, bytes), W - S.indent)] : []),
      ...(dnsOf.get(m.id) ?? []).map((d) => textBox('dns', labelOf(d), W - S.indent, !d.ok)),
    ];
    return { slot, x: S.side + (slot.column + (slot.span - 1) / 2) * pitch, boxTexts, above };
  });
  const H = Math.max(70, ...members.map((p) => heightOf(p.boxTexts) + 2 * S.pad));
  // PgBouncers at the top, stacked over the member they point at (at the left when that is unknown).
  const xOf = new Map(members.map((p) => [p.slot.member.id, p.x]));
  const poolerBoxes = input.poolers.map((p) => {
    const at = p.memberId === null ? undefined : xOf.get(p.memberId);
    const text = textBox('pooler', `PgBouncer ${p.label}`, W - S.indent - 2 * S.pad);
    return {
      p,
      memberId: at === undefined ? null : p.memberId,
      colX: at ?? S.side,
      x: 0,
      y: 0,
      width: Math.min(W - S.indent, text.width + 2 * S.pad),
      height: text.height + 2 * S.poolerPad,
      text,
    };
  });
  // Left to right, a stack below any stack it would meet: a line down from a stack then passes only
  // stacks further right, whose boxes start right of it.
  let y: number = S.side;
  const stacks: { colX: number; bottom: number }[] = [];
  for (const colX of [...new Set(poolerBoxes.map((b) => b.colX))].sort((a, b) => a - b)) {
    const under = stacks.filter((t) => Math.abs(t.colX - colX) < W - S.indent + S.gapX).map((t) => t.bottom + S.gapX / 2);
    const bottom = stack(
      poolerBoxes.filter((b) => b.colX === colX),
      colX + S.indent,
      Math.max(S.side, ...under),
    );
    stacks.push({ colX, bottom });
    y = Math.max(y, bottom + S.arrow);
  }
  // Row by row: the line to the replicas, the tallest stack of labels, the boxes.
  const rows = Math.max(0, ...slots.map((s) => s.depth + 1));
  const rowY: number[] = [];
  const busY: number[] = [];
  for (let d = 0; d < rows; d++) {
    if (d > 0) {
      const bus = y + S.bus;
      busY[d] = bus;
      y = bus + S.bus;
    }
    const tallest = Math.max(0, ...members.filter((p) => p.slot.depth === d).map((p) => heightOf(p.above)));
    y += tallest ? tallest + S.arrow : 0;
    rowY[d] = y;
    y += H;
  }
  const nodes: PlacedMember[] = members.map(({ slot, x, boxTexts, above }) => {
    const m = slot.member;
    const top = rowY[slot.depth] ?? 0;
    stack(boxTexts, x + S.pad, top + S.pad);
    stack(above, x + S.indent, top - S.arrow - heightOf(above));
    const dns = dnsOf.get(m.id) ?? [];
    return {
      member: m,
      x,
      y: top,
      depth: slot.depth,
      marked: m.state === 'fenced' || m.state === 'needs_rebuild' ? m.state : null,
      dns: dns.map((d) => d.name),
      dnsOk: dns.every((d) => d.ok),
      texts: [...boxTexts, ...above.filter((b) => b.kind === 'dns')],
    };
  });
  const at = new Map(nodes.map((n) => [n.member.id, n]));
  const edges = members.flatMap(({ slot, above }) => {
    const up = slot.upstream && at.get(slot.upstream.id);
    const to = at.get(slot.member.id);
    const text = above.find((b) => b.kind === 'lag');
    if (!up || !to || !text) return [];
    const bus = busY[to.depth] ?? to.y;
    const points: Point[] = [
      [up.x + S.lane, up.y + H],
      [up.x + S.lane, bus],
      [to.x + S.lane, bus],
      [to.x + S.lane, to.y],
    ];
    return [{ from: up.member.id, to: to.member.id, label: text.text, points, text }];
  });
  const poolers = poolerBoxes.map((b) => {
    const target = b.memberId === null ? undefined : at.get(b.memberId);
    stack([b.text], b.x + S.pad, b.y + S.poolerPad);
    const points: Point[] = target
      ? [
          [b.x, b.y + b.height / 2],
          [target.x + S.lane, b.y + b.height / 2],
          [target.x + S.lane, target.y],
        ]
      : [];
    return { label: b.p.label, memberId: b.memberId, x: b.x, y: b.y, width: b.width, height: b.height, points, text: b.text };
  });
  return {
    width: S.side * 2 + Math.max(1, columns) * pitch - S.gapX,
    height: y + S.side,
    box: { width: W, height: H },
    nodes,
    edges,
    poolers,
  };
}
