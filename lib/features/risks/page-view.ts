// The Risks page's view model: the filters from the address (a bad value falls back to none), the rows
// with their measure and trend in words, and the facets as links.
import { sql } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { ignoredKinds } from '@/lib/fleet/risks/thresholds';
import { KIND_INFO, RISK_KINDS, type RiskKind, type Severity } from './find';
import { isRiskKind, listRisks, riskCounts, type RiskFilters, type RiskView } from './view';

export interface RisksSearch {
  environment?: string;
  severity?: string;
  kind?: string;
  counted?: string;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
export function measureText(measure: number, unit: string): string {
  if (unit === 'bytes') return measure >= GiB ? `${(measure / GiB).toFixed(1)} GiB` : `${(measure / MiB).toFixed(1)} MiB`;
  if (unit === 'seconds') return measure >= 3600 ? `${(measure / 3600).toFixed(1)} h` : `${Math.round(measure)} s`;
  if (unit === 'days') return `${measure.toFixed(1)} days`;
  return `${Math.round(measure).toLocaleString('en-US')}${unit ? ` ${unit}` : ''}`;
}

const trendText = (r: RiskView) =>
  r.trend.direction === 'new' || r.trend.perDay === null
    ? 'new'
    : `${r.trend.direction} (${r.trend.perDay >= 0 ? '+' : '−'}${measureText(Math.abs(r.trend.perDay), r.unit)} a day)`;

export async function risksPageView(db: Queries, scope: number[] | null, envs: { id: number; name: string }[], q: RisksSearch) {
  const environment = envs.find((e) => String(e.id) === q.environment)?.id;
  const severity: Severity | undefined = q.severity === 'warning' || q.severity === 'critical' ? q.severity : undefined;
  const kind: RiskKind | undefined = q.kind && isRiskKind(q.kind) ? q.kind : undefined;
  const counted = q.counted === '1' ? true : q.counted === '0' ? false : undefined;
  const filters: RiskFilters = { environment, severity, kind, counted };
  const rows = (await listRisks(db, scope, filters)).map((r) => ({
    ...r,
    measureText: measureText(r.measure, r.unit),
    trendText: trendText(r),
  }));
  const counts = await riskCounts(db, environment === undefined ? scope : [environment]);
  const n = (s: Severity) => counts.filter((c) => c.severity === s).reduce((a, c) => a + c.count, 0);
  const acked = counts.reduce((a, c) => a + c.acknowledged, 0);
  const base = { environment: q.environment, severity: q.severity, kind: q.kind, counted: q.counted };
  const href = (over: Partial<RisksSearch>) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...base, ...over })) if (v) p.set(k, v);
    const s = p.toString();
    return s ? `/risks?${s}` : '/risks';
  };
  const facet = (name: keyof RisksSearch, label: string, options: { value: string | undefined; label: string }[]) => ({
    name,
    label,
    options: options.map((o) => ({ label: o.label, href: href({ [name]: o.value }), selected: (base[name] || undefined) === o.value })),
  });
  const own = envs.length
    ? await db.execute<{ name: string; t: Record<string, unknown> }>(sql`
        SELECT name, risk_thresholds AS t FROM environments WHERE id = ANY(${sql.param(envs.map((e) => e.id))}::int[]) ORDER BY name`)
    : { rows: [] };
  const ignored = own.rows.flatMap((e) => {
    const k = [...ignoredKinds(e.t)];
    return k.length ? [`${e.name} ignores ${k.join(', ')}`] : [];
  });
  return {
    rows,
    ignored,
    summary: `${String(n('critical'))} critical and ${String(n('warning'))} warnings count now, ${String(acked)} acknowledged`,
    facets: [
      facet('environment', 'Environment', [
        { value: undefined, label: 'All' },
        ...envs.map((e) => ({ value: String(e.id), label: e.name })),
      ]),
      facet('severity', 'Severity', [
        { value: undefined, label: 'All' },
        { value: 'critical', label: 'Critical' },
        { value: 'warning', label: 'Warning' },
      ]),
      facet('kind', 'Kind', [{ value: undefined, label: 'All' }, ...RISK_KINDS.map((k) => ({ value: k, label: KIND_INFO[k].label }))]),
      facet('counted', 'Counted', [
        { value: undefined, label: 'All' },
        { value: '1', label: 'Counting' },
        { value: '0', label: 'Acknowledged' },
      ]),
    ],
  };
}
