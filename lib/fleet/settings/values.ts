// A setting's value against what Postgres says of the setting (pg_settings: its type, unit, bounds and
// choices): whether Postgres would take it, and in the form pg_settings shows it (a memory size in the
// setting's own unit, a boolean as on/off), so that what a group says and what runs compare as values,
// not as text ("1GB" and "131072" of 8kB are the same shared_buffers). Postgres's own rules
// (src/backend/utils/misc/guc.c: parse_int, parse_real, parse_bool, the memory and time unit tables).

/** What pg_settings says of a setting, that does not change while the server runs. */
export interface SettingMeta {
  name: string;
  vartype: string;
  unit: string | null;
  context: string;
  minVal: string | null;
  maxVal: string | null;
  enumVals: string[] | null;
  bootVal: string | null;
}

const MEMORY: Record<string, number> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
const TIME: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** A pg_settings unit ("8kB", "16MB", "ms", "s") in bytes or milliseconds, and which kind. */
function baseOf(unit: string | null): { kind: 'memory' | 'time'; size: number } | null {
  if (!unit) return null;
  const m = /^(\d*)\s*([a-zA-Z]+)$/.exec(unit);
  if (!m) return null;
  const n = m[1] ? Number(m[1]) : 1;
  const u = m[2] as string;
  if (u in MEMORY) return { kind: 'memory', size: n * (MEMORY[u] as number) };
  if (u in TIME) return { kind: 'time', size: n * (TIME[u] as number) };
  return null;
}

export type Checked = { ok: true; value: string } | { ok: false; why: string };

const BOOL_ON = ['on', 'true', 'yes', '1'];
const BOOL_OFF = ['off', 'false', 'no', '0'];

function parseBool(v: string): boolean | null {
  const s = v.trim().toLowerCase();
  if (!s) return null;
  // Postgres takes any unambiguous prefix of true/false/yes/no, and on/off in full (or "of").
  if (BOOL_ON.includes(s) || 'true'.startsWith(s) || 'yes'.startsWith(s)) return s === 'o' ? null : true;
  if (BOOL_OFF.includes(s) || 'false'.startsWith(s) || 'no'.startsWith(s) || s === 'of') return false;
  return null;
}

/** A number with an optional unit, in the setting's unit (integer settings round as Postgres does). */
function parseNumber(v: string, meta: SettingMeta, integer: boolean): number | string {
  const m = /^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  if (!m) return `not a number${meta.unit ? ` (or a number with a unit, e.g. ${example(meta)})` : ''}`;
  let n = Number(m[1]);
  const unit = m[2] as string;
  if (unit) {
    const base = baseOf(meta.unit);
    if (!base) return `${meta.name} takes no unit`;
    const table = base.kind === 'memory' ? MEMORY : TIME;
    if (!(unit in table)) return `${unit} is not a ${base.kind} unit (${Object.keys(table).join(', ')})`;
    n = (n * (table[unit] as number)) / base.size;
  }
  if (integer) {
    n = Math.round(n);
    if (!Number.isSafeInteger(n)) return 'out of range';
  }
  return n;
}

const example = (meta: SettingMeta) => (baseOf(meta.unit)?.kind === 'time' ? '30s' : '256MB');

/** Whether Postgres would take `v` for the setting, and the value as pg_settings would show it. */
export function checkValue(meta: SettingMeta, v: string): Checked {
  switch (meta.vartype) {
    case 'bool': {
      const b = parseBool(v);
      return b === null ? { ok: false, why: `${meta.name} is on or off` } : { ok: true, value: b ? 'on' : 'off' };
    }
    case 'enum': {
      const choices = meta.enumVals ?? [];
      const hit = choices.find((c) => c.toLowerCase() === v.trim().toLowerCase());
      return hit === undefined ? { ok: false, why: `${meta.name} is one of ${choices.join(', ')}` } : { ok: true, value: hit };
    }
    case 'integer':
    case 'real': {
      const n = parseNumber(v, meta, meta.vartype === 'integer');
      if (typeof n === 'string') return { ok: false, why: `${meta.name}: ${n}` };
      const min = meta.minVal === null ? null : Number(meta.minVal);
      const max = meta.maxVal === null ? null : Number(meta.maxVal);
      if ((min !== null && n < min) || (max !== null && n > max))
        return {
          ok: false,
          why: `${meta.name}: ${show(meta, String(n))} is outside ${show(meta, meta.minVal ?? '?')} .. ${show(meta, meta.maxVal ?? '?')}`,
        };
      return { ok: true, value: String(n) };
    }
    default:
      return { ok: true, value: v };
  }
}

/** Text as Postgres may give it back: some settings are shown canonicalised (DateStyle 'iso, mdy' reads 'ISO, MDY'). */
const looseText = (v: string) =>
  v
    .trim()
    .toLowerCase()
    .replace(/\s*,\s*/g, ',');

