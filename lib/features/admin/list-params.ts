// The changelist's whole state lives in the URL. Parsing never fails: bad values fall back to defaults.
import { environmentsWith, type Access } from '@/lib/engine/access';
import { maxIdOf, ownField, permissionFor, type AdminDef } from './define-admin';
import { parseId } from '@/lib/adapters/validation/ids';

export const PAGE_SIZES = [10, 25, 50, 100, 200, 500] as const;
export const DEFAULT_PAGE_SIZE = 100;

export interface SortKey {
  field: string;
  desc: boolean;
}

export interface ListParams {
  q: string;
  filters: Record<string, string>;
  sort: SortKey[];
  page: number;
  per: number;
  /**
   * The environments whose objects the user may see (null: all). Not in the URL: it comes from the
   * user's roles, so no query string can widen it, and every query of the list ("select all
   * matching" too) is bounded by it.
   */
  scope: number[] | null;
  /** The search's matches, when they were found first (few): the search is then `id IN (these)`. Not in the URL. */
  matches?: number[];
}

export type RawParams = Record<string, string | string[] | undefined>;

/** The first value, without NUL characters (no text in Postgres has one, and Postgres refuses them in a query). */
function first(v: string | string[] | undefined): string | undefined {
  const one = Array.isArray(v) ? v[0] : v;
  return one?.replaceAll('\u0000', '');
}

export function parseListParams(def: AdminDef, raw: RawParams, access: Access): ListParams {
  const q = (first(raw.q) ?? '').trim().slice(0, 200);

  const filters: Record<string, string> = {};
  for (const f of def.listFilter) {
    const v = first(raw[f.key]);
    if (v === undefined || v === '') continue;
    if (f.kind === 'choice' && !f.choices.includes(v)) continue;
    if (f.kind === 'relation' && parseId(v, maxIdOf(f.sql)) === null) continue;
    if (f.kind === 'values' && (v.length > 200 || (f.numeric && !/^-?\d{1,9}$/.test(v)))) continue;
    filters[f.key] = v;
  }

  const sort: SortKey[] = [];
  for (const part of (first(raw.sort) ?? '').split(',')) {
    const desc = part.startsWith('-');
    const field = desc ? part.slice(1) : part;
    const fd = ownField(def, field);
    if (!fd || fd.sortable === false || sort.some((s) => s.field === field)) continue;
    sort.push({ field, desc });
    if (sort.length === 4) break;
  }
  if (!sort.length) {
    for (const o of def.ordering) sort.push({ field: o.replace(/^-/, ''), desc: o.startsWith('-') });
  }

  const perRaw = Number(first(raw.per));
  const per = (PAGE_SIZES as readonly number[]).includes(perRaw) ? perRaw : DEFAULT_PAGE_SIZE;
  const pageRaw = Number(first(raw.page));
  const page = Number.isInteger(pageRaw) && pageRaw >= 1 && pageRaw <= 1_000_000 ? pageRaw : 1;

  return { q, filters, sort, page, per, scope: environmentsWith(access, permissionFor(def, 'view')) };
}

/** The query string for a changelist state, with defaults left out, so links stay short and stable. */
export function toQueryString(def: AdminDef, p: ListParams, change: Partial<ListParams> = {}): string {
  const s = { ...p, ...change };
  const out = new URLSearchParams();
  if (s.q) out.set('q', s.q);
  for (const f of def.listFilter) {
    const v = s.filters[f.key];
    if (v) out.set(f.key, v);
  }
  const sortStr = s.sort.map((k) => (k.desc ? '-' : '') + k.field).join(',');
  const defStr = def.ordering.join(',');
  if (sortStr && sortStr !== defStr) out.set('sort', sortStr);
  if (s.per !== DEFAULT_PAGE_SIZE) out.set('per', String(s.per));
  if (s.page !== 1) out.set('page', String(s.page));
  const str = out.toString();
  return str ? `?${str}` : '';
}

/** Clicking a header: that field becomes the primary sort (toggling if it already was); the others follow. */
export function sortByHeader(sort: SortKey[], field: string): SortKey[] {
  const current = sort.find((s) => s.field === field);
  const primary = sort[0]?.field === field ? { field, desc: !sort[0].desc } : { field, desc: current?.desc ?? false };
  return [primary, ...sort.filter((s) => s.field !== field)].slice(0, 4);
}
