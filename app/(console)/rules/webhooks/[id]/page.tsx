import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
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
      <table className="result-list" data-testid="deliveries">
        <thead>
          <tr>
            <th scope="col">Delivery</th>
            <th scope="col">Event</th>
            <th scope="col">Status</th>
            <th scope="col">Attempts</th>
            <th scope="col">Last answer</th>
            <th scope="col">Made</th>
            <th scope="col">Text</th>
          </tr>
        </thead>
        <tbody>
          {list.length === 0 && (
            <tr>
              <td colSpan={7}>Nothing sent yet.</td>
            </tr>
          )}
          {list.map((d) => (
            <tr key={d.id} data-delivery={d.id}>
              <td>#{d.id}</td>
              <td>{d.event}</td>
              <td>
                <span className={`badge badge-${d.status}`}>{d.status}</span>
                {d.nextAttemptAt ? ` (next ${formatValue('datetime', d.nextAttemptAt)})` : ''}
              </td>
              <td>{d.attempts}</td>
              <td>{d.error ?? (d.responseStatus === null ? '—' : String(d.responseStatus))}</td>
              <td>{formatValue('datetime', d.createdAt)}</td>
              <td>{textOf(d.payload)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
