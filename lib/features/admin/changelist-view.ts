// Turns a changelist's data into the plain view models the components draw.
import { can, canSomewhere, type Access } from '@/lib/engine/access';
import type { Role } from '@/db/types';
import { fieldOf, isEditable, permissionFor, type AdminDef } from './define-admin';
import { formatValue } from './format';
import { toQueryString, sortByHeader, type ListParams } from './list-params';
import type { Facet, Row } from './list-query';
import type { ActionView, ColumnView, FacetView, RowView } from './types';

export function changelistBase(def: AdminDef) {
  return `/admin/${def.name}`;
}

export function columnViews(def: AdminDef, p: ListParams): ColumnView[] {
  const base = changelistBase(def);
  return def.listDisplay.map((key) => {
    const f = fieldOf(def, key);
    const at = p.sort.findIndex((s) => s.field === key);
    const sorted = at >= 0 ? p.sort[at] : undefined;
    const view: ColumnView = { key, label: f.label };
    if (['number', 'bytes', 'seconds'].includes(f.format ?? '')) view.numeric = true;
    if (f.format === 'badge') view.badge = true;
    if (f.link) view.link = f.link === 'self' ? 'self' : f.link.model;
    if (f.sortable !== false) {
      view.sortHref = base + toQueryString(def, p, { sort: sortByHeader(p.sort, key), page: 1 });
      if (sorted) {
        view.sortDir = sorted.desc ? 'desc' : 'asc';
        view.sortPriority = at + 1;
        const rest = p.sort.filter((s) => s.field !== key);
        if (rest.length) view.removeSortHref = base + toQueryString(def, p, { sort: rest, page: 1 });
      }
    }
    return view;
  });
}

/** The bulk actions this user may use somewhere (delete included, for models that have it), with the role each needs. */
export function actionViews(def: AdminDef, access: Access): (ActionView & { role: Role })[] {
  const base = changelistBase(def);
  const all = [
    ...(def.actions ?? []),
    ...(!isEditable(def)
      ? []
      : [{ name: 'delete', label: `Delete selected ${def.labelPlural}`, href: `${base}/delete`, role: permissionFor(def, 'delete') }]),
  ];
  return all.filter((a) => canSomewhere(access, a.role));
}

/** Rows, each locked when none of `actions` may be used in its environment (it gets no checkbox). */
export function rowViews(def: AdminDef, rows: Row[], access?: Access, actions: { role: Role }[] = []): RowView[] {
  return rows.map((r) => {
    const view: RowView = { id: r.__id, values: [] };
    if (access && actions.length && !actions.some((a) => can(access, a.role, r.__env ?? null))) view.locked = true;
    def.listDisplay.forEach((key, i) => {
      const f = fieldOf(def, key);
      const text = formatValue(f.format, r[key]);
      view.values.push(text || (f.link === 'self' ? `#${r.__id}` : ''));
      if (f.link && f.link !== 'self' && r[f.link.idField] != null) (view.links ??= {})[i] = Number(r[f.link.idField]);
    });
    return view;
  });
}

export function facetViews(def: AdminDef, p: ListParams, facets: Facet[]): FacetView[] {
  const base = changelistBase(def);
  return facets.map((f) => {
    const { [f.key]: _dropped, ...without } = p.filters;
    const hrefFor = (value: string) => base + toQueryString(def, p, { filters: { ...p.filters, [f.key]: value }, page: 1 });
    // Where an option's value goes in its link: found by a value no query string otherwise holds.
    const [before, after, ...more] = hrefFor('\u0000').split('%00');
    const hrefAround: [string, string] | null = before !== undefined && after !== undefined && !more.length ? [before, after] : null;
    return {
      key: f.key,
      label: f.label,
      searchable: f.searchable,
      selected: f.selected,
      allHref: base + toQueryString(def, p, { filters: without, page: 1 }),
      hrefAround,
      // An empty value is no parameter at all (toQueryString leaves it out): its own link.
      options: f.options.map((o) =>
        hrefAround && o.value !== ''
          ? [o.value, o.label || '(empty)', o.count]
          : [o.value, o.label || '(empty)', o.count, hrefFor(o.value)],
      ),
    };
  });
}
