import Link from 'next/link';
import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ObjectForm } from '@/components/admin/object-form';
import { loadObject, relationOptions } from '@/lib/features/admin/change-form-data';
import { objectRoute } from '@/lib/features/admin/object-route';
import { capitalize } from '@/lib/features/admin/text';
import { fieldViews } from '@/lib/features/admin/form-fields';
import { saveAction } from '../../actions';
import { ObjectPanel } from './panels';
import { permissionFor, writeScope } from '@/lib/features/admin/define-admin';
import { canOnAll, environmentsWith } from '@/lib/engine/access';

export default async function ChangePage({
  params,
  searchParams,
}: {
  params: Promise<{ model: string; id: string }>;
  searchParams: Promise<{ saved?: string }>;
}) {
  const { def, id, access, environmentId } = await objectRoute(params, 'view');
  const db = getDb();
  const obj = await loadObject(db, def, id);
  if (!obj) notFound();
  const saved = (await searchParams).saved === '1';
  const changeRole = permissionFor(def, 'change');
  const mayChange = canOnAll(access, changeRole, writeScope(def, environmentId));
  return (
    <>
      <Breadcrumbs items={[{ label: capitalize(def.labelPlural), href: `/admin/${def.name}` }, { label: obj.label }]} />
      <div className="content-head">
        <h1>Change {def.label}</h1>
        <Link className="button historylink" href={`/admin/${def.name}/${id}/history`}>
          History
        </Link>
      </div>
      <h2 className="object-label">{obj.label}</h2>
      {saved && (
        <p className="messagelist success" role="status">
          The {def.label} “{obj.label}” was changed successfully. You may edit it again below.
        </p>
      )}
      {def.panels?.map((panel) => (
        <ObjectPanel key={panel.kind} panel={panel} id={id} access={access} environmentId={environmentId} />
      ))}
      <ObjectForm
        model={def.name}
        fields={fieldViews(def.form)}
        id={id}
        initial={obj.values}
        options={await relationOptions(db, def, environmentsWith(access, mayChange ? changeRole : 'viewer'))}
        save={saveAction}
        readOnlyReason={
          mayChange
            ? undefined
            : `You may look at this ${def.label}; changing it needs the ${changeRole} role ${def.globalWrites ? 'globally' : 'here'}.`
        }
        canDelete={canOnAll(access, permissionFor(def, 'delete'), writeScope(def, environmentId))}
      />
    </>
  );
}
