// A herd drawn as SVG (laid out by lib/fleet/herds/diagram.ts): each member a box with its site, role and
// state, replication as arrows from upstream to replica labelled with the lag, DNS names on the members
// they answer, PgBouncers above the member they point at. Fenced and needs-rebuild members are marked.
// Plain SVG from the server: no script, no external service.
import { layoutHerd, NODE, type DiagramInput } from '@/lib/fleet/herds/diagram';
import { formatBytes } from '@/lib/adapters/format/units';

const FILL: Record<string, string> = { primary: '#e6f0f5', replica: '#f6f6f6', unknown: '#fff' };

export function TopologyDiagram({ input, title, testId = 'topology' }: { input: DiagramInput; title: string; testId?: string }) {
  const l = layoutHerd(input, formatBytes);
  const at = new Map(l.nodes.map((n) => [n.member.id, n]));
  return (
    <figure className="topology-diagram" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${l.width} ${l.height}`} width={l.width} height={l.height} role="img" aria-label={title}>
        <defs>
          <marker id={`${testId}-arrow`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" fill="#666" />
          </marker>
        </defs>
        {l.edges.map((e) => {
          const a = at.get(e.from);
          const b = at.get(e.to);
          if (!a || !b) return null;
          const x1 = a.x + NODE.width / 2;
          const y1 = a.y + NODE.height;
          const x2 = b.x + NODE.width / 2;
          const y2 = b.y;
          return (
            <g key={`${e.from}-${e.to}`} className="edge" data-edge={`${a.member.label} -> ${b.member.label}`}>
              <line x1={x1} y1={y1} x2={x2} y2={y2 - 2} stroke="#666" strokeWidth={1.5} markerEnd={`url(#${testId}-arrow)`} />
              <text x={(x1 + x2) / 2 + 6} y={(y1 + y2) / 2} fontSize={11} fill="#444">
                {e.label}
              </text>
            </g>
          );
        })}
        {l.poolers.map((p) => {
          const target = p.memberId === null ? undefined : at.get(p.memberId);
          return (
            <g key={p.label} className="pooler" data-pooler={p.label} data-points-at={target?.member.label ?? ''}>
              <rect x={p.x} y={p.y} width={NODE.width} height={26} rx={4} fill="#fdf6e3" stroke="#b7791f" />
              <text x={p.x + 8} y={p.y + 17} fontSize={12}>
                PgBouncer {p.label}
              </text>
              {target && (
                <line
                  x1={p.x + NODE.width / 2}
                  y1={p.y + 26}
                  x2={target.x + NODE.width / 2}
                  y2={target.y - (target.dns.length ? 18 : 2)}
                  stroke="#b7791f"
                  strokeDasharray="4 3"
                  markerEnd={`url(#${testId}-arrow)`}
                />
              )}
            </g>
          );
        })}
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
              {n.dns.length > 0 && (
                <text x={n.x} y={n.y - 6} fontSize={11} fill={n.dnsOk ? '#2f855a' : '#c53030'}>
                  {n.dnsOk ? '' : '! '}
                  {n.dns.join(', ')}
                </text>
              )}
              <rect
                x={n.x}
                y={n.y}
                width={NODE.width}
                height={NODE.height}
                rx={6}
                fill={n.marked ? '#fff5f5' : (FILL[role] ?? '#fff')}
                stroke={n.marked ? '#c53030' : role === 'primary' ? '#417690' : '#999'}
                strokeWidth={role === 'primary' ? 2.5 : 1.5}
                strokeDasharray={n.marked ? '6 3' : undefined}
              />
              <text x={n.x + 10} y={n.y + 20} fontSize={13} fontWeight={600}>
                {m.label.length > 28 ? `${m.label.slice(0, 27)}\u2026` : m.label}
              </text>
              <text x={n.x + 10} y={n.y + 39} fontSize={12} fill="#444">
                {role}, {m.state.replace('_', ' ')}
              </text>
              <text x={n.x + 10} y={n.y + 57} fontSize={11} fill="#666">
                site {m.site || '\u2014'}
                {n.marked === 'fenced' ? ' \u00b7 FENCED' : n.marked === 'needs_rebuild' ? ' \u00b7 NEEDS REBUILD' : ''}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
