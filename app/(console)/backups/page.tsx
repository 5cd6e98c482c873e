import Link from 'next/link';
import { inArray } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { environments } from '@/db/schema';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { environmentsWith } from '@/lib/engine/access';
import { requireAccess } from '@/lib/features/auth/session';
import { parseId } from '@/lib/adapters/validation/ids';
import { recoverabilityScorecard, restoreDrillMaxAgeDays } from '@/lib/features/backups/scorecard';

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
  const visible = environmentsWith(access, 'viewer');
  const envs = await db
    .select({ id: environments.id, name: environments.name })
    .from(environments)
    .where(visible === null ? undefined : inArray(environments.id, visible.length ? visible : [-1]))
    .orderBy(environments.name);
  const asked = (await searchParams).environment;
  const wanted = asked === undefined ? null : parseId(asked);
  const env = envs.find((e) => e.id === wanted) ?? envs[0];
  const rows = env ? await recoverabilityScorecard(db, env.id) : [];
  const attention = rows.filter((r) => r.verdict !== 'protected').length;
  return (
    <>
      <Breadcrumbs items={[{ label: 'Recoverability' }]} />
      <h1>Recoverability{env ? `: ${env.name}` : ''}</h1>
      <p>
        {envs.map((e, k) => (
          <span key={e.id}>
            {k > 0 && ' · '}
            {e.id === env?.id ? <strong>{e.name}</strong> : <Link href={`/backups?environment=${String(e.id)}`}>{e.name}</Link>}
          </span>
        ))}
      </p>
      <p className="help">
        A restore drill restores the latest backup and the archive onto a scratch server, verifies the repository, checks the restored
        cluster and finds the marker it wrote, measures RTO (to the first accepted write) and RPO, and takes it away. A herd is protected
        when its last drill passed within {restoreDrillMaxAgeDays()} days (PGHERD_RESTORE_DRILL_MAX_AGE_DAYS) and its archive is healthy.{' '}
        {attention} of {rows.length} herds need a look. See <Link href="/admin/backup-policies">backup policies</Link>.
      </p>
      <table className="result-list" data-testid="recoverability-scorecard">
        <thead>
          <tr>
            <th scope="col">Herd</th>
            <th scope="col">Standing</th>
            <th scope="col">Last drill</th>
            <th scope="col">RTO</th>
            <th scope="col">RPO</th>
            <th scope="col">Last full backup</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && (
            <tr>
              <td colSpan={6}>No herds here.</td>
            </tr>
          )}
          {rows.map((r) => (
            <tr key={r.herdId} data-herd={r.herd} data-verdict={r.verdict}>
              <td>
                <Link href={`/herds/${String(r.herdId)}`}>{r.herd}</Link>
              </td>
              <td title={r.last?.cause ?? ''}>
                {r.verdict}
                {r.verdict === 'drill failed' && r.last?.cause ? `: ${r.last.cause}` : ''}
              </td>
              <td>
                {r.last?.operationId ? (
                  <Link href={`/operations/${String(r.last.operationId)}`}>
                    {when(r.last.finishedAt)} ({r.last.ok ? 'passed' : 'failed'})
                  </Link>
                ) : (
                  when(r.last?.finishedAt)
                )}
              </td>
              <td>{seconds(r.last?.rtoMs)}</td>
              <td>{seconds(r.last?.rpoMs)}</td>
              <td>{when(r.lastFull)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
