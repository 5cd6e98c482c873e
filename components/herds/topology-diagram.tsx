// A herd drawn as SVG (laid out by lib/fleet/herds/diagram.ts): each member a box with its site, role and
// state, replication as lines from upstream to replica with the lag above the replica, DNS names above
// the members they answer, PgBouncers above the member they point at. Fenced and needs-rebuild members
// are marked. Plain SVG from the server: no script, no external service.
import { layoutHerd, type DiagramInput } from '@/lib/fleet/herds/diagram';
import { FONTS, type TextBox } from '@/lib/fleet/herds/diagram-labels';
import { ascent, lineHeight } from '@/lib/fleet/herds/text-metrics';
import { formatBytes } from '@/lib/adapters/format/units';

const FILL: Record<string, string> = { primary: '#e6f0f5', replica: '#f6f6f6', unknown: '#fff' };
const INK: Record<TextBox['kind'], string> = { host: '#222', state: '#444', site: '#666', dns: '#2f855a', lag: '#444', pooler: '#222' };

const points = (ps: [number, number][]) => ps.map(([x, y]) => `${x},${y}`).join(' ');

/** A label in the lines the layout wrapped it into, its box's top-left at (x, y). */
function Label({ box }: { box: TextBox }) {
  const font = FONTS[box.kind];
  return (
    <text
      className={`label label-${box.kind}`}
      x={box.x}
      y={box.y + ascent(font)}
      fontSize={font.size}
      fontWeight={'bold' in font ? 600 : undefined}
      fill={box.warn ? '#c53030' : INK[box.kind]}
    >
      {box.lines.map((line, i) => (
        <tspan key={i} x={box.x} dy={i ? lineHeight(font) : 0}>
          {line}
        </tspan>
      ))}
    </text>
  );
}

export function TopologyDiagram({ input, title, testId = 'topology' }: { input: DiagramInput; title: string; testId?: string }) {
  const l = layoutHerd(input, formatBytes);
  const at = new Map(l.nodes.map((n) => [n.member.id, n]));
  const arrow = `url(#${testId}-arrow)`;
  return (
    <figure className="topology-diagram" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${l.width} ${l.height}`} width={l.width} height={l.height} role="img" aria-label={title}>
        <defs>
          <marker id={`${testId}-arrow`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" fill="#666" />
          </marker>
        </defs>
        {l.edges.map((e) => (
          <g
            key={`${e.from}-${e.to}`}
            className="edge"
            data-edge={`${at.get(e.from)?.member.label ?? ''} -> ${at.get(e.to)?.member.label ?? ''}`}
          >
            <polyline points={points(e.points)} fill="none" stroke="#666" strokeWidth={1.5} markerEnd={arrow} />
            <Label box={e.text} />
          </g>
        ))}
        {l.poolers.map((p) => (
          <g
            key={p.label}
            className="pooler"
            data-pooler={p.label}
            data-points-at={p.memberId === null ? '' : (at.get(p.memberId)?.member.label ?? '')}
          >
            <rect x={p.x} y={p.y} width={p.width} height={p.height} rx={4} fill="#fdf6e3" stroke="#b7791f" />
            <Label box={p.text} />
            {p.points.length > 0 && (
              <polyline points={points(p.points)} fill="none" stroke="#b7791f" strokeDasharray="4 3" markerEnd={arrow} />
            )}
          </g>
        ))}
        {l.nodes.map((n) => {
          const m = n.member;
          const role = m.role ?? 'unknown';
          return (
            <g
              key={m.id}
              className="member"
              data-member={m.label}
              data-role={role}
              data-state={m.state}
              data-upstream={m.upstreamId === null ? '' : (at.get(m.upstreamId)?.member.label ?? '')}
              data-dns={n.dns.join(' ')}
            >
              <rect
                x={n.x}
                y={n.y}
                width={l.box.width}
                height={l.box.height}
                rx={6}
                fill={n.marked ? '#fff5f5' : (FILL[role] ?? '#fff')}
                stroke={n.marked ? '#c53030' : role === 'primary' ? '#417690' : '#999'}
                strokeWidth={role === 'primary' ? 2.5 : 1.5}
                strokeDasharray={n.marked ? '6 3' : undefined}
              />
              {n.texts.map((t, i) => (
                <Label key={i} box={t} />
              ))}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
