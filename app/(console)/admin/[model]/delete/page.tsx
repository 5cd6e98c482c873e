import Link from 'next/link';
import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { DeleteConfirmation } from '@/components/admin/delete-confirmation';
import { collectForDelete } from '@/lib/features/admin/collect';
import { parseListParams, toQueryString, type RawParams } from '@/lib/features/admin/list-params';
import { labelsFor, matchingIds } from '@/lib/features/admin/list-query';
import { getEditable } from '@/lib/features/admin/registry';
import { capitalize } from '@/lib/features/admin/text';
import { deny, requireAccess } from '@/lib/features/auth/session';
import { canSomewhere, environmentsWith } from '@/lib/engine/access';
import { maxIdOf, permissionFor } from '@/lib/features/admin/define-admin';
import { deleteAction } from '../../actions';
import { MAX_SELECTION, parseSelection } from '@/lib/adapters/validation/selection';

/** Bulk delete: ?ids=1,2,3 or ?all=1 plus the changelist's query ("all N matching"). */
export default async function BulkDeletePage({
  params,
  searchParams,
}: {
  params: Promise<{ model: string }>;
  searchParams: Promise<RawParams>;
}) {
  const access = await requireAccess();
  const def = getEditable((await params).model);
  if (!def) notFound();
  const need = permissionFor(def, 'delete');
  if (!canSomewhere(access, need)) await deny(`Deleting ${def.labelPlural} needs the ${need} role`);
  const raw = await searchParams;
  const db = getDb();
  // Only what the user may delete: "all matching" and ticked ids alike.
  const p = { ...parseListParams(def, raw, access), scope: environmentsWith(access, need) };
  const back = `/admin/${def.name}${toQueryString(def, p)}`;
  let ids: number[] = [];
  let error = '';
  const picked = parseSelection(raw, maxIdOf(def.id));
  if (!picked.ok) error = picked.error;
  else if (picked.selection.all) {
    try {
      ids = await matchingIds(db, def, p, MAX_SELECTION);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
  } else {
    // The server never trusts the selection: only ids that exist (and the user may delete) go on.
    ids = (await labelsFor(db, def, picked.selection.ids, p.scope)).map((r) => r.id);
  }
  const crumbs = [{ label: capitalize(def.labelPlural), href: back }, { label: `Delete multiple ${def.labelPlural}` }];
  if (error || !ids.length) {
    return (
      <>
        <Breadcrumbs items={crumbs} />
        <h1>Nothing to delete</h1>
        <p className="errornote">
          {error
            ? `${error} Nothing has been changed.`
            : `No ${def.labelPlural} were selected, or they no longer exist. Nothing has been changed.`}
        </p>
        <Link href={back}>Back to the list</Link>
      </>
    );
  }
  const collected = await collectForDelete(db, def, ids);
  return (
    <>
      <Breadcrumbs items={crumbs} />
      <h1>Are you sure?</h1>
      <DeleteConfirmation
        model={def.name}
        label={ids.length === 1 ? def.label : def.labelPlural}
        ids={ids}
        collected={collected}
        cancelHref={back}
        action={deleteAction}
      />
    </>
  );
}
