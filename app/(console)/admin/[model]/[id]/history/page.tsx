import { and, desc, eq } from 'drizzle-orm';
import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { auditEntries } from '@/db/schema';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ChangeSet } from '@/components/admin/change-set';
import { formatValue } from '@/lib/features/admin/format';
import { labelsFor } from '@/lib/features/admin/list-query';
import { objectRoute } from '@/lib/features/admin/object-route';
import { capitalize } from '@/lib/features/admin/text';

/** Read from the audit log, so it still shows a deleted object's last words. */
export default async function HistoryPage({ params }: { params: Promise<{ model: string; id: string }> }) {
  const { def, id } = await objectRoute(params, 'view');
  const db = getDb();
  const entries = await db
    .select()
    .from(auditEntries)
    .where(and(eq(auditEntries.objectType, def.name), eq(auditEntries.objectId, String(id))))
    .orderBy(desc(auditEntries.at), desc(auditEntries.id))
    .limit(500);
  const [obj] = await labelsFor(db, def, [id]);
  // A deleted object is named as its latest entry named it; with neither, there is nothing to show.
  const label = obj?.label ?? entries[0]?.objectLabel;
  if (label === undefined) notFound();
  return (
    <>
      <Breadcrumbs
        items={[
          { label: capitalize(def.labelPlural), href: `/admin/${def.name}` },
          { label, href: obj ? `/admin/${def.name}/${id}` : undefined },
          { label: 'History' },
        ]}
      />
      <h1>Change history: {label}</h1>
      {entries.length === 0 ? (
        <p>This object doesn’t have a change history.</p>
      ) : (
        <table className="history">
          <thead>
            <tr>
              <th scope="col">Date/time</th>
              <th scope="col">User</th>
              <th scope="col">Action</th>
              <th scope="col">Changes</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.id}>
                <td>{formatValue('datetime', e.at)}</td>
                <td>
                  {e.username}
                  {e.remoteAddr ? <span className="muted"> ({e.remoteAddr})</span> : null}
                </td>
                <td>{e.action}</td>
                <td>
                  <ChangeSet changes={e.changes} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
