import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ObjectForm } from '@/components/admin/object-form';
import { defaultValues, relationOptions } from '@/lib/features/admin/change-form-data';
import { fieldViews } from '@/lib/features/admin/form-fields';
import { labelsFor } from '@/lib/features/admin/list-query';
import { getEditable } from '@/lib/features/admin/registry';
import { capitalize } from '@/lib/features/admin/text';
import { deny, requireAccess } from '@/lib/features/auth/session';
import { can, canSomewhere, environmentsWith } from '@/lib/engine/access';
import { permissionFor } from '@/lib/features/admin/define-admin';
import { saveAction } from '../../actions';

export default async function AddPage({
  params,
  searchParams,
}: {
  params: Promise<{ model: string }>;
  searchParams: Promise<{ saved?: string }>;
}) {
  const access = await requireAccess();
  const def = getEditable((await params).model);
  if (!def || def.readOnlyAdd) notFound();
  const need = permissionFor(def, 'add');
  if (def.globalWrites ? !can(access, need, null) : !canSomewhere(access, need))
    await deny(`Adding ${def.labelPlural} needs the ${need} role${def.globalWrites ? ' globally' : ''}`);
  const db = getDb();
  const savedId = Number((await searchParams).saved);
  const saved =
    Number.isInteger(savedId) && savedId > 0 ? (await labelsFor(db, def, [savedId], environmentsWith(access, 'viewer')))[0] : undefined;
  return (
    <>
      <Breadcrumbs items={[{ label: capitalize(def.labelPlural), href: `/admin/${def.name}` }, { label: `Add ${def.label}` }]} />
      <h1>Add {def.label}</h1>
      {saved && (
        <p className="messagelist success" role="status">
          The {def.label} “{saved.label}” was added successfully. You may add another {def.label} below.
        </p>
      )}
      <ObjectForm
        model={def.name}
        fields={fieldViews(def.form)}
        id={null}
        initial={defaultValues(def)}
        options={await relationOptions(db, def, environmentsWith(access, need))}
        save={saveAction}
      />
    </>
  );
}
