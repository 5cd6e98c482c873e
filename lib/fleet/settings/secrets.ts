// What is kept of a setting's value, and so shown to whoever may see the instance (viewers too): never a
// secret. A connection string (primary_conninfo) or a command (archive_command, restore_command,
// ssl_passphrase_command) holds credentials in more forms than a pattern can know (a URI's user:secret@,
// an environment variable a backup tool reads, a passphrase printed by a script): of these settings no
// value is kept, only a digest, so that a change still shows as one (history, members that differ).
// Every other value has its password= and URI credentials masked. Applied where a reading is made and
// again wherever one is loaded, so that a snapshot kept by an older version is shown the same way.
import { createHash } from 'node:crypto';
import type { SettingReading } from '@/db/schema';

/** Settings whose value is never kept: connection strings and commands. */
export const valueNotKept = (name: string) => /(_conninfo|_command)$/.test(name.toLowerCase());

const HIDDEN = /^\(not kept: digest [0-9a-f]{16}\)$/;

/** The digest in place of a value: the same value, the same text; '' stays '' (none set says something). */
function hidden(v: string): string {
  if (v === '' || HIDDEN.test(v)) return v;
  return `(not kept: digest ${createHash('sha256').update(v).digest('hex').slice(0, 16)})`;
}

const MASK = '********';

/** password= (libpq's key = value, quoted or not), a URI's user:password@, and NAME_SECRET=/NAME_KEY= variables, masked. */
export function withoutSecrets(v: string): string {
  return (
    v
      .replace(/(password\s*=\s*)('(?:[^'\\]|\\.|'')*'|\S+)/gi, `$1${MASK}`)
      // scheme://user:password@host: the user stays, what follows the colon goes.
      .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@\s/]*@/gi, `$1${MASK}@`)
      // ?password=... in a URI's query, and variables named like secrets (AWS_SECRET_ACCESS_KEY=, WALG_..._KEY=, PGPASSWORD=).
      .replace(
        /\b([A-Za-z0-9_]*(?:SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|_KEY|CREDENTIALS?)[A-Za-z0-9_]*\s*=\s*)('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^\s&;]+)/gi,
        (m, k: string, val: string) => (val === MASK ? m : `${k}${MASK}`),
      )
  );
}

/** What is kept of setting `name`'s value. */
export const keptValue = (name: string, v: string) => (valueNotKept(name) ? hidden(v) : withoutSecrets(v));

/** A reading's settings as they are kept and shown. */
export function keptSettings(settings: Record<string, SettingReading>): Record<string, SettingReading> {
  const out: Record<string, SettingReading> = {};
  for (const [name, r] of Object.entries(settings)) out[name] = { ...r, v: keptValue(name, r.v) };
  return out;
}

/** A snapshot's changes (from -> to) as they are shown. */
export function keptChanges(
  changes: Record<string, { from: string | null; to: string | null }>,
): Record<string, { from: string | null; to: string | null }> {
  const out: Record<string, { from: string | null; to: string | null }> = {};
  const kept = (name: string, v: string | null) => (v === null ? null : keptValue(name, v));
  for (const [name, c] of Object.entries(changes)) out[name] = { from: kept(name, c.from), to: kept(name, c.to) };
  return out;
}
