// Object sets: roles, databases, extensions and access rules (pg_hba lines) declared once, assigned to
// environments and herds (lib/fleet/objects/declaration.ts says which wins). A set spans environments,
// so only global admins change one (and only in a set may a role be a superuser); every save that
// changes its text is a new version, kept with its author.
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { objectSets } from '@/db/schema';
import { qualified } from '@/lib/fleet/qualified';
import { parseDeclaration } from '@/lib/fleet/objects/declaration';
import { defineAdmin } from '../define-admin';
import { f, tableForm } from '../form-fields';

const sentence = (s: string) => `${s.charAt(0).toUpperCase()}${s.slice(1)}${s.endsWith('.') ? '' : '.'}`;

/** A declaration typed in a form: one object a line, every error at once (the first ten). */
export const declarationText = (allowSuperuser: boolean) =>
  z
    .string()
    .max(100_000, 'At most 100,000 characters.')
    .default('')
    .transform((text, ctx) => {
      const p = parseDeclaration(text, { allowSuperuser });
      if (!p.ok) {
        for (const e of p.errors.slice(0, 10)) ctx.addIssue({ code: 'custom', message: sentence(e) });
        return z.NEVER;
      }
      return text.replaceAll('\r', '').trimEnd();
    });

export const DECLARATION_HELP =
  'One object a line: role NAME [login] [createdb] [connlimit=N] [valid_until=DATE] [in=ROLE,...]; database NAME [owner=ROLE] [encoding=E] [locale=L] [connect=ROLE,...]; extension DATABASE NAME [VERSION]; hba TYPE DATABASES ROLES ADDRESS METHOD, where ADDRESS may be {members}, {pgherd} or {poolers}; ignore role|database|extension PATTERN. docs/fleet-objects.md has it all.';

export const objectSetsAdmin = defineAdmin({
  name: 'object-sets',
  label: 'object set',
  labelPlural: 'object sets',
  table: objectSets,
  id: objectSets.id,
  labelSql: objectSets.name,
  permissions: { add: 'admin', change: 'admin', delete: 'admin' },
  globalWrites: true,
  referableByAll: true,
  // A catalogue: everyone who sees an environment sees every set (names and rules, no password).
  scopeSql: () => sql`true`,
  fields: {
    name: { label: 'Name', sql: objectSets.name, link: 'self' },
    description: { label: 'Description', sql: objectSets.description, sortable: false },
    objects: {
      label: 'Objects',
      sql: sql<number>`(SELECT count(*) FROM regexp_split_to_table(${qualified(objectSets.declaration)}, '\n') l WHERE l !~ '^\\s*(#|$)')::int`,
      format: 'number',
      sortable: false,
    },
    version: { label: 'Version', sql: objectSets.version, format: 'number' },
    assigned: {
      label: 'Assigned to',
      sql: sql<string>`concat_ws(', ',
        nullif((SELECT count(*) FROM environments e WHERE e.object_set_id = ${qualified(objectSets.id)}), 0) || ' environments',
        nullif((SELECT count(*) FROM herds h WHERE h.object_set_id = ${qualified(objectSets.id)}), 0) || ' herds')`,
      sortable: false,
    },
    updatedAt: { label: 'Updated', sql: objectSets.updatedAt, format: 'datetime' },
  },
  listDisplay: ['name', 'description', 'objects', 'version', 'assigned', 'updatedAt'],
  listFilter: [],
  searchFields: ['name', 'description'],
  ordering: ['name'],
  form: tableForm(objectSets, {
    name: { label: 'Name', help: 'Unique, for example app-roles or staging-access.', schema: f.name(63) },
    description: { label: 'Description', input: { type: 'textarea' } },
    declaration: { label: 'Objects', help: DECLARATION_HELP, input: { type: 'textarea' }, schema: declarationText(true) },
  }),
  uniqueErrors: { object_sets_name_key: ['name', 'An object set with this name already exists.'] },
  afterSave: async (tx, id, values, before, actor) => {
    if (before && before.declaration === values.declaration) return;
    const r = await tx.execute<{ version: number; name: string; declaration: string }>(sql`
      UPDATE object_sets SET version = CASE WHEN ${before === null} THEN 1 ELSE version + 1 END WHERE id = ${id}
      RETURNING version, name, declaration`);
    const g = r.rows[0];
    if (!g) throw new Error(`object set #${id} is not there after its save`);
    await tx.execute(sql`
      INSERT INTO object_set_versions (set_id, version, name, declaration, author, note)
      VALUES (${id}, ${g.version}, ${g.name}, ${g.declaration}, ${actor.username}, ${before === null ? 'created' : 'saved'})`);
  },
});
