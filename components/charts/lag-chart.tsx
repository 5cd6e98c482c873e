'use client';
// A herd's (or an instance's) lag over the last hour, day or week (Recharts), from
// GET /api/v1/{herds|instances}/{id}/lag, with the operations on the herd marked on the time axis.
// Below the chart, the same samples as a table (folded), for reading exact values and copying them.
import { useEffect, useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ReferenceArea, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { formatBytes } from '@/lib/adapters/format/units';
import { ResultTable } from '@/components/tables/result-table';

type Range = 'hour' | 'day' | 'week';

interface History {
  range: Range;
  from: number;
  to: number;
  series: { instanceId: number; label: string; points: { t: number; bytes: number | null; seconds: number | null; state: string }[] }[];
  operations: { id: number; action: string; status: string; requestedBy: string; from: number; to: number | null }[];
}

const RANGES: { key: Range; label: string }[] = [
  { key: 'hour', label: 'Last hour' },
  { key: 'day', label: 'Last day' },
  { key: 'week', label: 'Last week' },
];
const COLOURS = ['#417690', '#c05621', '#2f855a', '#805ad5', '#b7791f', '#c53030', '#2c7a7b', '#4a5568'];

const clock = (range: Range) => (t: number) => {
  const iso = new Date(t).toISOString();
  return range === 'week' ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
};

export function LagChart({ url, refreshSeconds = 30 }: { url: string; refreshSeconds?: number }) {
  const [range, setRange] = useState<Range>('hour');
  const [metric, setMetric] = useState<'bytes' | 'seconds'>('bytes');
  const [data, setData] = useState<History | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    const load = async () => {
      try {
        const res = await fetch(`${url}?range=${range}`, { cache: 'no-store' });
        const body = (await res.json()) as History | { error: string };
        if (!live) return;
        if (!res.ok || 'error' in body) setError('error' in body ? body.error : `HTTP ${res.status}`);
        else {
          setData(body);
          setError(null);
        }
      } catch (err) {
        if (live) setError(err instanceof Error ? err.message : String(err));
      }
    };
    void load();
    const timer = setInterval(() => void load(), refreshSeconds * 1000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [url, range, refreshSeconds]);

  const tick = clock(range);
  const lagged = data?.series.filter((s) => s.points.some((p) => p[metric] !== null)) ?? [];
  return (
    <div className="module lag-chart" data-testid="lag-chart" data-range={range}>
      <h2>Lag</h2>
      <div className="chart-controls">
        {RANGES.map((r) => (
          <button
            key={r.key}
            type="button"
            className={r.key === range ? 'button selected' : 'button'}
            aria-pressed={r.key === range}
            onClick={() => setRange(r.key)}
          >
            {r.label}
          </button>
        ))}
        <span className="chart-sep" />
        {(['bytes', 'seconds'] as const).map((m) => (
          <button
            key={m}
            type="button"
            className={m === metric ? 'button selected' : 'button'}
            aria-pressed={m === metric}
            onClick={() => setMetric(m)}
          >
            {m === 'bytes' ? 'Bytes' : 'Seconds'}
          </button>
        ))}
      </div>
      {error && (
        <p className="errornote" role="alert">
          The lag history could not be read: {error}
        </p>
      )}
      {data && lagged.length === 0 && (
        <p className="muted">
          No replica was sampled in this range (samples are taken every minute from what the refresher and the agents observe).
        </p>
      )}
      {data && lagged.length > 0 && (
        <div className="chart-box">
          <ResponsiveContainer width="100%" height={260}>
            <LineChart margin={{ top: 16, right: 24, bottom: 4, left: 8 }}>
              <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
              <XAxis
                dataKey="t"
                type="number"
                scale="time"
                domain={[data.from, data.to]}
                tickFormatter={tick}
                allowDuplicatedCategory={false}
              />
              <YAxis
                width={72}
                tickFormatter={(v: number) => (metric === 'bytes' ? formatBytes(v) : `${v.toFixed(1)} s`)}
                domain={[0, 'auto']}
              />
              <Tooltip
                labelFormatter={(t) => new Date(Number(t)).toISOString().replace('T', ' ').slice(0, 19) + ' UTC'}
                formatter={(v) => (typeof v === 'number' ? (metric === 'bytes' ? formatBytes(v) : `${v.toFixed(1)} s`) : String(v))}
              />
              <Legend />
              {data.operations.map((o) => (
                <ReferenceArea
                  key={o.id}
                  x1={Math.max(o.from, data.from)}
                  x2={Math.max(o.to ?? data.to, o.from + 1000)}
                  fill={o.status === 'succeeded' ? '#9ae6b4' : o.status === 'running' ? '#bee3f8' : '#feb2b2'}
                  fillOpacity={0.45}
                  ifOverflow="extendDomain"
                  label={{ value: `#${o.id} ${o.action}`, position: 'insideTopLeft', fontSize: 11 }}
                />
              ))}
              {lagged.map((s, i) => (
                <Line
                  key={s.instanceId}
                  data={s.points}
                  dataKey={metric}
                  name={s.label}
                  className={`lag-line lag-line-${String(s.instanceId)}`}
                  stroke={COLOURS[i % COLOURS.length]}
                  // Recharts draws dots in a layer of their own: named after their line too.
                  dot={s.points.length < 3 ? { r: 3, className: `lag-dot lag-dot-${String(s.instanceId)}` } : false}
                  isAnimationActive={false}
                  connectNulls={false}
                />
              ))}
            </LineChart>
          </ResponsiveContainer>
        </div>
      )}
      {data && (
        <details className="chart-data">
          <summary>
            Samples ({data.series.reduce((n, s) => n + s.points.length, 0)}) and operations ({data.operations.length})
          </summary>
          <ResultTable
            testId="lag-samples"
            rows={data.series.flatMap((s) => s.points.map((p) => ({ s, p })))}
            rowKey={({ s, p }) => `${s.instanceId}-${p.t}`}
            rowData={({ s, p }) => ({ instance: s.label, t: p.t, bytes: p.bytes ?? '' })}
            columns={[
              { header: 'Instance', cell: ({ s }) => s.label },
              { header: 'Time (UTC)', cell: ({ p }) => new Date(p.t).toISOString().replace('T', ' ').slice(0, 19) },
              { header: 'Lag (bytes)', className: 'num', cell: ({ p }) => p.bytes ?? '' },
              { header: 'Lag (s)', className: 'num', cell: ({ p }) => p.seconds?.toFixed(1) ?? '' },
              { header: 'State', cell: ({ p }) => p.state },
            ]}
          />
          <ul data-testid="lag-operations">
            {data.operations.map((o) => (
              <li key={o.id} data-operation={o.id}>
                <a href={`/operations/${o.id}`}>
                  #{o.id} {o.action}
                </a>{' '}
                by {o.requestedBy}: {o.status}, {new Date(o.from).toISOString().slice(11, 19)}
                {o.to ? `\u2013${new Date(o.to).toISOString().slice(11, 19)}` : ', running'} UTC
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}
