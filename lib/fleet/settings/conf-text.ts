// Settings as people write them: postgresql.conf lines (`name = value`, `#` comments), parsed into names
// and values and written back one way (sorted, each value quoted), so that a group's text reads the same
// whoever saved it and two versions compare line by line.

/** A setting's name: Postgres's own (letters, digits, underscores) or an extension's (`pg_stat_statements.max`). */
const NAME = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

/**
 * Settings pgherd sets per member (where it listens, its files, where it streams from, its archive): a
 * group that set them would give every member one value that only one of them may have.
 */
export const PER_MEMBER = new Set([
  'archive_command',
  'archive_library',
  'cluster_name',
  'config_file',
  'data_directory',
  'external_pid_file',
  'hba_file',
  'ident_file',
  'include',
  'include_dir',
  'include_if_exists',
  'listen_addresses',
  'port',
  'primary_conninfo',
  'primary_slot_name',
  'recovery_target',
  'recovery_target_action',
  'recovery_target_inclusive',
  'recovery_target_lsn',
  'recovery_target_name',
  'recovery_target_time',
  'recovery_target_timeline',
  'recovery_target_xid',
  'restore_command',
  'ssl_ca_file',
  'ssl_cert_file',
  'ssl_crl_dir',
  'ssl_crl_file',
  'ssl_key_file',
  'unix_socket_directories',
]);

export type ConfParse = { ok: true; settings: Map<string, string> } | { ok: false; errors: string[] };

/** The value of one line after `=` (or a space): a quoted string ('' for a quote inside) or a bare word. */
function valueOf(rest: string): { value: string } | { error: string } {
  const r = rest.trim();
  if (r.startsWith("'")) {
    let out = '';
    for (let i = 1; i < r.length; i++) {
      const c = r[i] as string;
      if (c === "'") {
        if (r[i + 1] === "'") {
          out += "'";
          i++;
          continue;
        }
        const after = r.slice(i + 1).trim();
        if (after && !after.startsWith('#')) return { error: `text after the closing quote: ${after}` };
        return { value: out };
      }
      if (c === '\\') return { error: 'a backslash in a value: write it without escapes' };
      out += c;
    }
    return { error: 'a quote that is not closed' };
  }
  const bare = r.replace(/\s+#.*$/, '').replace(/^#.*$/, '');
  if (!bare) return { error: 'no value' };
  if (!/^[A-Za-z0-9_.+\-:{}*/() ]+$/.test(bare)) return { error: `quote the value: ${bare}` };
  return { value: bare.trim() };
}

/** Parses postgresql.conf lines; every line that is not a setting, a comment or blank is an error. */
export function parseConf(text: string): ConfParse {
  const settings = new Map<string, string>();
  const errors: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^([A-Za-z0-9_.]+)\s*(=|\s)\s*(.*)$/.exec(line);
    if (!m) return void errors.push(`line ${i + 1}: not "name = value": ${line.slice(0, 80)}`);
    const name = (m[1] as string).toLowerCase();
    if (!NAME.test(name)) return void errors.push(`line ${i + 1}: not a setting's name: ${name}`);
    if (PER_MEMBER.has(name)) return void errors.push(`line ${i + 1}: ${name} is set per member by pgherd, not by a group`);
    const v = valueOf(m[3] as string);
    if ('error' in v) return void errors.push(`line ${i + 1} (${name}): ${v.error}`);
    if (v.value.length > 1000) return void errors.push(`line ${i + 1} (${name}): at most 1,000 characters`);
    if (/[\u0000-\u001f\u007f]/.test(v.value)) return void errors.push(`line ${i + 1} (${name}): a control character in the value`);
    if (settings.has(name)) return void errors.push(`line ${i + 1}: ${name} is set twice`);
    settings.set(name, v.value);
  });
  if (settings.size > 500) errors.push('at most 500 settings');
  return errors.length ? { ok: false, errors } : { ok: true, settings };
}

/** A value as postgresql.conf (and ALTER SYSTEM) takes it: always quoted. */
export const quoteConf = (v: string) => `'${v.replaceAll("'", "''")}'`;

/** The one way settings are written: sorted by name, one a line, values quoted. */
export function renderConf(settings: Map<string, string> | Record<string, string>): string {
  const entries = settings instanceof Map ? [...settings] : Object.entries(settings);
  return entries
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k} = ${quoteConf(v)}`)
    .join('\n');
}

/** Parses text known to be valid (what was saved); throws otherwise. */
export function settingsOf(text: string): Map<string, string> {
  const p = parseConf(text);
  if (!p.ok) throw new Error(`settings that do not parse: ${p.errors.join('; ')}`);
  return p.settings;
}
