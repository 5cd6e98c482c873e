import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { DeleteConfirmation } from '@/components/admin/delete-confirmation';
import { collectForDelete } from '@/lib/features/admin/collect';
import { labelsFor } from '@/lib/features/admin/list-query';
import { objectRoute } from '@/lib/features/admin/object-route';
import { capitalize } from '@/lib/features/admin/text';
import { deleteAction } from '../../../actions';

export default async function DeletePage({ params }: { params: Promise<{ model: string; id: string }> }) {
  const { def, id } = await objectRoute(params, 'delete');
  const db = getDb();
  const [obj] = await labelsFor(db, def, [id]);
  if (!obj) notFound();
  const collected = await collectForDelete(db, def, [id]);
  return (
    <>
      <Breadcrumbs
        items={[
          { label: capitalize(def.labelPlural), href: `/admin/${def.name}` },
          { label: obj.label, href: `/admin/${def.name}/${id}` },
          { label: 'Delete' },
        ]}
      />
      <h1>Are you sure?</h1>
      <DeleteConfirmation
        model={def.name}
        label={def.label}
        ids={[id]}
        collected={collected}
        cancelHref={`/admin/${def.name}/${id}`}
        action={deleteAction}
      />
    </>
  );
}
