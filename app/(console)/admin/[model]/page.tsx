import Link from 'next/link';
import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ChangeListTable } from '@/components/admin/change-list-table';
import { FilterSidebar } from '@/components/admin/filter-sidebar';
import { Pagination } from '@/components/admin/pagination';
import { actionViews, changelistBase, columnViews, facetViews, rowViews } from '@/lib/features/admin/changelist-view';
import { isEditable, maxIdOf, permissionFor } from '@/lib/features/admin/define-admin';
import { can, canSomewhere } from '@/lib/engine/access';
import { PAGE_SIZES, parseListParams, toQueryString, type RawParams } from '@/lib/features/admin/list-params';
import { changeList, labelsFor } from '@/lib/features/admin/list-query';
import { getAdmin } from '@/lib/features/admin/registry';
import { capitalize } from '@/lib/features/admin/text';
import { deny, requireAccess } from '@/lib/features/auth/session';
import { parseId } from '@/lib/adapters/validation/ids';
import { ListPanel } from './list-panels';
import { packRows } from '@/lib/features/admin/packed-rows';

export default async function ChangeListPage({
  params,
  searchParams,
}: {
  params: Promise<{ model: string }>;
  searchParams: Promise<RawParams>;
}) {
  const access = await requireAccess();
  const def = getAdmin((await params).model);
  if (!def) notFound();
  const viewRole = permissionFor(def, 'view');
  if (!canSomewhere(access, viewRole)) await deny(`The list of ${def.labelPlural} needs the ${viewRole} role`);
  const raw = await searchParams;
  const p = parseListParams(def, raw, access);
  const db = getDb();
  const list = await changeList(db, def, p);
  const shown = { ...p, page: list.page };
  const base = changelistBase(def);
  const qs = toQueryString(def, { ...shown, page: 1 }).replace(/^\?/, '');
  const savedId = typeof raw.saved === 'string' ? parseId(raw.saved, maxIdOf(def.id)) : null;
  const saved = savedId !== null ? (await labelsFor(db, def, [savedId], p.scope))[0] : undefined;
  const actions = actionViews(def, access);
  const canAdd =
    isEditable(def) &&
    !def.readOnlyAdd &&
    (def.globalWrites ? can(access, permissionFor(def, 'add'), null) : canSomewhere(access, permissionFor(def, 'add')));
  const deleted = typeof raw.deleted === 'string' && /^\d+$/.test(raw.deleted) ? Number(raw.deleted) : null;
  const title = isEditable(def) ? `Select ${def.label} to change` : capitalize(def.labelPlural);

  return (
    <>
      <Breadcrumbs items={[{ label: capitalize(def.labelPlural) }]} />
      <div className="content-head">
        <h1>{title}</h1>
        {canAdd && (
          <Link className="button addlink" href={`${base}/add`}>
            Add {def.label}
          </Link>
        )}
      </div>
      {saved && (
        <p className="messagelist success" role="status">
          The {def.label} “{saved.label}” was saved successfully.
        </p>
      )}
      {deleted !== null && (
        <p className="messagelist success" role="status">
          Successfully deleted {deleted} {deleted === 1 ? def.label : def.labelPlural}.
        </p>
      )}
      {def.listPanels?.map((panel) => (
        <ListPanel key={panel.kind} panel={panel} access={access} />
      ))}
      <div className="changelist">
        <div className="changelist-main">
          <form className="search" action={base} method="get" role="search">
            <input
              type="search"
              name="q"
              defaultValue={p.q}
              aria-label={`Search ${def.labelPlural}`}
              placeholder={`Search ${def.labelPlural}`}
            />
            {Object.entries(p.filters).map(([k, v]) => (
              <input key={k} type="hidden" name={k} value={v} />
            ))}
            {toQueryString(def, shown).includes('sort=') && (
              <input type="hidden" name="sort" value={p.sort.map((s) => (s.desc ? '-' : '') + s.field).join(',')} />
            )}
            {p.per !== 100 && <input type="hidden" name="per" value={p.per} />}
            <button type="submit" className="button">
              Search
            </button>
            {(p.q || Object.keys(p.filters).length > 0) && (
              <span className="small">
                {' '}
                {list.total} results (<Link href={base}>clear all</Link>)
              </span>
            )}
          </form>
          <ChangeListTable
            base={def.objectHref ?? base}
            columns={columnViews(def, shown)}
            rows={packRows(rowViews(def, list.rows, access, actions))}
            total={list.total}
            labelPlural={def.labelPlural}
            actions={actions.map(({ name, label, href }) => ({ name, label, href }))}
            query={qs}
          />
          <Pagination
            page={list.page}
            pages={list.pages}
            total={list.total}
            labelPlural={def.labelPlural}
            per={p.per}
            perOptions={PAGE_SIZES}
            hrefFor={(page) => base + toQueryString(def, shown, { page })}
            perHref={(per) => base + toQueryString(def, shown, { per, page: 1 })}
          />
        </div>
        <FilterSidebar facets={facetViews(def, shown, list.facets)} searchUrl={`/api/admin/${def.name}/facets`} query={qs} />
      </div>
    </>
  );
}
