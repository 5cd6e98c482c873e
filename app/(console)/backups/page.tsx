import Link from 'next/link';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { requireAccess } from '@/lib/features/auth/session';
import { chooseEnvironment } from '@/lib/features/auth/environment-choice';
import { EnvironmentTabs } from '@/components/fleet/environment-tabs';
import { recoverabilityScorecard, restoreDrillMaxAgeDays } from '@/lib/features/backups/scorecard';
import { ResultTable } from '@/components/tables/result-table';

export const dynamic = 'force-dynamic';

const seconds = (ms: number | null | undefined) => (ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);
const when = (d: Date | null | undefined) => (d ? d.toISOString().replace('T', ' ').slice(0, 16) : '—');

/**
 * The recoverability scorecard: per environment the user may see, each herd's standing as a restore would
 * find it (protected, or what needs a look), its last restore drill with RTO and RPO, its last full backup.
 */
export default async function RecoverabilityPage({ searchParams }: { searchParams: Promise<{ environment?: string }> }) {
  const access = await requireAccess();
  const db = getDb();
  const choice = await chooseEnvironment(db, access, (await searchParams).environment);
  const env = choice.chosen;
  const rows = env ? await recoverabilityScorecard(db, env.id) : [];
  const attention = rows.filter((r) => r.verdict !== 'protected').length;
  return (
    <>
      <Breadcrumbs items={[{ label: 'Recoverability' }]} />
      <h1>Recoverability{env ? `: ${env.name}` : ''}</h1>
      <EnvironmentTabs choice={choice} href={(id) => `/backups?environment=${String(id)}`} />
      <p className="help">
        A restore drill restores the latest backup and the archive onto a scratch server, verifies the repository, checks the restored
        cluster and finds the marker it wrote, measures RTO (to the first accepted write) and RPO, and takes it away. A herd is protected
        when its last drill passed within {restoreDrillMaxAgeDays()} days (PGHERD_RESTORE_DRILL_MAX_AGE_DAYS) and its archive is healthy.{' '}
        {attention} of {rows.length} herds need a look. See <Link href="/admin/backup-policies">backup policies</Link>.
      </p>
      <ResultTable
        testId="recoverability-scorecard"
        rows={rows}
        rowKey={(r) => r.herdId}
        rowData={(r) => ({ herd: r.herd, verdict: r.verdict })}
        empty="No herds here."
        columns={[
          { header: 'Herd', cell: (r) => <Link href={`/herds/${String(r.herdId)}`}>{r.herd}</Link> },
          {
            header: 'Standing',
            title: (r) => r.last?.cause ?? '',
            cell: (r) => `${r.verdict}${r.verdict === 'drill failed' && r.last?.cause ? `: ${r.last.cause}` : ''}`,
          },
          {
            header: 'Last drill',
            cell: (r) =>
              r.last?.operationId ? (
                <Link href={`/operations/${String(r.last.operationId)}`}>
                  {when(r.last.finishedAt)} ({r.last.ok ? 'passed' : 'failed'})
                </Link>
              ) : (
                when(r.last?.finishedAt)
              ),
          },
          { header: 'RTO', cell: (r) => seconds(r.last?.rtoMs) },
          { header: 'RPO', cell: (r) => seconds(r.last?.rpoMs) },
          { header: 'Last full backup', cell: (r) => when(r.lastFull) },
        ]}
      />
    </>
  );
}
