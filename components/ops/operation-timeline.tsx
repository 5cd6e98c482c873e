'use client';
// An operation's targets on one time axis (Recharts): a row per target, grouped by wave, one bar per
// step coloured by how it ended, and before its first step how long it waited (queued for its herd's
// lease or a worker; held for its wave). Live with the operation page's polling: a 200-target
// operation read at a glance (what waits, what is slow, what failed).
import { Bar, BarChart, CartesianGrid, Tooltip, XAxis, YAxis, type BarShapeProps } from 'recharts';
import type { OperationView } from '@/lib/engine/operation-view';

const COLOUR: Record<string, string> = {
  succeeded: '#48bb78',
  failed: '#e53e3e',
  running: '#4299e1',
  skipped: '#a0aec0',
  waiting: '#e2e8f0',
  held: '#faf089',
};
const ROW = 18;

interface Segment {
  /** Gap before it (drawn transparent), then its length, in seconds from the operation's start. */
  kind: 'gap' | 'step' | 'waiting' | 'held';
  seconds: number;
  name: string;
  status: string;
}

type Row = { label: string; target: string; status: string; segments: Segment[] } & Record<string, number | string | Segment[]>;

/** Each target as segments along the axis: waiting until its first step, then its steps with the gaps between them. */
export function timelineRows(op: OperationView, now: number): { rows: Row[]; width: number; segments: number } {
  const t0 = Date.parse(op.startedAt ?? op.createdAt);
  const at = (iso: string | null) => (iso ? Date.parse(iso) : now);
  const targets = [...op.targets].sort((a, b) => a.wave - b.wave || a.label.localeCompare(b.label));
  let most = 0;
  let end = t0;
  const rows = targets.map((t) => {
    const segments: Segment[] = [];
    let cursor = t0;
    const steps = [...t.steps].sort((a, b) => a.seq - b.seq);
    const first = steps[0];
    const waitedUntil = first ? Date.parse(first.startedAt) : op.finishedAt ? at(op.finishedAt) : now;
    if (waitedUntil > cursor)
      segments.push({
        kind: t.held && !first ? 'held' : 'waiting',
        seconds: (waitedUntil - cursor) / 1000,
        name: t.held && !first ? 'held: its wave has not started' : 'waiting: queued for its herd\u2019s lease or a worker',
        status: t.held && !first ? 'held' : 'waiting',
      });
    cursor = Math.max(cursor, waitedUntil);
    for (const s of steps) {
      const from = Date.parse(s.startedAt);
      const to = s.finishedAt ? Date.parse(s.finishedAt) : now;
      if (from > cursor) segments.push({ kind: 'gap', seconds: (from - cursor) / 1000, name: '', status: '' });
      segments.push({ kind: 'step', seconds: Math.max(0.05, (to - Math.max(from, cursor)) / 1000), name: s.name, status: s.status });
      cursor = Math.max(cursor, to);
    }
    most = Math.max(most, segments.length);
    end = Math.max(end, cursor);
    const row: Row = {
      label: `${op.waves ? `w${t.wave} ` : ''}${t.label}`,
      target: t.label,
      status: t.status,
      segments,
    };
    segments.forEach((s, i) => (row[`s${i}`] = s.seconds));
    return row;
  });
  return { rows, width: (end - t0) / 1000, segments: most };
}

export function OperationTimeline({ op, now }: { op: OperationView; now: number }) {
  const { rows, width, segments } = timelineRows(op, now);
  if (!rows.length) return null;
  const height = rows.length * ROW + 48;
  return (
    <section className="module operation-timeline" aria-label="Timeline" data-testid="timeline">
      <h2>Timeline</h2>
      <p className="help">
        One row per target{op.waves ? ', by wave' : ''}: a bar per step (
        {Object.entries({
          succeeded: 'succeeded',
          running: 'running',
          failed: 'failed',
          waiting: 'waiting for its herd or a worker',
          held: 'held for its wave',
        }).map(([k, words], i) => (
          <span key={k}>
            {i > 0 && ', '}
            <span className="swatch" style={{ background: COLOUR[k] }} /> {words}
          </span>
        ))}
        ), seconds from the start.
      </p>
      <div className="timeline-box">
        <BarChart
          layout="vertical"
          width={960}
          height={height}
          data={rows}
          barCategoryGap={2}
          margin={{ top: 8, right: 16, bottom: 8, left: 8 }}
        >
          <CartesianGrid horizontal={false} strokeDasharray="3 3" stroke="#ddd" />
          <XAxis type="number" domain={[0, Math.max(1, Math.ceil(width))]} tickFormatter={(s: number) => `${s} s`} orientation="top" />
          <YAxis type="category" dataKey="label" width={260} interval={0} tick={{ fontSize: 11 }} />
          <Tooltip
            cursor={{ fill: 'rgba(0,0,0,0.04)' }}
            content={({ active, payload }) => {
              const p = payload[0];
              if (!active || !p) return null;
              const row = p.payload as Row;
              const i = Number(String(p.dataKey).slice(1));
              const seg = row.segments[i];
              return (
                <div className="timeline-tip">
                  <strong>{row.target}</strong> ({row.status})
                  {seg && seg.kind !== 'gap' && (
                    <div>
                      {seg.name}: {seg.status}, {seg.seconds.toFixed(1)} s
                    </div>
                  )}
                </div>
              );
            }}
          />
          {Array.from({ length: segments }, (_, i) => (
            <Bar
              key={i}
              dataKey={`s${i}`}
              stackId="t"
              isAnimationActive={false}
              shape={(props: BarShapeProps) => {
                const row = props.payload as Row;
                const seg = row.segments[i];
                if (!seg || seg.kind === 'gap') return <g />;
                return (
                  <rect
                    x={props.x}
                    y={props.y}
                    width={Math.max(1, props.width)}
                    height={props.height}
                    fill={COLOUR[seg.status] ?? '#cbd5e0'}
                    stroke="#fff"
                    strokeWidth={0.5}
                    data-target={row.target}
                    data-segment={seg.kind}
                    data-status={seg.status}
                    data-step={seg.kind === 'step' ? seg.name : undefined}
                  />
                );
              }}
            />
          ))}
        </BarChart>
      </div>
    </section>
  );
}
