import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ResultTable } from '@/components/tables/result-table';
import { formatValue } from '@/lib/features/admin/format';
import { currentActor } from '@/lib/features/auth/actor';
import { parseId } from '@/lib/adapters/validation/ids';
import { deliveriesOf, manageableWebhook } from '@/lib/features/rules/webhooks';

export const dynamic = 'force-dynamic';

const textOf = (payload: unknown) => {
  const text = (payload as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : '';
};

/** A webhook's last 100 deliveries: what was sent, how many attempts, the last answer. */
export default async function WebhookPage({ params }: { params: Promise<{ id: string }> }) {
  const who = await currentActor();
  const id = parseId((await params).id);
  if (id === null) notFound();
  const db = getDb();
  const w = await manageableWebhook(db, who, id).catch(() => null);
  if (!w) notFound();
  const list = await deliveriesOf(db, w.id);
  return (
    <>
      <Breadcrumbs items={[{ label: 'Rules', href: '/rules' }, { label: 'Webhooks', href: '/rules/webhooks' }, { label: w.name }]} />
      <h1>{w.name}</h1>
      <p>
        {w.url} · {w.events.join(', ')}
      </p>
      <ResultTable
        testId="deliveries"
        rows={list}
        rowKey={(d) => d.id}
        rowData={(d) => ({ delivery: d.id })}
        empty="Nothing sent yet."
        columns={[
          { header: 'Delivery', cell: (d) => `#${String(d.id)}` },
          { header: 'Event', cell: (d) => d.event },
          {
            header: 'Status',
            cell: (d) => (
              <>
                <span className={`badge badge-${d.status}`}>{d.status}</span>
                {d.nextAttemptAt ? ` (next ${formatValue('datetime', d.nextAttemptAt)})` : ''}
              </>
            ),
          },
          { header: 'Attempts', cell: (d) => d.attempts },
          { header: 'Last answer', cell: (d) => d.error ?? (d.responseStatus === null ? '—' : String(d.responseStatus)) },
          { header: 'Made', cell: (d) => formatValue('datetime', d.createdAt) },
          { header: 'Text', cell: (d) => textOf(d.payload) },
        ]}
      />
    </>
  );
}
