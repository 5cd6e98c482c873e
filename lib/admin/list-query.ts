// Reads for the changelist: one page of rows, the total, and the sidebar's counts.
import { count, inArray, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import type { PgSelect } from 'drizzle-orm/pg-core';
import type { Db } from '@/db/client';
import type { AdminDef, FilterDef } from './define-admin';
import type { ListParams } from './list-params';
import { likeContains, orderSql, whereSql } from './list-sql';

export type Row = Record<string, unknown> & { __id: number };

/** SELECT <selection> FROM the model's table with its joins. */
export function selectFrom<S extends Record<string, SQLWrapper>>(db: Db, def: AdminDef, selection: S) {
  let q = db.select(selection as never).from(def.table).$dynamic() as unknown as PgSelect;
  for (const j of def.joins ?? []) q = j.type === 'left' ? q.leftJoin(j.table, j.on) : q.innerJoin(j.table, j.on);
  return q;
}

export interface ListPage {
  rows: Row[];
  total: number;
  page: number;
  pages: number;
}

export async function listRows(db: Db, def: AdminDef, p: ListParams): Promise<ListPage> {
  const where = whereSql(def, p);
  const [{ n: total }] = (await selectFrom(db, def, { n: count() }).where(where)) as unknown as { n: number }[];
  const pages = Math.max(1, Math.ceil(total / p.per));
  const page = Math.min(p.page, pages); // a page past the end shows the last one
  const selection: Record<string, SQLWrapper> = { __id: def.id };
  for (const [k, f] of Object.entries(def.fields)) selection[k] = f.sql;
  const rows = (await selectFrom(db, def, selection)
    .where(where)
    .orderBy(...orderSql(def, p))
    .limit(p.per)
    .offset((page - 1) * p.per)) as unknown as Row[];
  return { rows, total, page, pages };
}

export interface FacetOption {
  value: string;
  label: string;
  count: number;
}

export interface Facet {
  key: string;
  label: string;
  kind: FilterDef['kind'];
  searchable: boolean;
  selected: string | null;
  /** For a searchable facet only the selected option is listed; the rest are found by searching. */
  options: FacetOption[];
}

/** Options with counts for one filter, under every other filter and the search. */
export async function facetOptions(db: Db, def: AdminDef, f: FilterDef, p: ListParams, opts: { search?: string; only?: string; limit?: number } = {}): Promise<FacetOption[]> {
  const labelSql = f.kind === 'relation' ? f.labelSql : f.sql;
  const conds: (SQL | undefined)[] = [whereSql(def, p, f.key)];
  if (opts.search) conds.push(sql`(${labelSql})::text ILIKE ${likeContains(opts.search)}`);
  if (opts.only !== undefined) conds.push(sql`(${f.sql})::text = ${opts.only}`);
  const where = conds.filter(Boolean).reduce<SQL | undefined>((a, c) => (a ? sql`${a} AND ${c}` : c), undefined);
  const rows = (await selectFrom(db, def, { value: sql`(${f.sql})::text`, label: sql`(${labelSql})::text`, n: count() })
    .where(where)
    .groupBy(f.sql as never, labelSql as never)
    .orderBy(f.kind === 'choice' ? sql`1` : sql`2`)
    .limit(opts.limit ?? 500)) as unknown as { value: string | null; label: string | null; n: number }[];
  const byValue = new Map(rows.filter((r) => r.value !== null).map((r) => [r.value!, { value: r.value!, label: r.label ?? '', count: r.n }]));
  if (f.kind === 'choice' && !opts.search && opts.only === undefined) {
    // Every enum value is offered, with 0 where none match: the schema decides the choices, not the data.
    return f.choices.map((c) => byValue.get(c) ?? { value: c, label: c, count: 0 });
  }
  return [...byValue.values()];
}

export async function facets(db: Db, def: AdminDef, p: ListParams): Promise<Facet[]> {
  return Promise.all(def.listFilter.map(async (f) => {
    const searchable = f.kind === 'relation' && !!f.searchable;
    const selected = p.filters[f.key] ?? null;
    const options = searchable
      ? selected ? await facetOptions(db, def, f, p, { only: selected }) : []
      : await facetOptions(db, def, f, p);
    return { key: f.key, label: f.label, kind: f.kind, searchable, selected, options };
  }));
}

/** The ids of everything matching, for "select all N matching"; bounded so a mistake stays small. */
export async function matchingIds(db: Db, def: AdminDef, p: ListParams, cap: number): Promise<number[]> {
  const rows = (await selectFrom(db, def, { id: def.id }).where(whereSql(def, p)).orderBy(...orderSql(def, p)).limit(cap + 1)) as unknown as { id: number }[];
  if (rows.length > cap) throw new Error(`more than ${cap} objects match; narrow the selection`);
  return rows.map((r) => r.id);
}

export async function labelsFor(db: Db, def: AdminDef, ids: number[]): Promise<{ id: number; label: string }[]> {
  if (!ids.length) return [];
  return (await selectFrom(db, def, { id: def.id, label: sql<string>`(${def.labelSql})::text` })
    .where(inArray(def.id, ids))
    .orderBy(def.id)) as unknown as { id: number; label: string }[];
}
