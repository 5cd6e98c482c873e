// Reads for the changelist: one page of rows, the total, and the sidebar's counts.
// A page costs 2 queries plus one per active filter: the rows; the total with the counts of every
// inactive facet in one GROUPING SETS scan; and, for each active filter, its counts without it.
import { and, inArray, sql, type SQL } from 'drizzle-orm';
import type { SelectedFields } from 'drizzle-orm/pg-core';
import type { Queries } from '@/db/client';
import { ownField, type Expr, type FilterDef, type Model } from './define-admin';
import type { ListParams } from './list-params';
import { likeContains, orderSql, scopeSql, whereSql } from './list-sql';

/** `__env`: the row's environment, for models that have one (what the user's roles are judged on). */
export type Row = Record<string, unknown> & { __id: number; __env?: number | null };

/** SELECT <selection> FROM the model's table with its joins (display-only joins when asked). */
export function selectFrom<S extends SelectedFields>(
  db: Queries,
  def: Model,
  selection: S,
  opts: { display?: boolean } = { display: true },
) {
  const q = db.select(selection).from(def.table).$dynamic();
  // A drizzle builder adds a join to itself (the call returns the same builder, typed with the joined
  // table, which a list of joins known at run time cannot be). The selection's types do not change:
  // it is columns and expressions, never whole tables whose fields a LEFT JOIN would make nullable.
  for (const j of def.joins ?? []) {
    if (j.displayOnly && !opts.display) continue;
    if (j.type === 'left') q.leftJoin(j.table, j.on);
    else q.innerJoin(j.table, j.on);
  }
  return q;
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

export interface ChangeList {
  rows: Row[];
  total: number;
  page: number;
  pages: number;
  facets: Facet[];
}

const labelOf = (f: FilterDef) => (f.kind === 'relation' ? f.labelSql : f.sql);

/** A `::text` column of a row whose selection was built at run time (its type is not known to the compiler). */
const textOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The model's id, selected as the number it is (a serial). */
export const idOf = (def: Model) => sql<number>`${def.id}`;

/** One facet's GROUP BY row: `n` is a count(*)::int, which node-postgres reads as a number. */
interface FacetRow {
  value: string | null;
  label: string | null;
  n: number;
}

function shapeOptions(f: FilterDef, rows: FacetRow[], all: boolean): FacetOption[] {
  const byValue = new Map<string, FacetOption>();
  for (const r of rows) if (r.value !== null) byValue.set(r.value, { value: r.value, label: r.label ?? '', count: r.n });
  // Every enum value is offered, with 0 where none match: the schema decides the choices, not the data.
  if (f.kind === 'choice' && all) return f.choices.map((c) => byValue.get(c) ?? { value: c, label: c, count: 0 });
  const out = [...byValue.values()];
  return f.kind === 'choice' ? out : out.sort((a, b) => a.label.localeCompare(b.label, 'en', { numeric: true }));
}

/** Options with counts for one filter, under every other filter and the search. */
export async function facetOptions(
  db: Queries,
  def: Model,
  f: FilterDef,
  p: ListParams,
  opts: { search?: string; only?: string; limit?: number } = {},
): Promise<FacetOption[]> {
  const conds: (SQL | undefined)[] = [whereSql(def, p, f.key)];
  if (opts.search) conds.push(sql`(${labelOf(f)})::text ILIKE ${likeContains(opts.search)}`);
  if (opts.only !== undefined) conds.push(sql`(${f.sql})::text = ${opts.only}`);
  const where = conds.filter(Boolean).reduce<SQL | undefined>((a, c) => (a ? sql`${a} AND ${c}` : c), undefined);
  const rows: FacetRow[] = await selectFrom(
    db,
    def,
    { value: sql<string | null>`(${f.sql})::text`, label: sql<string | null>`(${labelOf(f)})::text`, n: sql<number>`count(*)::int` },
    { display: false },
  )
    .where(where)
    .groupBy(f.sql, labelOf(f))
    .orderBy(sql`2`)
    .limit(opts.limit ?? 500);
  return shapeOptions(f, rows, !opts.search && opts.only === undefined);
}

/**
 * The total under every filter and, in the same scan, the counts of each facet whose own filter is
 * not set (for those, "under every other filter" is the same WHERE). Searchable facets without a
 * selection are not counted at all: they are searched on demand.
 */
async function totalAndInactiveFacets(db: Queries, def: Model, p: ListParams) {
  const inactive = def.listFilter.filter((f) => p.filters[f.key] === undefined && !(f.kind === 'relation' && f.searchable));
  const selection: Record<string, SQL> = { n: sql<number>`count(*)::int` };
  inactive.forEach((f, i) => {
    selection[`v${i}`] = sql`(${f.sql})::text`;
    selection[`l${i}`] = sql`max((${labelOf(f)})::text)`;
    selection[`g${i}`] = sql<number>`GROUPING(${f.sql})`;
  });
  const sets = [...inactive.map((f) => sql`(${f.sql})`), sql`()`];
  const rows = await selectFrom(db, def, selection, { display: false })
    .where(whereSql(def, p))
    .groupBy(sql`GROUPING SETS (${sql.join(sets, sql`, `)})`);
  let total = 0;
  const facetRows = new Map<string, FacetRow[]>();
  for (const r of rows) {
    // The grouping set a row belongs to is the one facet whose GROUPING() is 0; none: the total's.
    const i = inactive.findIndex((_, j) => Number(r[`g${j}`]) === 0);
    const f = i >= 0 ? inactive[i] : undefined;
    if (!f) {
      total = Number(r.n);
      continue;
    }
    const list = facetRows.get(f.key) ?? [];
    list.push({ value: textOrNull(r[`v${i}`]), label: textOrNull(r[`l${i}`]), n: Number(r.n) });
    facetRows.set(f.key, list);
  }
  const options = new Map(inactive.map((f) => [f.key, shapeOptions(f, facetRows.get(f.key) ?? [], true)]));
  return { total, options };
}

/**
 * One page, in two steps: the ids in order (joins that only decorate rows left out), then the
 * displayed fields for just those ids. Sorting 10,000 narrow rows costs half as much as wide ones.
 */
async function pageRows(db: Queries, def: Model, p: ListParams, page: number): Promise<Row[]> {
  const needsDisplayJoins = p.sort.some((s) => ownField(def, s.field)?.sortNeedsDisplayJoins);
  const ids = (
    await selectFrom(db, def, { id: idOf(def) }, { display: needsDisplayJoins })
      .where(whereSql(def, p))
      .orderBy(...orderSql(def, p))
      .limit(p.per)
      .offset((page - 1) * p.per)
  ).map((r) => r.id);
  if (!ids.length) return [];
  const selection: Record<string, Expr> = { __id: def.id };
  if (def.environmentSql) selection.__env = def.environmentSql;
  for (const [k, f] of Object.entries(def.fields)) selection[k] = f.sql;
  const rows = (await selectFrom(db, def, selection).where(inArray(def.id, ids))).map((r): Row => ({
    ...r,
    __id: Number(r.__id),
    ...(def.environmentSql ? { __env: r.__env === null ? null : Number(r.__env) } : {}),
  }));
  // In the ids' order; a row deleted between the two queries is simply not there.
  const byId = new Map(rows.map((r) => [r.__id, r]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

export async function changeList(db: Queries, def: Model, p: ListParams): Promise<ChangeList> {
  const active = def.listFilter.filter((f) => p.filters[f.key] !== undefined);
  const [rows0, { total, options }, activeOptions] = await Promise.all([
    pageRows(db, def, p, p.page),
    totalAndInactiveFacets(db, def, p),
    Promise.all(
      active.map(async (f): Promise<[string, FacetOption[]]> => [
        f.key,
        await facetOptions(db, def, f, p, f.kind === 'relation' && f.searchable ? { only: p.filters[f.key] } : {}),
      ]),
    ),
  ]);
  const activeByKey = new Map(activeOptions);
  const pages = Math.max(1, Math.ceil(total / p.per));
  const page = Math.min(p.page, pages); // a page past the end shows the last one
  const rows = page === p.page ? rows0 : await pageRows(db, def, p, page);
  const facets = def.listFilter.map((f): Facet => {
    const searchable = f.kind === 'relation' && !!f.searchable;
    return {
      key: f.key,
      label: f.label,
      kind: f.kind,
      searchable,
      selected: p.filters[f.key] ?? null,
      options: activeByKey.get(f.key) ?? options.get(f.key) ?? [],
    };
  });
  return { rows, total, page, pages, facets };
}

/** The ids of everything matching, for "select all N matching"; bounded so a mistake stays small. */
export async function matchingIds(db: Queries, def: Model, p: ListParams, cap: number): Promise<number[]> {
  const rows = await selectFrom(db, def, { id: idOf(def) }, { display: false })
    .where(whereSql(def, p))
    .orderBy(def.id)
    .limit(cap + 1);
  if (rows.length > cap) throw new Error(`More than ${cap} objects match: narrow the selection.`);
  return rows.map((r) => r.id);
}

/** Labels of the objects that exist among `ids` (and that the user may see, given a scope). */
export async function labelsFor(
  db: Queries,
  def: Model,
  ids: number[],
  scope: number[] | null = null,
): Promise<{ id: number; label: string }[]> {
  if (!ids.length) return [];
  return selectFrom(db, def, { id: idOf(def), label: sql<string>`(${def.labelSql})::text` })
    .where(and(inArray(def.id, ids), scopeSql(def, scope)))
    .orderBy(def.id);
}
