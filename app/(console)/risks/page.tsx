import Link from 'next/link';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ResultTable } from '@/components/tables/result-table';
import { requireAccess } from '@/lib/features/auth/session';
import { can, environmentsWith, visibleEnvironments } from '@/lib/engine/access';
import { risksPageView, type RisksSearch } from '@/lib/features/risks/page-view';
import { acknowledgeRiskAction, unacknowledgeRiskAction } from './actions';

export const dynamic = 'force-dynamic';

const when = (d: Date) => d.toISOString().replace('T', ' ').slice(0, 16);

/**
 * The fleet's risks: what is going wrong slowly (wraparound, slots, disks, certificates, a herd's shape,
 * versions), each with its measure, trend and fix, critical first; filtered by environment, severity and
 * kind; acknowledged by an operator with a reason and an expiry.
 */
export default async function RisksPage({ searchParams }: { searchParams: Promise<RisksSearch> }) {
  const access = await requireAccess();
  const db = getDb();
  const envs = await visibleEnvironments(db, access);
  const v = await risksPageView(db, environmentsWith(access, 'viewer'), envs, await searchParams);
  return (
    <>
      <Breadcrumbs items={[{ label: 'Risks' }]} />
      <h1>Risks</h1>
      <p className="help">
        What will page someone later if nobody looks now, found from what the refresh and the agents read: {v.summary}. Thresholds are per
        environment (docs/risks.md). An acknowledged risk stops counting until it expires, gets worse by its step, or turns critical.
        {v.ignored.length ? ` Not judged: ${v.ignored.join('; ')} (the environment's risk thresholds).` : ''}
      </p>
      <nav className="filters" aria-label="Filters" data-testid="risk-filters">
        {v.facets.map((f) => (
          <p key={f.name}>
            <strong>{f.label}:</strong>{' '}
            {f.options.map((o, i) => (
              <span key={o.label}>
                {i ? ' · ' : ''}
                {o.selected ? <strong>{o.label}</strong> : <Link href={o.href}>{o.label}</Link>}
              </span>
            ))}
          </p>
        ))}
      </nav>
      <ResultTable
        testId="risks"
        rows={v.rows}
        rowKey={(r) => r.id}
        rowData={(r) => ({ kind: r.kind, severity: r.severity, subject: r.subject, counted: r.counted ? 'yes' : 'no' })}
        rowClass={(r) => (r.counted ? `risk-${r.severity}` : 'risk-acknowledged')}
        empty="No risks here."
        columns={[
          { header: 'Severity', cell: (r) => r.severity },
          { header: 'Kind', cell: (r) => r.kindLabel },
          {
            header: 'Where',
            cell: (r) => (
              <>
                {r.environment}/{r.herdId !== null ? <Link href={`/herds/${String(r.herdId)}`}>{r.herd}</Link> : '—'}
                {r.instance ? ` (${r.instance})` : ''}
              </>
            ),
          },
          { header: 'What', cell: (r) => r.detail },
          { header: 'Measure', cell: (r) => r.measureText },
          { header: 'Trend', cell: (r) => r.trendText },
          { header: 'Since', cell: (r) => when(r.since) },
          {
            header: 'Fix',
            title: (r) => r.fix.how,
            cell: (r) =>
              r.fix.href ? (
                <Link href={r.fix.href}>{r.fix.label}…</Link>
              ) : (
                <span title={r.fix.how}>
                  {r.fix.label}: {r.fix.how}
                </span>
              ),
          },
          {
            header: 'Acknowledged',
            cell: (r) =>
              r.acknowledged ? (
                <>
                  {r.acknowledged.by} until {when(r.acknowledged.until)}: {r.acknowledged.reason}
                  {r.counted ? ' (counts again: worse past its step, expired or critical)' : ''}
                  {can(access, 'operator', r.environmentId) ? (
                    <form action={unacknowledgeRiskAction}>
                      <input type="hidden" name="id" value={r.id} />
                      <button type="submit">Take back</button>
                    </form>
                  ) : null}
                </>
              ) : can(access, 'operator', r.environmentId) ? (
                <form action={acknowledgeRiskAction} className="inline-form" data-testid={`ack-${String(r.id)}`}>
                  <input type="hidden" name="id" value={r.id} />
                  <input name="reason" required minLength={3} maxLength={500} placeholder="why" aria-label="Reason" />
                  <input name="hours" type="number" required min={1} max={2160} defaultValue={24} aria-label="Hours" />
                  <input name="step" type="number" min={0} step="any" placeholder={`worse by (${r.unit || 'measure'})`} aria-label="Step" />
                  <button type="submit">Acknowledge</button>
                </form>
              ) : (
                '—'
              ),
          },
        ]}
      />
    </>
  );
}
