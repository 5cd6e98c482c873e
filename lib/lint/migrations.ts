// Migrations are expand-then-contract: during a rolling upgrade of pgherd the previous release's consoles
// and workers run on the new schema, so a migration never takes away what the previous release still
// reads. The previous release reads what db/schema.ts declared when the migration before was made (its
// drizzle snapshot): a column or table is taken out of db/schema.ts in one release (its generated DROP
// removed from that migration) and dropped by a later migration, when no release that runs reads it.
// Renames and type changes are never in place: add the new column, write both, drop the old one later.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** What a drizzle snapshot says of the tables: "schema.table" -> its columns. */
export interface SnapshotTables {
  tables: Record<string, { name: string; schema?: string; columns: Record<string, unknown> }>;
}

const ident = String.raw`"((?:[^"]|"")+)"`;
const qualified = String.raw`(?:${ident}\.)?${ident}`;
const unquote = (s: string) => s.replace(/""/g, '"');

/** The SQL statements of a drizzle migration (split at its breakpoints, or at semicolons). */
function statements(sql: string): string[] {
  return sql
    .split(/--> statement-breakpoint|;\s*\n/)
    .map((s) => s.replace(/--[^\n]*\n/g, '\n').trim())
    .filter(Boolean);
}

/** Whether the snapshot has the table (schema public when not said), and the column when one is named. */
function has(prev: SnapshotTables | null, schema: string | undefined, table: string, column?: string): boolean {
  const t = prev?.tables[`${schema ?? 'public'}.${table}`];
  return t !== undefined && (column === undefined || column in t.columns);
}

/**
 * What a migration takes away that the release before it still reads (`previous`: the snapshot of the
 * migration before; null for the first), one line each, or nothing.
 */
export function contractProblems(tag: string, sql: string, previous: SnapshotTables | null): string[] {
  const out: string[] = [];
  const later = 'take it out of db/schema.ts in one release (removing its DROP from that migration) and drop it in a later one';
  for (const st of statements(sql)) {
    const alter = new RegExp(String.raw`^ALTER TABLE (?:ONLY )?(?:IF EXISTS )?${qualified}\s+(?<rest>.*)$`, 'is').exec(st);
    if (alter) {
      const [schema, table = '', rest = ''] = [alter[1], alter[2], alter.groups?.rest];
      const name = unquote(table);
      for (const m of rest.matchAll(new RegExp(String.raw`DROP COLUMN (?:IF EXISTS )?${ident}`, 'gi'))) {
        const col = unquote(m[1] ?? '');
        if (has(previous, schema, name, col)) out.push(`${tag}: drops ${name}.${col}, which the release before still reads: ${later}`);
      }
      if (/\bRENAME\b/i.test(rest))
        out.push(`${tag}: renames in ${name} (${rest.slice(0, 80)}): add the new name, write both, and drop the old one a release later`);
      // A widening (to bigint, to text) takes every value the release before writes, and gives it back as it was.
      for (const m of rest.matchAll(new RegExp(String.raw`ALTER COLUMN ${ident} (?:SET DATA )?TYPE (\w+)`, 'gi'))) {
        const [col, type] = [unquote(m[1] ?? ''), (m[2] ?? '').toLowerCase()];
        if (!['bigint', 'int8', 'text'].includes(type) && has(previous, schema, name, col))
          out.push(
            `${tag}: changes the type of ${name}.${col} in place, which the release before still writes: add a column of the new type, write both, drop the old one a release later`,
          );
      }
      continue;
    }
    const drop = new RegExp(String.raw`^DROP TABLE (?:IF EXISTS )?${qualified}`, 'i').exec(st);
    const dropped = unquote(drop?.[2] ?? '');
    if (drop && has(previous, drop[1], dropped)) out.push(`${tag}: drops table ${dropped}, which the release before still reads: ${later}`);
  }
  return out;
}

/** Every migration of `dir` (drizzle's journal order) checked against the snapshot before it. */
export function checkMigrations(dir: string): string[] {
  const journal = JSON.parse(readFileSync(path.join(dir, 'meta', '_journal.json'), 'utf8')) as { entries: { idx: number; tag: string }[] };
  const out: string[] = [];
  let previous: SnapshotTables | null = null;
  for (const e of journal.entries) {
    out.push(...contractProblems(e.tag, readFileSync(path.join(dir, `${e.tag}.sql`), 'utf8'), previous));
    const snap = path.join(dir, 'meta', `${String(e.idx).padStart(4, '0')}_snapshot.json`);
    previous = JSON.parse(readFileSync(snap, 'utf8')) as SnapshotTables;
  }
  return out;
}
