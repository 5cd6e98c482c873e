'use client';
// The dashboard's history (Recharts): the fleet by state and by role over the last day (stacked, each
// half hour's last sample), operations by how they ended over the last week.
import { Area, AreaChart, Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { FleetHistory } from '@/lib/fleet/lag-history';

const STATE_COLOURS: Record<string, string> = {
  running: '#48bb78',
  stopped: '#a0aec0',
  unreachable: '#ed8936',
  fenced: '#e53e3e',
  needs_rebuild: '#d53f8c',
};
const ROLE_COLOURS: Record<string, string> = { primary: '#417690', replica: '#79aec8', unknown: '#cbd5e0' };
const OUTCOME_COLOURS: Record<string, string> = {
  succeeded: '#48bb78',
  partial: '#ecc94b',
  failed: '#e53e3e',
  cancelled: '#a0aec0',
  interrupted: '#ed8936',
  preempted: '#9f7aea',
};

const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);

function Stacked({
  h,
  by,
  colours,
  title,
  testId,
}: {
  h: FleetHistory;
  by: 'byState' | 'byRole';
  colours: Record<string, string>;
  title: string;
  testId: string;
}) {
  const keys = [...new Set(h.points.flatMap((p) => Object.keys(p[by])))].sort(
    (a, b) => Object.keys(colours).indexOf(a) - Object.keys(colours).indexOf(b),
  );
  const data = h.points.map((p) => ({ t: p.t, ...p[by] }));
  const last = h.points.at(-1);
  return (
    <section className="module fleet-chart" data-testid={testId} data-last={last ? JSON.stringify(last[by]) : ''}>
      <h2>{title}</h2>
      {data.length === 0 ? (
        <p className="muted">No sample yet: a worker samples the fleet every minute.</p>
      ) : (
        <ResponsiveContainer width="100%" height={200}>
          <AreaChart data={data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
            <XAxis dataKey="t" type="number" scale="time" domain={[h.from, h.to]} tickFormatter={hhmm} />
            <YAxis allowDecimals={false} width={40} />
            <Tooltip labelFormatter={(t) => `${hhmm(Number(t))} UTC`} />
            <Legend />
            {keys.map((k) => (
              <Area
                key={k}
                type="stepAfter"
                dataKey={k}
                stackId="1"
                stroke={colours[k] ?? '#888'}
                fill={colours[k] ?? '#888'}
                isAnimationActive={false}
              />
            ))}
          </AreaChart>
        </ResponsiveContainer>
      )}
    </section>
  );
}

export function FleetCharts({ history }: { history: FleetHistory }) {
  const outcomes = Object.keys(OUTCOME_COLOURS);
  const ops = history.operations.map((d) => ({ day: d.day.slice(5), ...d.byStatus }));
  return (
    <div className="dashboard-charts">
      <Stacked h={history} by="byState" colours={STATE_COLOURS} title="Instances by state, last day" testId="fleet-by-state" />
      <Stacked h={history} by="byRole" colours={ROLE_COLOURS} title="Instances by role, last day" testId="fleet-by-role" />
      <section className="module fleet-chart" data-testid="operations-by-outcome" data-days={JSON.stringify(history.operations)}>
        <h2>Operations by outcome, last week</h2>
        <ResponsiveContainer width="100%" height={200}>
          <BarChart data={ops} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
            <XAxis dataKey="day" />
            <YAxis allowDecimals={false} width={40} />
            <Tooltip />
            <Legend />
            {outcomes.map((k) => (
              <Bar key={k} dataKey={k} stackId="o" fill={OUTCOME_COLOURS[k]} isAnimationActive={false} />
            ))}
          </BarChart>
        </ResponsiveContainer>
      </section>
    </div>
  );
}
