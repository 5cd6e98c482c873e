import Link from 'next/link';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ResultTable } from '@/components/tables/result-table';
import { requireAccess } from '@/lib/features/auth/session';
import { listWaiting } from '@/lib/features/operations/approvals';

export const dynamic = 'force-dynamic';

const when = (iso: string | null) => (iso ? `${iso.replace('T', ' ').slice(0, 16)} UTC` : '');

/**
 * What awaits approval where the reader sees every environment of it (docs/approvals.md), the soonest to
 * expire first; ?mine=1: only what they may decide on now. Each one's page has the plan and the buttons.
 */
export default async function ApprovalsPage({ searchParams }: { searchParams: Promise<{ mine?: string }> }) {
  const access = await requireAccess();
  const mine = (await searchParams).mine === '1';
  const items = await listWaiting(getDb(), { id: access.userId, username: access.username, access }, mine);
  return (
    <>
      <Breadcrumbs items={[{ label: 'Approvals' }]} />
      <h1>Awaiting approval</h1>
      <p className="help">
        Operations confirmed by one person that wait for another&apos;s approval: nothing of them is queued and no herd is held until then.{' '}
        {mine ? <Link href="/approvals">Show all of them</Link> : <Link href="/approvals?mine=1">Show only what I may decide on</Link>}.
      </p>
      <ResultTable
        testId="approvals"
        rows={items}
        rowKey={(w) => w.id}
        rowData={(w) => ({ operation: w.id, yours: w.yours ? 'yes' : 'no' })}
        empty={mine ? 'Nothing waits for your approval.' : 'Nothing awaits approval.'}
        columns={[
          {
            header: 'Operation',
            cell: (w) => (
              <Link prefetch={false} href={`/operations/${String(w.id)}`}>
                {w.action} #{w.id}
              </Link>
            ),
          },
          { header: 'Asked by', cell: (w) => w.requestedBy },
          { header: 'Environments', cell: (w) => w.environments.join(', ') },
          { header: 'Approvals', cell: (w) => `${String(w.approvals)} of ${String(w.required)}` },
          { header: 'Asked', cell: (w) => when(w.createdAt) },
          { header: 'Expires', cell: (w) => when(w.expiresAt) },
          { header: 'Yours to decide', cell: (w) => (w.yours ? 'yes' : '') },
        ]}
      />
    </>
  );
}
