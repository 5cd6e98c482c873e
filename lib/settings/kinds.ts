// The kinds of value a setting holds, each a zod schema over the raw string from the environment with
// what it accepts in words: the words go into the error that stops a process at start and into the
// table of docs/configuration.md, so they are written once, here. No Node module is imported: client
// components import modules that read settings (the rules' cron), and a browser has no node:net.
import { z } from 'zod';

/** One declared setting: how its raw string becomes a value, and how the docs show it. */
export interface Setting<T> {
  /** The type as the docs' table shows it: "whole number 1–256", "path", "JSON". */
  readonly type: string;
  /** What a value must be, in words: "a whole number from 1 to 256". */
  readonly accepts: string;
  /** The value when the variable is unset, empty or blank. */
  readonly fallback: T;
  /** The default as the docs' table shows it ('' when there is none). */
  readonly shownDefault: string;
  /** One line for the docs' table: what it is for, in the reader's terms. */
  readonly doc: string;
  /** A password or a token: its value is never shown, not even in the error that refuses it. */
  readonly secret: boolean;
  /** Read by the lab, the tests or the benchmarks only (the docs list these apart). */
  readonly lab: boolean;
  /** From the raw, non-blank string to the value. */
  readonly schema: z.ZodType<T, string>;
  /** Whether zod's issues say more than `accepts` does (a JSON value: which field is wrong). */
  readonly explain: boolean;
  /** A setting earlier versions read: any value is refused with this reason, never ignored. */
  readonly retired: string | null;
}

/** A setting whose value is not one it accepts; the message names the setting, the value and what it accepts. */
export class SettingError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
    this.name = 'SettingError';
  }
}

interface Common {
  doc: string;
  /** The docs' default when it is not the value itself ("the shipped file", "none: no hook runs"). */
  shown?: string;
  secret?: boolean;
  lab?: boolean;
}

/** With a default, a setting always has a value; without one, it is null when unset. */
type Val<T, O> = O extends { default: T } ? T : T | null;

function declare<T, O extends Common & { default?: T }>(
  o: O,
  type: string,
  accepts: string,
  schema: z.ZodType<T, string>,
  explain = false,
): Setting<Val<T, O>> {
  const fallback = (o.default ?? null) as Val<T, O>;
  return {
    type,
    accepts,
    fallback,
    shownDefault: o.shown ?? (o.default === undefined ? '' : shownValue(o.default)),
    doc: o.doc,
    secret: o.secret ?? false,
    lab: o.lab ?? false,
    schema,
    explain,
    retired: null,
  };
}

const shownValue = (v: unknown): string => (typeof v === 'string' ? `\`${v}\`` : typeof v === 'boolean' ? (v ? '1' : '0') : String(v));

const INT = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

/** A whole number within bounds ("8", not "8.5", "1e3" or "eight"). */
export const int = <O extends Common & { min: number; max: number; default?: number }>(o: O) =>
  declare<number, O>(
    o,
    `whole number ${String(o.min)}–${String(o.max)}`,
    `a whole number from ${String(o.min)} to ${String(o.max)}`,
    z.string().trim().regex(INT).transform(Number).pipe(z.number().int().min(o.min).max(o.max)),
  );

/** A number within bounds, fractions allowed ("0.2" seconds). */
export const num = <O extends Common & { min: number; max: number; default?: number }>(o: O) =>
  declare<number, O>(
    o,
    `number ${String(o.min)}–${String(o.max)}`,
    `a number from ${String(o.min)} to ${String(o.max)}`,
    z.string().trim().regex(DECIMAL).transform(Number).pipe(z.number().min(o.min).max(o.max)),
  );

/** Free text, or text a pattern bounds (a region's name, a token long enough to be a secret). */
export const text = <O extends Common & { default?: string; pattern?: RegExp; accepts?: string }>(o: O) =>
  declare<string, O>(o, o.secret ? 'secret' : 'text', o.accepts ?? 'text', o.pattern ? z.string().regex(o.pattern) : z.string());

/** A file or directory path; `absolute`: one that does not depend on the directory the process starts in. */
export const path = <O extends Common & { default?: string; absolute?: boolean }>(o: O) =>
  declare<string, O>(
    o,
    o.absolute ? 'absolute path' : 'path',
    o.absolute ? 'an absolute path' : 'a path',
    o.absolute ? z.string().startsWith('/') : z.string(),
  );

/** An http or https URL. */
export const url = <O extends Common & { default?: string }>(o: O) =>
  declare<string, O>(
    o,
    'URL',
    'an http or https URL',
    z
      .string()
      .trim()
      .pipe(z.url({ protocol: /^https?$/ })),
  );

/** One of a few words. */
export const oneOf = <const V extends readonly [string, ...string[]], O extends Common & { default?: V[number] }>(values: V, o: O) =>
  declare<V[number], O>(
    o,
    values.map((v) => `\`${v}\``).join(' or '),
    values.map((v) => JSON.stringify(v)).join(' or '),
    z.string().trim().pipe(z.enum(values)),
  );

