// What the add and change pages load: initial values as strings and the options of relation fields.
import { eq, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { AdminDef } from './define-admin';
import { selectFrom } from './list-query';
import { scopeSql } from './list-sql';
import { getAdmin } from './registry';

/** Choices for relation fields: only objects in `scope` (the environments where the user may make the change; null: all). */
export async function relationOptions(db: Db, def: AdminDef, scope: number[] | null): Promise<Record<string, { value: string; label: string }[]>> {
  const out: Record<string, { value: string; label: string }[]> = {};
  await Promise.all(def.form.fields.map(async (f) => {
    if (f.input.type !== 'relation') return;
    const rel = getAdmin(f.input.model);
    if (!rel) throw new Error(`${def.name}.${f.name}: no admin for ${f.input.model}`);
    const rows = (await selectFrom(db, rel, { value: sql<string>`(${rel.id})::text`, label: sql<string>`(${rel.labelSql})::text` })
      .where(scopeSql(rel, scope))
      .orderBy(sql`2`)
      .limit(5000)) as unknown as { value: string; label: string }[];
    out[f.name] = rows;
  }));
  return out;
}

export async function loadObject(db: Db, def: AdminDef, id: number): Promise<{ values: Record<string, string>; label: string } | null> {
  const cols: Record<string, unknown> = { __label: sql<string>`(${def.labelSql})::text` };
  for (const f of def.form.fields) cols[f.name] = (def.table as unknown as Record<string, unknown>)[f.name];
  const [row] = (await selectFrom(db, def, cols as never).where(eq(def.id, id))) as unknown as Record<string, unknown>[];
  if (!row) return null;
  const values: Record<string, string> = {};
  for (const f of def.form.fields) values[f.name] = row[f.name] === null || row[f.name] === undefined ? '' : String(row[f.name]);
  return { values, label: String(row.__label) };
}

/** Defaults for the add form, from the schema's column defaults. */
export function defaultValues(def: AdminDef): Record<string, string> {
  const values: Record<string, string> = {};
  for (const f of def.form.fields) {
    const col = (def.table as unknown as Record<string, { default?: unknown; hasDefault?: boolean }>)[f.name];
    const d = col?.default;
    // A value default (port 5432, 'active'); SQL defaults (now(), '{}') are objects and prefill nothing.
    values[f.name] = typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean' || typeof d === 'bigint' ? String(d) : '';
  }
  return values;
}
