import Link from 'next/link';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { requireAccess } from '@/lib/features/auth/session';
import { chooseEnvironment } from '@/lib/features/auth/environment-choice';
import { EnvironmentTabs } from '@/components/fleet/environment-tabs';
import { drillMaxAgeDays, drScorecard, type DrillVerdict } from '@/lib/features/dr/scorecard';
import { ResultTable } from '@/components/tables/result-table';

export const dynamic = 'force-dynamic';

const VERDICT: Record<DrillVerdict, string> = {
  ok: 'drilled',
  never: 'never drilled',
  failed: 'last drill failed',
  stale: 'last drill too old',
  'no-dr-member': 'cannot be drilled',
};

const ms = (n: number | null) => (n === null ? '—' : `${String(n)} ms`);

/**
 * The DR scorecard: per environment the user may see, each herd's last DR drill and its figures, and
 * the herds never drilled, whose last drill failed, or is too old.
 */
export default async function DrScorecardPage({ searchParams }: { searchParams: Promise<{ environment?: string }> }) {
  const access = await requireAccess();
  const db = getDb();
  const choice = await chooseEnvironment(db, access, (await searchParams).environment);
  const env = choice.chosen;
  const rows = env ? await drScorecard(db, env.id) : [];
  const attention = rows.filter((r) => r.verdict !== 'ok').length;
  return (
    <>
      <Breadcrumbs items={[{ label: 'DR scorecard' }]} />
      <h1>DR scorecard{env ? `: ${env.name}` : ''}</h1>
      <EnvironmentTabs choice={choice} href={(id) => `/dr?environment=${String(id)}`} />
      <p className="help">
        A DR drill switches a herd over to its member in another site under a writer, measures, and switches back. A drill older than{' '}
        {drillMaxAgeDays()} days (PGHERD_DR_DRILL_MAX_AGE_DAYS) needs another. {attention} of {rows.length} herds need a look.
      </p>
      <ResultTable
        testId="dr-scorecard"
        rows={rows}
        rowKey={(r) => r.herdId}
        rowData={(r) => ({ herd: r.herd, verdict: r.verdict })}
        empty="No herds here."
        columns={[
          { header: 'Herd', cell: (r) => <Link href={`/admin/herds/${String(r.herdId)}`}>{r.herd}</Link> },
          { header: 'Sites', cell: (r) => r.sites.join(', ') || '—' },
          {
            header: 'Verdict',
            title: (r) => r.note,
            cell: (r) => `${VERDICT[r.verdict]}${r.note && r.verdict !== 'ok' && r.verdict !== 'never' ? `: ${r.note}` : ''}`,
          },
          {
            header: 'Last drill',
            cell: (r) =>
              r.last ? (
                <Link href={`/operations/${String(r.last.operationId)}`}>
                  {r.last.finishedAt.replace('T', ' ').slice(0, 16)} ({r.last.status})
                </Link>
              ) : (
                '—'
              ),
          },
          { header: 'DR member', cell: (r) => (r.last?.candidate ? `${r.last.candidate} (${r.last.candidateSite ?? '?'})` : '—') },
          { header: 'First write', cell: (r) => ms(r.last?.firstWriteMs ?? null) },
          { header: 'Longest gap', cell: (r) => ms(r.last?.longestGapMs ?? null) },
          {
            header: 'Commits (lost)',
            cell: (r) => (r.last?.acknowledged === null || !r.last ? '—' : `${String(r.last.acknowledged)} (${String(r.last.lost ?? 0)})`),
          },
        ]}
      />
    </>
  );
}
