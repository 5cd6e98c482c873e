// PgBouncer's configuration as text: re-point [databases] entries at another host and port,
// keeping everything else (comments, order, other entries, the entry's other settings) as it was.

/** Names pgherd accepts for [databases] entries: what PAUSE / RESUME can name unquoted. */
export const ENTRY_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/;
const HOST = /^[A-Za-z0-9_.:-]{1,253}$/;

export class PoolerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoolerConfigError';
  }
}

interface Pair {
  key: string;
  value: string;
}

/** `host=a port=5432 dbname='my db'` -> pairs (values unquoted); libpq-style quoting with \\ and \'. */
export function parseConnstr(s: string): Pair[] {
  const out: Pair[] = [];
  let i = 0;
  const skip = () => {
    while (i < s.length && /\s/.test(s.charAt(i))) i++;
  };
  for (;;) {
    skip();
    if (i >= s.length) break;
    const eq = s.indexOf('=', i);
    if (eq < 0) throw new PoolerConfigError(`cannot read "${s}": "${s.slice(i)}" has no "="`);
    const key = s.slice(i, eq).trim();
    i = eq + 1;
    skip();
    let value = '';
    if (s.charAt(i) === "'") {
      for (i++; i < s.length && s.charAt(i) !== "'"; i++) value += s.charAt(i) === '\\' ? s.charAt(++i) : s.charAt(i);
      if (s.charAt(i) !== "'") throw new PoolerConfigError(`cannot read "${s}": unterminated quote`);
      i++;
    } else {
      while (i < s.length && !/\s/.test(s.charAt(i))) value += s.charAt(i++);
    }
    out.push({ key, value });
  }
  return out;
}

function formatConnstr(pairs: Pair[]): string {
  return pairs
    .map(({ key, value }) => `${key}=${/^[^\s'\\]+$/.test(value) ? value : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`}`)
    .join(' ');
}

export interface EntryTarget {
  host: string;
  port: number;
}

/** Where each named entry of [databases] points now (host, port; PgBouncer's defaults when unset). */
export function readEntries(text: string): Map<string, EntryTarget & { line: number }> {
  const out = new Map<string, EntryTarget & { line: number }>();
  let section = '';
  text.split('\n').forEach((raw, line) => {
    const l = raw.trim();
    if (!l || l.startsWith(';') || l.startsWith('#')) return;
    const sec = /^\[(.+)\]$/.exec(l);
    if (sec) {
      section = (sec[1] ?? '').trim().toLowerCase();
      return;
    }
    if (section !== 'databases') return;
    const eq = l.indexOf('=');
    if (eq < 0) return;
    const pairs = parseConnstr(l.slice(eq + 1));
    const get = (k: string) => pairs.find((p) => p.key === k)?.value;
    out.set(l.slice(0, eq).trim(), { host: get('host') ?? '', port: Number(get('port') ?? 5432), line });
  });
  return out;
}

/**
 * The configuration with each of `entries` pointing at `to`. Every entry must exist; host and port
 * are checked so that nothing else can be written into the file.
 */
export function repointEntries(text: string, entries: string[], to: EntryTarget): string {
  if (!HOST.test(to.host)) throw new PoolerConfigError(`not a host name or address: ${JSON.stringify(to.host)}`);
  if (!Number.isInteger(to.port) || to.port < 1 || to.port > 65535) throw new PoolerConfigError(`not a port: ${to.port}`);
  const found = readEntries(text);
  const lines = text.split('\n');
  for (const name of entries) {
    const e = found.get(name);
    if (!e) throw new PoolerConfigError(`[databases] has no entry "${name}"`);
    const raw = lines[e.line] ?? '';
    const eq = raw.indexOf('=');
    const pairs = parseConnstr(raw.slice(eq + 1));
    for (const [key, value] of [
      ['host', to.host],
      ['port', String(to.port)],
    ] as const) {
      const p = pairs.find((x) => x.key === key);
      if (p) p.value = value;
      else pairs.push({ key, value });
    }
    lines[e.line] = `${raw.slice(0, eq).trimEnd()} = ${formatConnstr(pairs)}`;
  }
  return lines.join('\n');
}