/** Whether two values as pg_settings shows them are the same (numbers by value, text as Postgres may canonicalise it). */
export function sameValue(meta: Pick<SettingMeta, 'vartype'> | null, a: string, b: string): boolean {
  if (a === b) return true;
  if (meta && (meta.vartype === 'real' || meta.vartype === 'integer'))
    return Math.abs(Number(a) - Number(b)) <= 1e-9 * Math.max(1, Math.abs(Number(a)));
  if (meta?.vartype === 'string') return looseText(a) === looseText(b);
  return false;
}

/** A value in the setting's unit, for people and as a group can hold it: 16384 of 8kB reads "128MB", 60 of s "1min", 0 "0". */
export function show(meta: Pick<SettingMeta, 'unit'> | null, v: string): string {
  const base = baseOf(meta?.unit ?? null);
  const n = Number(v);
  if (!base || !Number.isFinite(n) || v.trim() === '') return v;
  if (n <= 0) return v; // 0, and -1: "use the default", "off"
  const total = n * base.size;
  const table = base.kind === 'memory' ? MEMORY : TIME;
  const units = Object.entries(table).sort(([, a], [, b]) => b - a);
  for (const [u, size] of units) if (total >= size && total % size === 0) return `${total / size}${u}`;
  // Not a whole number of any unit (2.5 ms): in the smallest one, which Postgres takes as it is.
  return base.kind === 'memory' ? `${total}B` : `${total}ms`;
}

/** What a formula may use: the host's memory and cores. */
export interface Host {
  memoryMb: number | null;
  cpus: number | null;
}

/**
 * A value with formulas in braces, each replaced by its whole number: `{memory_mb / 4}MB` on a 16 GiB
 * host is `4096MB`. A formula is arithmetic (+ - * / and parentheses) of numbers, memory_mb, cpus, and
 * min() and max(); nothing else is evaluated. An error says why (a host whose memory is not known).
 */
export function evaluate(value: string, host: Host): { ok: true; value: string } | { ok: false; why: string } {
  const failed: { why?: string } = {};
  const out = value.replace(/\{([^{}]*)\}/g, (_, expr: string) => {
    try {
      const n = new Formula(expr, host).run();
      return String(Math.floor(n));
    } catch (err) {
      failed.why ??= `{${expr}}: ${(err as Error).message}`;
      return '';
    }
  });
  if (failed.why) return { ok: false, why: failed.why };
  if (/[{}]/.test(out)) return { ok: false, why: `a brace that does not close: ${value}` };
  return { ok: true, value: out };
}

/** Whether a value has a formula (checked when saved, computed per host). */
export const hasFormula = (v: string) => /\{[^{}]*\}/.test(v);

class Formula {
  private i = 0;
  private readonly tokens: string[];
  constructor(
    expr: string,
    private readonly host: Host,
  ) {
    this.tokens = expr.match(/\d+(?:\.\d+)?|[a-z_]+|[-+*/(),]|\S/g) ?? [];
  }
  run(): number {
    const n = this.sum();
    if (this.i < this.tokens.length) throw new Error(`unexpected ${String(this.tokens[this.i])}`);
    if (!Number.isFinite(n)) throw new Error('not a finite number');
    return n;
  }
  private peek = () => this.tokens[this.i];
  private sum(): number {
    let n = this.product();
    while (this.peek() === '+' || this.peek() === '-') n = this.tokens[this.i++] === '+' ? n + this.product() : n - this.product();
    return n;
  }
  private product(): number {
    let n = this.factor();
    while (this.peek() === '*' || this.peek() === '/') {
      const op = this.tokens[this.i++];
      const m = this.factor();
      if (op === '/' && m === 0) throw new Error('division by zero');
      n = op === '*' ? n * m : n / m;
    }
    return n;
  }
  private factor(): number {
    const t = this.tokens[this.i++];
    if (t === undefined) throw new Error('ends too soon');
    if (t === '-') return -this.factor();
    if (t === '(') {
      const n = this.sum();
      if (this.tokens[this.i++] !== ')') throw new Error('a parenthesis that does not close');
      return n;
    }
    if (/^\d/.test(t)) return Number(t);
    if (t === 'memory_mb' || t === 'cpus') {
      const v = t === 'memory_mb' ? this.host.memoryMb : this.host.cpus;
      if (v === null) throw new Error(`the host's ${t === 'memory_mb' ? 'memory' : 'cores'} are not known (its agent reports them)`);
      return v;
    }
    if (t === 'min' || t === 'max') {
      if (this.tokens[this.i++] !== '(') throw new Error(`${t} takes (a, b)`);
      const args = [this.sum()];
      while (this.peek() === ',') {
        this.i++;
        args.push(this.sum());
      }
      if (this.tokens[this.i++] !== ')') throw new Error('a parenthesis that does not close');
      return t === 'min' ? Math.min(...args) : Math.max(...args);
    }
    throw new Error(`${t} is not known (numbers, memory_mb, cpus, min, max, + - * /)`);
  }
}
