// Reads for the changelist: one page of rows, the total, and the sidebar's counts.
// A page costs 3 queries plus one per active filter: the total with the counts of every inactive
// facet in one GROUPING SETS query; for each active filter, its counts without it; the page's ids;
// their rows. The counts come from what the database keeps for the model where it can answer.
import { and, inArray, sql, type SQL } from 'drizzle-orm';
import type { PgTable, SelectedFields } from 'drizzle-orm/pg-core';
import type { Queries } from '@/db/client';
import { fieldOf, ownField, withinScope, type Expr, type FilterDef, type Join, type Model } from './define-admin';
import type { ListParams } from './list-params';
import { countsWhereSql, filterValue, likeContains, orderSql, scopeSql, whereSql } from './list-sql';

/** `__env`: the row's environment, for models that have one (what the user's roles are judged on). */
export type Row = Record<string, unknown> & { __id: number; __env?: number | null };

/** SELECT <selection> FROM the model's table with its joins (display-only joins when asked). */
export function selectFrom<S extends SelectedFields>(
  db: Queries,
  def: Model,
  selection: S,
  opts: { display?: boolean } = { display: true },
) {
  return selectJoined(
    db,
    def.table,
    (def.joins ?? []).filter((j) => opts.display || !j.displayOnly),
    selection,
  );
}

