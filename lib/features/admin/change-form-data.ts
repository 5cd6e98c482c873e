// What the add and change pages load: initial values as strings and the options of relation fields.
import { eq, getTableColumns, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { EditableModel } from './define-admin';
import { selectFrom } from './list-query';
import { scopeSql } from './list-sql';
import { valueText } from './text';

/** Choices for relation fields: only objects in `scope` (the environments where the user may make the change; null: all). */
export async function relationOptions(
  db: Db,
  def: EditableModel,
  scope: number[] | null,
): Promise<Record<string, { value: string; label: string }[]>> {
  const out: Record<string, { value: string; label: string }[]> = {};
  await Promise.all(
    def.form.fields.map(async (f) => {
      if (f.input.type !== 'relation' || !f.references) return;
      const rel = f.references();
      out[f.name] = await selectFrom(db, rel, { value: sql<string>`(${rel.id})::text`, label: sql<string>`(${rel.labelSql})::text` })
        .where(scopeSql(rel, scope))
        .orderBy(sql`2`)
        .limit(5000);
    }),
  );
  return out;
}

export async function loadObject(
  db: Db,
  def: EditableModel,
  id: number,
): Promise<{ values: Record<string, string>; label: string } | null> {
  const columns = getTableColumns(def.table);
  const selection: Record<string, ReturnType<typeof sql>> = { __label: sql<string>`(${def.labelSql})::text` };
  for (const f of def.form.fields) {
    const column = columns[f.name];
    if (!column) throw new Error(`${def.name}: form field ${f.name} is not a column of its table`);
    selection[f.name] = sql`${column}`;
  }
  const [row] = await selectFrom(db, def, selection).where(eq(def.id, id));
  if (!row) return null;
  const values: Record<string, string> = {};
  for (const f of def.form.fields) values[f.name] = valueText(row[f.name]);
  return { values, label: String(row.__label) };
}

/** Defaults for the add form, from the table's column defaults. */
export function defaultValues(def: EditableModel): Record<string, string> {
  const columns = getTableColumns(def.table);
  const values: Record<string, string> = {};
  for (const f of def.form.fields) {
    const d: unknown = columns[f.name]?.default;
    // A value default (port 5432, 'active'); SQL defaults (now(), '{}') are objects and prefill nothing.
    values[f.name] = typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean' || typeof d === 'bigint' ? String(d) : '';
  }
  return values;
}
