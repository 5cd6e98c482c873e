// What the schema copy hands psql on green's host comes from blue, which may be hostile (a role there
// can name objects to break out of pg_dump's comments). pg_dump 15.14, 16.10 and 17.6 and later open
// their output with `\restrict <key>`: psql then runs no meta-command until `\unrestrict <key>`, so
// a line smuggled into the dump cannot reach the shell (`\!`) or another database (`\connect`). The
// guard is kept as pg_dump wrote it. A dump without it (an older pg_dump) is refused when a line opens
// with a meta-command, and is otherwise wrapped in a guard of pgherd's own (`\restrict` with a random
// key, which nothing in the dump can know): a meta-command hidden mid-line (`SELECT 1 \! id`) is then
// refused by psql too, and a psql too old to know `\restrict` stops at the first line (ON_ERROR_STOP).
// And a database's name goes to libpq as `dbname='…'`: a bare `-d name` with an `=` in it would be read
// as a whole connection string (another host, another user).
import { randomBytes } from 'node:crypto';
import { conninfoValue } from '@/lib/adapters/libpq/conninfo';
import { Refusal } from '@/lib/fleet/refusal';

const RESTRICT = /^\\restrict [A-Za-z0-9]+$/;

/**
 * The script psql runs for a dump: as it came when pg_dump guarded it (its `\restrict` line first),
 * else refused if any line opens with a meta-command, else wrapped in pgherd's own guard. `what` names
 * the dump in the refusal.
 */
export function guardedScript(dump: string, what: string): string {
  const lines = dump.split('\n');
  const first = lines.findIndex((l) => l.trim() !== '' && !l.startsWith('--'));
  if (first >= 0 && RESTRICT.test(lines[first] ?? '')) return dump;
  const meta = lines.find((l) => /^\s*\\/.test(l));
  if (meta !== undefined)
    throw new Refusal(
      'not-applicable',
      `${what} holds a psql meta-command (${JSON.stringify(meta.slice(0, 40))}) and no \\restrict guard: it is not run (use pg_dump 15.14, 16.10, 17.6 or later on blue's host)`,
    );
  const key = randomBytes(24).toString('hex');
  return `\\restrict ${key}\n${dump}${dump.endsWith('\n') ? '' : '\n'}\\unrestrict ${key}\n`;
}

/** Whether libpq would read `name`, given as a database name, as a connection string or URI. */
export const readAsConnectionString = (name: string) => name.includes('=') || /^postgres(ql)?:\/\//i.test(name);

/** A database name for `-d`, as data: libpq parses `dbname='…'` and takes the quoted value as the name whatever it holds. */
export const dbnameArg = (name: string) => `dbname=${conninfoValue(name)}`;
