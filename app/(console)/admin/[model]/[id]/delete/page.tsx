import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { DeleteConfirmation } from '@/components/admin/delete-confirmation';
import { collectForDelete } from '@/lib/admin/collect';
import { labelsFor } from '@/lib/admin/list-query';
import { parseId } from '@/lib/admin/parse-id';
import { getAdmin } from '@/lib/admin/registry';
import { capitalize } from '@/lib/admin/text';
import { requireUser } from '@/lib/auth/session';
import { deleteAction } from '../../../actions';

export default async function DeletePage({ params }: { params: Promise<{ model: string; id: string }> }) {
  await requireUser();
  const { model, id: rawId } = await params;
  const def = getAdmin(model);
  const id = parseId(rawId);
  if (!def || id === null) notFound();
  const db = getDb();
  const [obj] = await labelsFor(db, def, [id]);
  if (!obj) notFound();
  const collected = await collectForDelete(db, def, [id]);
  return (
    <>
      <Breadcrumbs items={[
        { label: capitalize(def.labelPlural), href: `/admin/${def.name}` },
        { label: obj.label, href: `/admin/${def.name}/${id}` },
        { label: 'Delete' },
      ]} />
      <h1>Are you sure?</h1>
      <DeleteConfirmation model={def.name} label={def.label} ids={[id]} collected={collected} cancelHref={`/admin/${def.name}/${id}`} action={deleteAction} />
    </>
  );
}
