// What pgherd writes on a member as its (superuser) role lives in a schema pgherd owns, under names it
// qualifies, in a session whose search_path holds nothing another role can create in. A table another
// role made first (in `public`, or in a schema `pgherd` it created) could carry a trigger, a rule or a
// view's function, and those run as whoever writes or reads: pgherd's superuser. So before any write or
// read, the schema and the table are proven to be pgherd's own plain table, with no trigger and no rule,
// or nothing is written and the step says why.
import type pg from 'pg';
import { Refusal } from './refusal';

/** The schema pgherd keeps its own objects in, on every member it writes to. */
export const OWN_SCHEMA = 'pgherd';

/** A name in pgherd's schema, qualified, for SQL text: letters, digits and underscores only. */
export function ownName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a name pgherd makes: ${JSON.stringify(name)}`);
  return `${OWN_SCHEMA}.${name}`;
}

/**
 * Pins the session's search_path to the catalog (so no unqualified name or operator resolves to another
 * role's object), makes schema pgherd if missing, and proves it is the connected role's own.
 */
export async function useOwnSchema(c: pg.ClientBase, create = true): Promise<void> {
  await c.query('SET search_path = pg_catalog, pg_temp');
  if (create) await c.query(`CREATE SCHEMA IF NOT EXISTS ${OWN_SCHEMA}`);
  const { rows } = await c.query<{ owner: string; me: string }>(
    `SELECT pg_catalog.pg_get_userbyid(n.nspowner) AS owner, current_user AS me
       FROM pg_catalog.pg_namespace n WHERE n.nspname = $1`,
    [OWN_SCHEMA],
  );
  const row = rows[0];
  if (!row) throw new Refusal('not-applicable', `schema ${OWN_SCHEMA} does not exist`);
  if (row.owner !== row.me)
    throw new Refusal(
      'not-applicable',
      `schema ${OWN_SCHEMA} belongs to role ${row.owner}, not to ${row.me}: pgherd writes nothing there (drop the schema or give it to ${row.me})`,
    );
}

/**
 * Makes `pgherd.<name>` with `columns` when missing (in a session `useOwnSchema` has set up) and proves it is
 * a plain table of the connected role with no trigger, no rule and no row security; returns its qualified
 * name. Throws a Refusal naming what was found otherwise.
 */
export async function ownTable(c: pg.ClientBase, name: string, columns: string): Promise<string> {
  const qualified = ownName(name);
  await useOwnSchema(c);
  await c.query(`CREATE TABLE IF NOT EXISTS ${qualified} (${columns})`);
  await provenOwnTable(c, name);
  return qualified;
}

/** Proves (without creating anything) that `pgherd.<name>`, if it exists, is pgherd's own plain table. False when missing. */
export async function provenOwnTable(c: pg.ClientBase, name: string): Promise<boolean> {
  const { rows } = await c.query<{ kind: string; owner: string; me: string; triggers: number; rules: number; rls: boolean }>(
    `SELECT c.relkind::text AS kind, pg_catalog.pg_get_userbyid(c.relowner) AS owner, current_user AS me,
            (SELECT count(*)::int FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) AS triggers,
            (SELECT count(*)::int FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid) AS rules,
            c.relrowsecurity AS rls
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2`,
    [OWN_SCHEMA, name],
  );
  const t = rows[0];
  if (!t) return false;
  const why =
    t.kind !== 'r'
      ? `is not a plain table (relkind ${t.kind})`
      : t.owner !== t.me
        ? `belongs to role ${t.owner}, not to ${t.me}`
        : t.triggers > 0
          ? `has ${String(t.triggers)} trigger(s) pgherd did not make`
          : t.rules > 0
            ? `has ${String(t.rules)} rule(s) pgherd did not make`
            : t.rls
              ? 'has row security turned on'
              : null;
  if (why) throw new Refusal('not-applicable', `${ownName(name)} ${why}: pgherd writes nothing there`);
  return true;
}