/** On or off: 1 or 0 (true or false). */
export const flag = <O extends Common & { default: boolean }>(o: O) =>
  declare<boolean, O>(
    o,
    '1 or 0',
    '1 or 0 (true or false)',
    z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.enum(['1', '0', 'true', 'false']))
      .transform((v) => v === '1' || v === 'true'),
  );

const address = z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()]);

/** Addresses and CIDR blocks, separated by commas or spaces ("10.0.0.0/8, 192.168.1.10"); none when unset. */
export const networks = <O extends Common>(o: O) =>
  declare<string[], O & { default: string[] }>(
    { ...o, default: [], shown: o.shown ?? 'none' },
    'addresses, CIDR blocks',
    'addresses or CIDR blocks, separated by commas',
    z
      .string()
      .transform((s) => s.split(/[\s,]+/).filter(Boolean))
      .superRefine((items, ctx) => {
        for (const item of items)
          if (!address.safeParse(item).success)
            ctx.addIssue({ code: 'custom', message: `${JSON.stringify(item)} is not an address or a CIDR block` });
      }),
    true,
  );

/**
 * Postgres setting names, separated by commas or spaces, kept in lower case; none when unset. `refuse`
 * says why a name may never be listed (null: it may).
 */
export const settingNames = <O extends Common & { refuse: (name: string) => string | null }>(o: O) =>
  declare<string[], O & { default: string[] }>(
    { ...o, default: [], shown: o.shown ?? 'none' },
    'setting names',
    'Postgres setting names (work_mem, pg_stat_statements.max), separated by commas',
    z
      .string()
      .transform((s) =>
        s
          .toLowerCase()
          .split(/[\s,]+/)
          .filter(Boolean),
      )
      .superRefine((items, ctx) => {
        for (const item of items) {
          const why = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/.test(item)
            ? o.refuse(item)
            : `${JSON.stringify(item)} is not a setting's name`;
          if (why) ctx.addIssue({ code: 'custom', message: why });
        }
      }),
    true,
  );

const LISTEN = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;
const BARE_PORT = /^()()(\d{1,5})$/;

/** Where a server listens: "host:port", "[v6]:port" or a bare port (on 127.0.0.1); port 0 takes a free one. */
export const listen = <O extends Common>(o: O) =>
  declare<{ host: string; port: number }, O>(
    o,
    'host:port',
    'host:port (as 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464)',
    z
      .string()
      .trim()
      .transform((raw, ctx) => {
        const m = LISTEN.exec(raw) ?? BARE_PORT.exec(raw);
        const port = m ? Number(m[3]) : NaN;
        if (!m || port > 65535) {
          ctx.addIssue({ code: 'custom', message: 'not host:port' });
          return z.NEVER;
        }
        return { host: m[1] || m[2] || '127.0.0.1', port };
      }),
  );

/** A JSON value its schema checks; the error says which field is wrong. */
export const json = <T, O extends Common & { accepts: string }>(schema: z.ZodType<T>, o: O) =>
  declare<T, O>(
    o,
    'JSON',
    o.accepts,
    z
      .string()
      .transform((s, ctx) => {
        try {
          return JSON.parse(s) as unknown;
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `the value is not JSON (${(err as Error).message})` });
          return z.NEVER;
        }
      })
      .pipe(schema),
    true,
  );

/** A setting earlier versions read and this one refuses, saying why and what replaced it. */
export const retired = (o: Common & { why: string }): Setting<null> => ({
  ...declare<null, Common>(
    o,
    'refused',
    'unset',
    z.string().transform(() => null),
  ),
  retired: o.why,
});

/** The value of setting `name` from its raw string: the fallback when unset or blank, else the parsed value or a SettingError. */
export function readSetting<T>(name: string, s: Setting<T>, raw: string | undefined): T {
  // Empty is unset: a deployment template leaves `PGHERD_X=` for what it does not configure.
  if (raw === undefined || raw.trim() === '') return s.fallback;
  if (s.retired !== null) throw new SettingError(name, `${name} is not read any more: ${s.retired}`);
  const r = s.schema.safeParse(raw);
  if (r.success) return r.data;
  const detail = s.explain
    ? `: ${r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ')}`
    : '';
  throw new SettingError(name, `${name} must be ${s.accepts}${detail} (got ${shownRaw(s, raw)})`);
}

const SHOWN_MAX = 120;

/** The value as an error shows it: quoted and cut short, or only its length for a secret. */
function shownRaw(s: Setting<unknown>, raw: string): string {
  if (s.secret) return `${String(raw.length)} characters, not shown`;
  const q = JSON.stringify(raw);
  return q.length > SHOWN_MAX ? `${q.slice(0, SHOWN_MAX)}…` : q;
}
