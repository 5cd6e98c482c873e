// Parameter groups: named sets of Postgres settings, assigned to environments, herds and instances
// (lib/fleet/settings/wanted.ts says which wins). A group spans environments, so only global admins change
// one; every save that changes its settings is a new version, kept with its author.
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { parameterGroups } from '@/db/schema';
import { qualified } from '@/lib/fleet/qualified';
import { parseConf, renderConf } from '@/lib/fleet/settings/conf-text';
import { notTunable } from '@/lib/fleet/settings/tunables';
import { evaluate, hasFormula } from '@/lib/fleet/settings/values';
import { defineAdmin } from '../define-admin';
import { f, tableForm } from '../form-fields';

/** A host to try formulas on when they are saved (each is computed per host when applied). */
const TRY_HOST = { memoryMb: 16_384, cpus: 4 };

/** A message for people: a capital first, a full stop last. */
const sentence = (s: string) => `${s.charAt(0).toUpperCase()}${s.slice(1)}${s.endsWith('.') ? '' : '.'}`;

/** Settings typed in a form: postgresql.conf lines, saved as renderConf writes them. */
export const settingsText = z
  .string()
  .max(50_000, 'At most 50,000 characters.')
  .default('')
  .transform((text, ctx) => {
    const p = parseConf(text);
    if (!p.ok) {
      for (const e of p.errors.slice(0, 10)) ctx.addIssue({ code: 'custom', message: sentence(e) });
      return z.NEVER;
    }
    for (const [name, v] of p.settings) {
      const refused = notTunable(name);
      // A setting's name leads the message as Postgres spells it, lower case.
      if (refused) ctx.addIssue({ code: 'custom', message: `${refused}.` });
      if (!hasFormula(v)) continue;
      const e = evaluate(v, TRY_HOST);
      if (!e.ok) ctx.addIssue({ code: 'custom', message: sentence(`${name}: ${e.why}`) });
    }
    return renderConf(p.settings);
  });

export const parameterGroupsAdmin = defineAdmin({
  name: 'parameter-groups',
  label: 'parameter group',
  labelPlural: 'parameter groups',
  table: parameterGroups,
  id: parameterGroups.id,
  labelSql: parameterGroups.name,
  permissions: { add: 'admin', change: 'admin', delete: 'admin' },
  referableByAll: true,
  // A catalogue: everyone who sees an environment sees every group (the settings are no secret).
  scopeSql: () => sql`true`,
  fields: {
    name: { label: 'Name', sql: parameterGroups.name, link: 'self' },
    description: { label: 'Description', sql: parameterGroups.description, sortable: false },
    settings: {
      label: 'Settings',
      sql: sql<number>`(SELECT count(*) FROM regexp_split_to_table(${qualified(parameterGroups.settings)}, '\n') l WHERE l <> '')::int`,
      format: 'number',
      sortable: false,
    },
    version: { label: 'Version', sql: parameterGroups.version, format: 'number' },
    assigned: {
      label: 'Assigned to',
      sql: sql<string>`concat_ws(', ',
        nullif((SELECT count(*) FROM environments e WHERE e.parameter_group_id = ${qualified(parameterGroups.id)}), 0) || ' environments',
        nullif((SELECT count(*) FROM herds h WHERE h.parameter_group_id = ${qualified(parameterGroups.id)}), 0) || ' herds',
        nullif((SELECT count(*) FROM instances i WHERE i.parameter_group_id = ${qualified(parameterGroups.id)}), 0) || ' instances')`,
      sortable: false,
    },
    updatedAt: { label: 'Updated', sql: parameterGroups.updatedAt, format: 'datetime' },
  },
  listDisplay: ['name', 'description', 'settings', 'version', 'assigned', 'updatedAt'],
  listFilter: [],
  searchFields: ['name', 'description'],
  ordering: ['name'],
  form: tableForm(parameterGroups, {
    name: { label: 'Name', help: 'Unique, for example oltp-large or reporting.', schema: f.name(63) },
    description: { label: 'Description', input: { type: 'textarea' } },
    settings: {
      label: 'Settings',
      help: "postgresql.conf lines: name = 'value'. A value may compute from the host: '{memory_mb / 4}MB', '{max(cpus / 2, 1)}' (numbers, memory_mb, cpus, min, max, + - * /). Only tunables (memory, planner, WAL, vacuum, timeouts, what to log): settings pgherd sets per member (port, primary_conninfo...) and those that run commands or load code are refused.",
      input: { type: 'textarea' },
      schema: settingsText,
    },
  }),
  uniqueErrors: { parameter_groups_name_key: ['name', 'A parameter group with this name already exists.'] },
  afterSave: async (tx, id, values, before, actor) => {
    if (before && before.settings === values.settings) return;
    const r = await tx.execute<{ version: number; name: string; settings: string }>(sql`
      UPDATE parameter_groups SET version = CASE WHEN ${before === null} THEN 1 ELSE version + 1 END WHERE id = ${id}
      RETURNING version, name, settings`);
    const g = r.rows[0];
    if (!g) throw new Error(`parameter group #${id} is not there after its save`);
    await tx.execute(sql`
      INSERT INTO parameter_group_versions (group_id, version, name, settings, author, note)
      VALUES (${id}, ${g.version}, ${g.name}, ${g.settings}, ${actor.username}, ${before === null ? 'created' : 'saved'})`);
  },
});