function selectJoined<S extends SelectedFields>(db: Queries, table: PgTable, joins: Join[], selection: S) {
  const q = db.select(selection).from(table).$dynamic();
  // A drizzle builder adds a join to itself (the call returns the same builder, typed with the joined
  // table, which a list of joins known at run time cannot be). The selection's types do not change:
  // it is columns and expressions, never whole tables whose fields a LEFT JOIN would make nullable.
  for (const j of joins) {
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

/** "env-2" before "env-10". One collator: localeCompare with options builds one per call. */
const byLabel = new Intl.Collator('en', { numeric: true });

function shapeOptions(f: FilterDef, rows: FacetRow[], all: boolean): FacetOption[] {
  const byValue = new Map<string, FacetOption>();
  for (const r of rows) if (r.value !== null) byValue.set(r.value, { value: r.value, label: r.label ?? '', count: r.n });
  // Every enum value is offered, with 0 where none match: the schema decides the choices, not the data.
  if (f.kind === 'choice' && all) return f.choices.map((c) => byValue.get(c) ?? { value: c, label: c, count: 0 });
  const out = [...byValue.values()];
  return f.kind === 'choice' ? out : out.sort((a, b) => byLabel.compare(a.label, b.label));
}

/**
 * Where counts come from: the model's rows (a scan under the WHERE), or the counts the database keeps
 * for it. Both answer the same question, "how many rows under these filters, by this facet".
 */
interface CountSource {
  select: <S extends SelectedFields>(selection: S) => ReturnType<typeof selectJoined<S>>;
  where: (except?: string) => SQL | undefined;
  value: (f: FilterDef) => Expr;
  label: (f: FilterDef) => Expr;
  count: SQL<number>;
  /** Groups whose rows sum to nothing are not there (a journal's +1 and -1). */
  having?: SQL;
}

function scanSource(db: Queries, def: Model, p: ListParams): CountSource {
  return {
    select: (selection) => selectFrom(db, def, selection, { display: false }),
    where: (except) => whereSql(def, p, except),
    value: (f) => f.sql,
    label: labelOf,
    count: sql<number>`count(*)::int`,
  };
}

/**
 * The kept counts, when they can answer for this list: no search, no filter they do not have, and
 * every facet counted with the total (all but the searchable ones) among theirs.
 */
function keptSource(db: Queries, def: Model, p: ListParams): CountSource | null {
  const counts = def.counts;
  if (!counts || p.q) return null;
  const has = (key: string) => Object.hasOwn(counts.filters, key);
  if (Object.keys(p.filters).some((k) => !has(k))) return null;
  if (def.listFilter.some((f) => !(f.kind === 'relation' && f.searchable) && !has(f.key))) return null;
  const column = (f: FilterDef) => counts.filters[f.key]?.sql ?? sql`NULL`;
  return {
    select: (selection) =>
      selectJoined(
        db,
        counts.table,
        (counts.joins ?? []).map((j) => ({ ...j, type: 'left' as const })),
        selection,
      ),
    where: (except) => countsWhereSql(def, counts, p, except),
    value: column,
    label: (f) => counts.filters[f.key]?.labelSql ?? column(f),
    count: sql<number>`coalesce(sum(${counts.n}), 0)::int`,
    having: sql`sum(${counts.n}) <> 0`,
  };
}

/** Options with counts for one filter, under every other filter and the search. */
export async function facetOptions(
  db: Queries,
  model: Model,
  asked: FilterDef,
  p: ListParams,
  opts: { search?: string; only?: string; limit?: number } = {},
): Promise<FacetOption[]> {
  const def = withinScope(model, p.scope);
  const f = def.listFilter.find((x) => x.key === asked.key) ?? asked;
  const kept = !opts.search && opts.only === undefined && Object.hasOwn(def.counts?.filters ?? {}, f.key) ? keptSource(db, def, p) : null;
  return facetOptionsFrom(kept ?? scanSource(db, def, await resolveSearch(db, def, p)), f, opts);
}

async function facetOptionsFrom(
  source: CountSource,
  f: FilterDef,
  opts: { search?: string; only?: string; limit?: number } = {},
): Promise<FacetOption[]> {
  const conds: (SQL | undefined)[] = [source.where(f.key)];
  if (opts.search) conds.push(sql`(${source.label(f)})::text ILIKE ${likeContains(opts.search)}`);
  // Compared as the column's own type: a cast of the column would forgo its index.
  if (opts.only !== undefined) conds.push(sql`${source.value(f)} = ${filterValue(f, opts.only)}`);
  const where = conds.filter(Boolean).reduce<SQL | undefined>((a, c) => (a ? sql`${a} AND ${c}` : c), undefined);
  let q = source
    .select({
      value: sql<string | null>`(${source.value(f)})::text`,
      label: sql<string | null>`(${source.label(f)})::text`,
      n: source.count,
    })
    .where(where)
    .groupBy(source.value(f), source.label(f));
  if (source.having) q = q.having(source.having);
  const rows: FacetRow[] = await q.orderBy(sql`2`).limit(opts.limit ?? 500);
  return shapeOptions(f, rows, !opts.search && opts.only === undefined);
}

/**
 * The total under every filter and, in the same scan, the counts of each facet whose own filter is
 * not set (for those, "under every other filter" is the same WHERE). Searchable facets without a
 * selection are not counted at all: they are searched on demand.
 */
async function totalAndInactiveFacets(source: CountSource, def: Model, p: ListParams) {
  const inactive = def.listFilter.filter((f) => p.filters[f.key] === undefined && !(f.kind === 'relation' && f.searchable));
  const selection: Record<string, SQL> = { n: source.count };
  inactive.forEach((f, i) => {
    selection[`v${i}`] = sql`(${source.value(f)})::text`;
    // Only a relation's label differs from its value; an aggregate is paid for on every row of every set.
    selection[`l${i}`] = f.kind === 'relation' ? sql`max((${source.label(f)})::text)` : sql`(${source.value(f)})::text`;
    selection[`g${i}`] = sql<number>`GROUPING(${source.value(f)})`;
  });
  const sets = [...inactive.map((f) => sql`(${source.value(f)})`), sql`()`];
  let q = source
    .select(selection)
    .where(source.where())
    .groupBy(sql`GROUPING SETS (${sql.join(sets, sql`, `)})`);
  if (source.having) q = q.having(source.having);
  const rows: Record<string, unknown>[] = await q;
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
 * A page in the second half is read from the end, in the reverse order (the order is total: the id
 * breaks ties, and empty values sort as the smallest either way): the last page of 100,000 rows skips
 * no rows rather than 99,900.
 */
async function pageRows(db: Queries, def: Model, p: ListParams, page: number, total: number): Promise<Row[]> {
  const needsDisplayJoins = p.sort.some((s) => ownField(def, s.field)?.sortNeedsDisplayJoins);
  const start = (page - 1) * p.per;
  const end = Math.min(start + p.per, total);
  if (end <= start) return [];
  const fromEnd = start > total - end;
  const reversed = fromEnd ? { sort: p.sort.map((s) => ({ ...s, desc: !s.desc })) } : p;
  const found = (
    await selectFrom(db, def, { id: idOf(def) }, { display: needsDisplayJoins })
      .where(whereSql(def, p))
      .orderBy(...orderSql(def, reversed, fromEnd))
      .limit(end - start)
      .offset(fromEnd ? total - end : start)
  ).map((r) => r.id);
  const ids = fromEnd ? found.reverse() : found;
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

/** Above this many matches a search stays a condition of every query rather than a list of ids. */
const SEARCH_IDS_CAP = 5_000;

/**
 * A search, found field by field: each field's own index (trigrams on host names and herd names)
 * finds its few matches, where one OR across the joined tables would join every row first. When at
 * most SEARCH_IDS_CAP rows match, the list's queries use their ids; otherwise the search as it is.
 */
export async function resolveSearch(db: Queries, def: Model, p: ListParams): Promise<ListParams> {
  if (!p.q || def.searchFields.length < 2) return p;
  const pattern = likeContains(p.q);
  const branches = def.searchFields.map(
    (k) => sql`(${selectFrom(db, def, { id: idOf(def) }, { display: false }).where(sql`(${fieldOf(def, k).sql})::text ILIKE ${pattern}`)})`,
  );
  const { rows } = await db.execute<{ id: number }>(sql`${sql.join(branches, sql` UNION `)} LIMIT ${SEARCH_IDS_CAP + 1}`);
  return rows.length > SEARCH_IDS_CAP ? p : { ...p, matches: rows.map((r) => r.id) };
}

/**
 * The total and the facets first (from the kept counts where they can answer: a few thousand rows
 * rather than every row), then the page, whose place in the list the total tells.
 */
export async function changeList(db: Queries, model: Model, asked: ListParams): Promise<ChangeList> {
  const def = withinScope(model, asked.scope);
  const p = await resolveSearch(db, def, asked);
  const active = def.listFilter.filter((f) => p.filters[f.key] !== undefined);
  const source = keptSource(db, def, p) ?? scanSource(db, def, p);
  const [{ total, options }, activeOptions, first] = await Promise.all([
    totalAndInactiveFacets(source, def, p),
    Promise.all(
      active.map(async (f): Promise<[string, FacetOption[]]> => [
        f.key,
        await facetOptionsFrom(source, f, f.kind === 'relation' && f.searchable ? { only: p.filters[f.key] } : {}),
      ]),
    ),
    // The first page is read from the start whatever the total: no need to wait for it.
    p.page === 1 ? pageRows(db, def, p, 1, p.per) : null,
  ]);
  const activeByKey = new Map(activeOptions);
  const pages = Math.max(1, Math.ceil(total / p.per));
  const page = Math.min(p.page, pages); // a page past the end shows the last one
  const rows = first ?? (await pageRows(db, def, p, page, total));
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
export async function matchingIds(db: Queries, model: Model, asked: ListParams, cap: number): Promise<number[]> {
  const def = withinScope(model, asked.scope);
  const p = await resolveSearch(db, def, asked);
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
