// An instance's settings as Postgres reports them (pg_settings), read when its configuration was loaded
// again (the refresh sees pg_conf_load_time() move: a reload, a restart, ALTER SYSTEM followed by either),
// and kept as a snapshot when they differ from the last one: what ran from when.
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Db } from '@/db/client';
import type { SettingReading } from '@/db/schema';
import { instanceClient } from '@/lib/fleet/pg-access';
import { keptValue } from './secrets';
import { checkValue, sameValue, type SettingMeta } from './values';

export interface SettingsReading {
  serverVersionNum: number;
  confLoadedAt: Date;
  settings: Record<string, SettingReading>;
  catalog: SettingMeta[];
}

interface Row {
  name: string;
  setting: string | null;
  unit: string | null;
  vartype: string;
  context: string;
  source: string;
  sourcefile: string | null;
  sourceline: number | null;
  pending_restart: boolean;
  min_val: string | null;
  max_val: string | null;
  enumvals: string[] | null;
  boot_val: string | null;
  vnum: number;
  conf: Date;
}

const SETTINGS_SQL = `
  SELECT name, setting, unit, vartype, context, source, sourcefile, sourceline, pending_restart, min_val, max_val, enumvals, boot_val,
         current_setting('server_version_num')::int AS vnum, pg_conf_load_time() AS conf
  FROM pg_settings ORDER BY name`;

/** Reads pg_settings over a connection of its own. */
export async function readSettings(
  e: { host: string; port: number; serverEnvironment: string | null },
  timeoutMs = 5000,
): Promise<SettingsReading> {
  // No statement_timeout for the session (a client-side deadline instead): it would be read back as the server's.
  const c = instanceClient(e, { connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, application_name: 'pgherd-settings' });
  c.on('error', () => {}); // connect() or the query rejects with it
  await c.connect();
  try {
    const { rows } = await c.query<Row>(SETTINGS_SQL);
    const first = rows[0];
    if (!first) throw new Error('pg_settings returned no row');
    const inFiles = await fileValues(c);
    const settings: Record<string, SettingReading> = {};
    for (const r of rows) {
      // Setting names are case-insensitive (TimeZone, DateStyle): kept as a group writes them, lower case.
      settings[r.name.toLowerCase()] = {
        v: keptValue(r.name.toLowerCase(), r.setting ?? ''),
        ...(r.source !== 'default' ? { s: r.source } : {}),
        ...(r.sourcefile ? { f: `${r.sourcefile}:${r.sourceline ?? '?'}` } : {}),
        ...(r.pending_restart && !revertedInFile(r, inFiles) ? { p: true as const } : {}),
      };
    }
    return {
      serverVersionNum: first.vnum,
      confLoadedAt: first.conf,
      settings,
      catalog: rows.map((r) => ({ ...metaOf(r), name: r.name.toLowerCase() })),
    };
  } finally {
    await c.end().catch(() => {});
  }
}

export { withoutSecrets } from './secrets';

/**
 * What the configuration files say now, setting by setting (the last line wins), where pgherd's role may
 * read it (pg_file_settings: a superuser, or a role granted its function); null where it may not.
 */
async function fileValues(c: pg.Client): Promise<Map<string, string> | null> {
  try {
    const { rows } = await c.query<{ name: string; setting: string }>(
      'SELECT name, setting FROM pg_file_settings WHERE name IS NOT NULL ORDER BY seqno',
    );
    return new Map(rows.map((r) => [r.name.toLowerCase(), r.setting]));
  } catch (err) {
    // Not granted: Postgres's pending_restart is taken as it is (see revertedInFile).
    if ((err as { code?: string }).code === '42501') return null;
    throw err;
  }
}

/**
 * Postgres may leave pending_restart set when a file's value is put back to what runs (seen with
 * shared_preload_libraries after a line was removed and the files reloaded): a setting whose file value
 * (or, set by no file, its built-in value) is what runs waits for nothing.
 */
/** A pg_settings row's metadata, as the values module reads it. */
const metaOf = (r: Row) => ({
  name: r.name,
  vartype: r.vartype,
  unit: r.unit,
  context: r.context,
  minVal: r.min_val,
  maxVal: r.max_val,
  enumVals: r.enumvals,
  bootVal: r.boot_val,
});

function revertedInFile(r: Row, files: Map<string, string> | null): boolean {
  if (!files || r.setting === null) return false;
  const f = files.get(r.name.toLowerCase());
  // No file sets it: what waits is its built-in value, if that is not what runs.
  if (f === undefined) return r.boot_val !== null && r.setting === r.boot_val;
  const meta = metaOf(r);
  const c = checkValue(meta, f);
  return c.ok && sameValue(meta, c.value, r.setting);
}

export const majorOf = (serverVersionNum: number) => Math.floor(serverVersionNum / 10000);

/** The majors whose catalogue this process has written (it never changes within a major). */
const catalogued = new Set<number>();

/** Writes a major's catalogue once (a setting added by an extension loaded later is added then). */
export async function saveCatalog(db: Db, r: SettingsReading): Promise<void> {
  const major = majorOf(r.serverVersionNum);
  const key = major * 100_000 + r.catalog.length;
  if (catalogued.has(key)) return;
  await db.execute(sql`
    INSERT INTO setting_catalog (major, name, vartype, unit, context, min_val, max_val, enum_vals, boot_val)
    SELECT ${major}, c.name, c.vartype, c.unit, c.context, c."minVal", c."maxVal", c."enumVals", c."bootVal"
    FROM jsonb_to_recordset(${JSON.stringify(r.catalog)}::jsonb) AS c(name text, vartype text, unit text, context text, "minVal" text, "maxVal" text, "enumVals" jsonb, "bootVal" text)
    ON CONFLICT (major, name) DO NOTHING`);
  catalogued.add(key);
}

/** A major's catalogue, by setting name. */
export async function loadCatalog(db: Db, major: number): Promise<Map<string, SettingMeta>> {
  const r = await db.execute<{
    name: string;
    vartype: string;
    unit: string | null;
    context: string;
    min_val: string | null;
    max_val: string | null;
    enum_vals: string[] | null;
    boot_val: string | null;
  }>(sql`SELECT name, vartype, unit, context, min_val, max_val, enum_vals, boot_val FROM setting_catalog WHERE major = ${major}`);
  return new Map(
    r.rows.map((x) => [
      x.name,
      {
        name: x.name,
        vartype: x.vartype,
        unit: x.unit,
        context: x.context,
        minVal: x.min_val,
        maxVal: x.max_val,
        enumVals: x.enum_vals,
        bootVal: x.boot_val,
      },
    ]),
  );
}

/** What differs between two readings, with the values then (null: not there). */
export function changesBetween(
  before: Record<string, SettingReading> | null,
  after: Record<string, SettingReading>,
): Record<string, { from: string | null; to: string | null }> {
  const out: Record<string, { from: string | null; to: string | null }> = {};
  if (!before) return out;
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const n of names) {
    const a = Object.hasOwn(before, n) ? before[n] : undefined;
    const b = Object.hasOwn(after, n) ? after[n] : undefined;
    // A pending value counts as a change of its own: the restart that applies it is one more.
    if (a?.v !== b?.v || !!a?.p !== !!b?.p)
      out[n] = { from: a ? `${a.v}${a.p ? ' (pending restart)' : ''}` : null, to: b ? `${b.v}${b.p ? ' (pending restart)' : ''}` : null };
  }
  return out;
}
