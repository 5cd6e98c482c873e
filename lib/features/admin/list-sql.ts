// Changelist state -> SQL. Pure: it builds drizzle SQL and runs nothing, so it is unit-tested alone.
import { and, asc, Column, desc, eq, ilike, inArray, is, or, sql, type SQL } from 'drizzle-orm';
import { fieldOf, ownField, type AdminDef, type CountsDef, type FilterDef } from './define-admin';
import type { ListParams } from './list-params';

/** LIKE pattern for a literal substring: %, _ and \ typed by the user match themselves. */
export function likeContains(s: string): string {
  return `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export function searchSql(def: AdminDef, q: string): SQL | undefined {
  if (!q) return undefined;
  const pattern = likeContains(q);
  return or(...def.searchFields.map((k) => ilike(sql`(${fieldOf(def, k).sql})::text`, pattern)));
}

/** The rows a user whose roles hold only in these environments may see (null: every row). */
export function scopeSql(def: AdminDef, scope: number[] | null): SQL | undefined {
  if (scope === null) return undefined;
  if (!scope.length) return sql`false`;
  if (def.scopeSql) return def.scopeSql(scope);
  return def.environmentSql ? inArray(sql`${def.environmentSql}`, scope) : sql`false`;
}

/** A filter's value from the URL as its column holds it (list-params checked it). */
export const filterValue = (f: FilterDef, v: string): string | number =>
  f.kind === 'relation' || (f.kind === 'values' && f.numeric) ? Number(v) : v;

/** The WHERE for the user's scope, search and every filter, optionally leaving one filter out (for that filter's own counts). */
export function whereSql(def: AdminDef, p: Pick<ListParams, 'q' | 'filters' | 'scope' | 'matches'>, except?: string): SQL | undefined {
  const parts: (SQL | undefined)[] = [scopeSql(def, p.scope), p.matches ? inArray(def.id, p.matches) : searchSql(def, p.q)];
  for (const f of def.listFilter) {
    const v = p.filters[f.key];
    if (v === undefined || f.key === except) continue;
    parts.push(eq(sql`${f.sql}`, filterValue(f, v)));
  }
  return and(...parts);
}

/** The same WHERE over the counts a model keeps: each filter on its column there (keptSource checked they all have one). */
export function countsWhereSql(
  def: AdminDef,
  counts: CountsDef,
  p: Pick<ListParams, 'filters' | 'scope'>,
  except?: string,
): SQL | undefined {
  const parts: (SQL | undefined)[] = [];
  if (p.scope !== null) parts.push(p.scope.length ? inArray(sql`${counts.environment}`, p.scope) : sql`false`);
  for (const f of def.listFilter) {
    const v = p.filters[f.key];
    const column = counts.filters[f.key]?.sql;
    if (v === undefined || f.key === except) continue;
    if (!column) return sql`false`;
    parts.push(eq(sql`${column}`, filterValue(f, v)));
  }
  return and(...parts);
}

/**
 * ORDER BY for the sort keys, with the id last so that pages never overlap or skip rows.
 * Empty values sort as the smallest (first ascending, last descending, so "lag, descending" starts
 * with the worst known lag). NOT NULL columns get no NULLS clause: then a plain index serves both
 * directions and page 1 of a sort by host name reads 100 index entries instead of sorting them all.
 */
export function orderSql(def: AdminDef, p: Pick<ListParams, 'sort'>, idDescending = false): SQL[] {
  const out: SQL[] = [];
  for (const s of p.sort) {
    const f = ownField(def, s.field);
    if (!f) continue;
    const notNull = is(f.sql, Column) && f.sql.notNull;
    if (notNull) out.push(s.desc ? desc(f.sql) : asc(f.sql));
    else out.push(s.desc ? sql`${desc(f.sql)} NULLS LAST` : sql`${asc(f.sql)} NULLS FIRST`);
  }
  out.push(idDescending ? desc(def.id) : asc(def.id));
  return out;
}
