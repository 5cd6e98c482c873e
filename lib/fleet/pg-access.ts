// How pgherd connects to the fleet's PostgreSQL instances and PgBouncers: a user, a password and TLS
// per environment (the environment of the server the address belongs to), from the JSON file
// PGHERD_PG_CONFIG names. Validated whole at load, like the DNS configuration.
//
// The rule it enforces: a password only ever goes to a server whose TLS certificate pgherd has
// verified for the address it connects to (verify-full). An entry with a password and no verified TLS
// is refused at load, and a connection without a configured password answers a password request
// with an error, never with PGPASSWORD or ~/.pgpass (which node-postgres would otherwise send).
import { readFileSync, statSync } from 'node:fs';
import { TLSSocket, type ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { z } from 'zod';
import { metrics } from '@/lib/adapters/metrics/registry';
import { logLine } from '@/lib/adapters/log/log';
import { setting } from '@/lib/settings/settings';
import { installScramCache, rotatingPassword } from '@/lib/fleet/scram-cache';

// A SCRAM login to an instance pgherd logged in to before skips PBKDF2 (lib/fleet/scram-cache.ts).
installScramCache();

const path = z.string().startsWith('/', 'an absolute path').max(4096);
const noControl = (s: string) => !/[\u0000-\u001f\u007f]/.test(s);

const tlsSchema = z
  .object({
    /** verify-full: TLS required, the certificate checked against the CA and the address connected to. */
    mode: z.enum(['disable', 'verify-full']),
    /** The CA that signed the servers' certificates (default: the system's). */
    caFile: path.optional(),
    /** A client certificate, for servers that authenticate pgherd by certificate. */
    certFile: path.optional(),
    keyFile: path.optional(),
  })
  .strict()
  .refine((t) => !t.certFile === !t.keyFile, 'give both certFile and keyFile, or neither')
  .refine((t) => t.mode === 'verify-full' || (!t.caFile && !t.certFile), 'caFile, certFile and keyFile need mode verify-full');

const secret = {
  password: z.string().min(1).max(1024).optional(),
  passwordFile: path.optional(),
};

const PASSWORD_NEEDS_TLS = 'a password is only sent over TLS that verifies the server\'s certificate: set tls.mode to "verify-full"';
const PASSWORD_NEEDS_CA =
  "a password is only sent to a server whose certificate a CA you name signed (the system's CAs sign certificates for anyone's address): set tls.caFile";

function passwordRules<T extends { password?: string; passwordFile?: string; tls?: { mode: string; caFile?: string } }>(s: z.ZodType<T>) {
  return s
    .refine((e) => !(e.password && e.passwordFile), 'give password or passwordFile, not both')
    .refine((e) => !(e.password || e.passwordFile) || e.tls?.mode === 'verify-full', PASSWORD_NEEDS_TLS)
    .refine((e) => !(e.password || e.passwordFile) || e.tls?.mode !== 'verify-full' || !!e.tls.caFile, PASSWORD_NEEDS_CA);
}

const poolerSchema = passwordRules(z.object({ ...secret, tls: tlsSchema.optional() }).strict());

/**
 * The REST API of the environment's Patroni members: basic auth, sent only over https that verifies
 * the member's certificate against caFile (required: a public CA signs certificates for anyone's name).
 */
const patroniSchema = z
  .object({
    user: z
      .string()
      .min(1)
      .max(256)
      .refine(noControl, 'no control characters')
      .refine((u) => !u.includes(':'), 'no colon (basic auth)'),
    ...secret,
    caFile: path.optional(),
    /** Each member's patroni.yml on its host, for Rotate pgherd's credentials; `{data_directory}` is the member's. */
    configFile: z
      .string()
      .max(4096)
      .regex(/^(\/|\{data_directory\}\/)[A-Za-z0-9._/{}-]*$/, 'an absolute path, or one under {data_directory} (letters, digits, . _ - /)')
      .default('/etc/patroni/patroni.yml'),
  })
  .strict()
  .refine((e) => !(e.password && e.passwordFile), 'give password or passwordFile, not both')
  .refine((e) => e.password || e.passwordFile, 'give password or passwordFile')
  .refine((e) => !!e.caFile, PASSWORD_NEEDS_CA.replace('tls.caFile', 'caFile'));

/** Files holding a repository's secrets: read by the worker when it writes pgBackRest's configuration, never here. */
const credentialFields = {
  cipherPassFile: path.optional(),
  s3KeyFile: path.optional(),
  s3SecretFile: path.optional(),
};
const BOTH_KEYS = 'give both s3KeyFile and s3SecretFile, or neither';
const backupCredentials = z
  .object(credentialFields)
  .strict()
  .refine((b) => !b.s3KeyFile === !b.s3SecretFile, BOTH_KEYS);

const hostName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:-]+$/, 'a host name or address');

/** Where the environment's S3 repositories are: the configuration's, never a policy's fields. */
const s3PlaceSchema = z
  .object({
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
    endpoint: hostName,
    region: z.string().regex(/^[a-z0-9-]{1,40}$/, 'a region such as eu-west-1'),
    connectHost: hostName.optional(),
    port: z.number().int().min(1).max(65535).default(443),
    caFile: path.optional(),
  })
  .strict();

/**
 * The environment's backups (lib/fleet/backups): where its S3 repositories are, and the files holding the
 * repository's cipher passphrase and S3 keys, per environment and per herd (`herds`, in place of the
 * environment's for that herd's stanza). `s3KeyType: "auto"`: the hosts' instance role, no keys written.
 * The files are read by the worker only, when it writes pgBackRest's configuration (mode 0600).
 */
const backupSchema = z
  .object({
    ...credentialFields,
    s3KeyType: z.enum(['shared', 'auto']).default('shared'),
    s3: s3PlaceSchema.optional(),
    herds: z.record(z.string().min(1).max(63), backupCredentials).default({}),
  })
  .strict()
  .refine((b) => !b.s3KeyFile === !b.s3SecretFile, BOTH_KEYS)
  .refine((b) => b.s3KeyType === 'shared' || (!b.s3KeyFile && Object.values(b.herds).every((h) => !h.s3KeyFile)), {
    message: 's3KeyType "auto" takes the hosts\' instance role: give no S3 key files with it',
  });

const entrySchema = passwordRules(
  z
    .object({
      user: z.string().min(1).max(63).refine(noControl, 'no control characters'),
      ...secret,
      tls: tlsSchema.optional(),
      /** PgBouncer's admin console on this environment's poolers (its user is the pooler's admin user). */
      pgbouncer: poolerSchema.optional(),
      patroni: patroniSchema.optional(),
      backup: backupSchema.optional(),
    })
    .strict(),
);

export const pgAccessSchema = z
  .object({
    environments: z.record(z.string().min(1).max(63), entrySchema).default({}),
    /**
     * For environments not listed; without it, an environment not listed is not connected to at all. No
     * backup block: one there would hand the same keys and passphrase to every environment not listed.
     */
    default: entrySchema
      .refine((e) => !e.backup, {
        message:
          'no backup block in default: it would share its keys and passphrase with every environment not listed; give each environment its own',
        path: ['backup'],
      })
      .optional(),
  })
  .strict();

/** What a connection to one environment's servers is made with. */
export interface Access {
  user: string;
  password: string | null;
  /** null: no TLS. Otherwise verified against the CA and the address (rejectUnauthorized, host name check). */
  tls: ConnectionOptions | null;
}

export interface EnvironmentAccess {
  postgres: Access;
  /** The user comes from the pooler's registration (its admin user). */
  pgbouncer: Omit<Access, 'user'>;
  /** Patroni's REST API on this environment's servers (null: none configured; Patroni herds are then read only). */
  patroni: {
    user: string;
    password: string;
    /** Passwords being rotated to, tried in turn where `password` is refused (401). */
    next: string[];
    caFile: string | null;
    /** Where each member's Patroni configuration is on its host (`{data_directory}`: the member's). */
    configFile: string;
  } | null;
  /** The environment's backups: where its S3 repositories are and which files hold its secrets (null: none configured). */
  backup: BackupConfig | null;
}

export type BackupCredentialFiles = z.infer<typeof backupCredentials>;
export type BackupConfig = z.infer<typeof backupSchema>;

export interface PgAccessConfig {
  environments: Map<string, EnvironmentAccess>;
  fallback: EnvironmentAccess | null;
}

type Reader = (file: string) => string;

function tlsOptions(t: z.infer<typeof tlsSchema> | undefined, read: Reader): ConnectionOptions | null {
  if (!t || t.mode === 'disable') return null;
  return {
    rejectUnauthorized: true,
    ...(t.caFile ? { ca: read(t.caFile) } : {}),
    ...(t.certFile && t.keyFile ? { cert: read(t.certFile), key: read(t.keyFile) } : {}),
  };
}

/** A line after a password file's first: the next password, with the salt of the verifier set with it (Postgres), or alone (Patroni's REST). */
const NEXT_LINE = /^(?:scram-salt:([A-Za-z0-9+/]+={0,2})|next):(.+)$/;

/**
 * A password file: the password on its first line; while pgherd rotates it (lib/fleet/objects/own-credentials.ts),
 * further lines `scram-salt:<salt>:<next password>`, each used with a server whose verifier has that salt,
 * or `next:<next password>`, tried where the one in force is refused (Patroni's REST API).
 */
export function parsePasswordFile(text: string, file: string): { password: string; next: Map<string, string>; later: string[] } {
  const lines = text.split(/\r?\n/);
  const password = lines[0] ?? '';
  if (!password) throw new Error(`${file} is empty`);
  const next = new Map<string, string>();
  const later: string[] = [];
  // Lines after the first that are not staged passwords (a blank line, a comment) are not read: a file that
  // worked before rotation existed works the same.
  for (const line of lines.slice(1)) {
    const m = NEXT_LINE.exec(line);
    if (!m) continue;
    const [, salt, pw = ''] = m;
    if (salt) next.set(salt, pw);
    later.push(pw);
  }
  return { password, next, later };
}

function passwordOf(e: { password?: string; passwordFile?: string }, read: Reader, rotates = false): string | null {
  if (e.password) return e.password;
  if (!e.passwordFile) return null;
  const { password, next } = parsePasswordFile(read(e.passwordFile), e.passwordFile);
  // pgherd's own role and PgBouncer admin: while it rotates, a token the SCRAM exchange answers by the server's salt.
  return rotates ? rotatingPassword(password, next) : password;
}

function patroniAccess(p: z.infer<typeof patroniSchema>, read: Reader): NonNullable<EnvironmentAccess['patroni']> {
  const file = p.passwordFile ? parsePasswordFile(read(p.passwordFile), p.passwordFile) : null;
  return {
    user: p.user,
    password: p.password ?? file?.password ?? '',
    next: file?.later ?? [],
    caFile: p.caFile ?? null,
    configFile: p.configFile,
  };
}

function toAccess(e: z.infer<typeof entrySchema>, read: Reader): EnvironmentAccess {
  return {
    postgres: { user: e.user, password: passwordOf(e, read, true), tls: tlsOptions(e.tls, read) },
    pgbouncer: e.pgbouncer
      ? { password: passwordOf(e.pgbouncer, read, true), tls: tlsOptions(e.pgbouncer.tls, read) }
      : { password: null, tls: null },
    patroni: e.patroni ? patroniAccess(e.patroni, read) : null,
    // Paths only: the secrets are read by the worker when it needs them (lib/fleet/backups/secrets.ts).
    backup: e.backup ?? null,
  };
}

const readText: Reader = (f) => readFileSync(/*turbopackIgnore: true*/ f, 'utf8');

export function parsePgAccess(json: unknown, read: Reader = readText): PgAccessConfig {
  const r = pgAccessSchema.safeParse(json);
  if (!r.success)
    throw new Error(`PGHERD_PG_CONFIG: ${r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  const wrap = (where: string, f: () => EnvironmentAccess) => {
    try {
      return f();
    } catch (err) {
      throw new Error(`PGHERD_PG_CONFIG: ${where}: ${(err as Error).message}`);
    }
  };
  const fallback = r.data.default;
  return {
    environments: new Map(
      Object.entries(r.data.environments).map(([env, e]) => [env, wrap(`environments.${env}`, () => toAccess(e, read))]),
    ),
    fallback: fallback ? wrap('default', () => toAccess(fallback, read)) : null,
  };
}

/** PGHERD_PG_CONFIG as written (paths, not what the files hold); null when it is not set. Throws when it is invalid. */
export function rawPgAccess(): z.infer<typeof pgAccessSchema> | null {
  const file = setting('PGHERD_PG_CONFIG');
  if (!file) return null;
  const r = pgAccessSchema.safeParse(JSON.parse(readFileSync(/*turbopackIgnore: true*/ file, 'utf8')));
  if (!r.success) throw new Error(`PGHERD_PG_CONFIG: ${r.error.issues.map((i) => i.message).join('; ')}`);
  return r.data;
}

/** Without PGHERD_PG_CONFIG: PGHERD_PG_USER (default postgres) everywhere, no password, no TLS. */
function legacy(): PgAccessConfig {
  const user = setting('PGHERD_PG_USER');
  return {
    environments: new Map(),
    fallback: {
      postgres: { user, password: null, tls: null },
      pgbouncer: { password: null, tls: null },
      patroni: null,
      backup: null,
    },
  };
}

let cached: { key: string; config: PgAccessConfig; at: number; files: string[]; stamp: string; checkedAt: number } | null = null;
/** Password files are read again at least this often, and at once when one of them changes. */
const REREAD_MS = 60_000;
/** How often the password files' modification times are looked at: a rotated password is used within it. */
export const SECRET_FILES_CHECK_MS = 100;

/** The file's modification time, so an edited configuration is read again at once (0 when it cannot be read). */
const mtimeOf = (file: string) => {
  try {
    return statSync(/*turbopackIgnore: true*/ file).mtimeMs;
  } catch {
    return 0;
  }
};

/** The password files an entry names (their change makes the configuration read again). */
function passwordFiles(json: unknown): string[] {
  const r = pgAccessSchema.safeParse(json);
  if (!r.success) return [];
  const entries = [...Object.values(r.data.environments), ...(r.data.default ? [r.data.default] : [])];
  return entries.flatMap((e) => [e.passwordFile, e.pgbouncer?.passwordFile, e.patroni?.passwordFile].filter((f): f is string => !!f));
}

/** Each file's inode and modification time: a file renamed into place is another inode whatever its time. */
const stampOf = (files: string[]) =>
  files
    .map((f) => {
      try {
        const st = statSync(/*turbopackIgnore: true*/ f);
        return `${st.ino}:${st.mtimeMs}`;
      } catch {
        return '-';
      }
    })
    .join(',');

/** The configuration in force (PGHERD_PG_CONFIG, else the legacy settings); throws when it is invalid. */
export function pgAccessConfig(): PgAccessConfig {
  // Earlier versions' passwords, sent in clear: set, each throws saying where a password goes now.
  setting('PGHERD_PG_PASSWORD');
  setting('PGHERD_PGBOUNCER_PASSWORD');
  const file = setting('PGHERD_PG_CONFIG') ?? '';
  const key = `${file}\n${file ? mtimeOf(file) : 0}\n${setting('PGHERD_PG_USER')}`;
  const now = Date.now();
  const c = cached;
  if (c && c.key === key && now - c.at <= REREAD_MS) {
    if (!c.files.length || now - c.checkedAt < SECRET_FILES_CHECK_MS) return c.config;
    c.checkedAt = now;
    if (stampOf(c.files) === c.stamp) return c.config;
  }
  if (!file) {
    cached = { key, config: legacy(), at: now, files: [], stamp: '', checkedAt: now };
    return cached.config;
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(/*turbopackIgnore: true*/ file, 'utf8'));
  } catch (err) {
    throw new Error(`PGHERD_PG_CONFIG: cannot read ${file}: ${(err as Error).message}`);
  }
  const files = passwordFiles(json);
  // Taken before the files are read: one changed meanwhile is read again at the next look.
  const stamp = stampOf(files);
  const config = parsePgAccess(json);
  cached = { key, config, at: now, files, stamp, checkedAt: now };
  return config;
}

/** How to reach the servers of `environment` (null: a place with no environment, e.g. a bare endpoint). */
export function accessFor(environment: string | null, config = pgAccessConfig()): EnvironmentAccess {
  const a = (environment !== null ? config.environments.get(environment) : undefined) ?? config.fallback;
  if (!a)
    throw new Error(
      `no Postgres credentials for environment ${JSON.stringify(environment ?? '(none)')} in PGHERD_PG_CONFIG (and no "default")`,
    );
  return a;
}

type Extra = Omit<pg.ClientConfig, 'host' | 'port' | 'user' | 'password' | 'database' | 'ssl' | 'connectionString'>;

/**
 * A node-postgres client for one connection: never from a connection string (whose sslmode words mean
 * something else in node-postgres), never with PGPASSWORD or ~/.pgpass, and its password handed out
 * only once the socket is TLS whose certificate was verified for this address.
 */
function client(host: string, port: number, user: string, access: Omit<Access, 'user'>, database: string, extra: Extra): pg.Client {
  const where = `${host}:${port}`;
  const c: pg.Client = new pg.Client({
    ...extra,
    host,
    port,
    user,
    database,
    ssl: access.tls ? { ...access.tls } : false,
    // SCRAM bound to the TLS channel when the server offers it: a relay in the middle cannot reuse it.
    enableChannelBinding: !!access.tls,
    password: () => {
      if (access.password === null) throw new Error(`${where} asked for a password; pgherd has none configured for it (PGHERD_PG_CONFIG)`);
      // A clear-text or MD5 request hands over the password (MD5's hash is as good as the password for
      // the next login): only SCRAM gets it, and asking otherwise is an event worth recording.
      if (asked !== 'sasl') {
        onWeakAuth({ host, port, method: asked ?? 'unknown' });
        throw new WeakAuthError(where, asked ?? 'unknown');
      }
      const stream = (c as unknown as { connection?: { stream?: unknown } }).connection?.stream;
      if (!(stream instanceof TLSSocket) || !stream.authorized)
        throw new Error(`${where}: the password is only sent over a verified TLS connection`);
      return access.password;
    },
  });
  // Which method the server asked with, noted before node-postgres asks for the password (these
  // listeners are the connection's first, and it asks for the password asynchronously).
  let asked: 'cleartext' | 'md5' | 'sasl' | null = null;
  const con = (c as unknown as { connection: NodeJS.EventEmitter }).connection;
  con.on('authenticationCleartextPassword', () => (asked = 'cleartext'));
  con.on('authenticationMD5Password', () => (asked = 'md5'));
  con.on('authenticationSASL', () => (asked = 'sasl'));
  return c;
}

/** A server asked for the password some other way than SCRAM: the connection is closed, nothing sent. */
export class WeakAuthError extends Error {
  constructor(where: string, method: string) {
    super(
      `${where} asked for the password ${method === 'md5' ? 'as an MD5 hash' : `by ${method}`}: pgherd gives passwords only through SCRAM; nothing was sent`,
    );
    this.name = 'WeakAuthError';
  }
}

/** A refused request is recorded: a log line (with the operation and step it happened in) and a metric. */
function onWeakAuth(e: { host: string; port: number; method: string }): void {
  logLine('pg.auth.weak_refused', e);
  metrics().weakAuthRefused.inc({ method: e.method });
}

/** A client for an instance on one of `environment`'s servers (its server's environment). */
export function instanceClient(
  e: { host: string; port: number; serverEnvironment: string | null },
  extra: Extra & { database?: string } = {},
): pg.Client {
  const { database = 'postgres', options, ...rest } = extra;
  const a = accessFor(e.serverEnvironment).postgres;
  // pgherd is a superuser there: no unqualified name it uses may resolve to an object another role made (a
  // database's owner can set its search_path, and a function or view of theirs would run as pgherd).
  return client(e.host, e.port, a.user, a, database, { ...rest, options: [PINNED_SEARCH_PATH, options].filter(Boolean).join(' ') });
}

/** `fn` on a session of its own with an instance (instanceClient's), closed whatever `fn` does. */
export async function withInstance<T>(
  e: { host: string; port: number; serverEnvironment: string | null },
  extra: Extra & { database?: string },
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const c = instanceClient(e, extra);
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * A client that logs in as `user` with `password` (a login pgherd rotates, proven before its secret points
 * at it): the environment's TLS, and the password given only through SCRAM over it, as pgherd's own.
 */
export function loginClient(
  e: { host: string; port: number; serverEnvironment: string | null },
  login: { user: string; password: string },
  extra: Extra & { database?: string } = {},
): pg.Client {
  const { database = 'postgres', ...rest } = extra;
  const a = accessFor(e.serverEnvironment).postgres;
  return client(e.host, e.port, login.user, { ...a, password: login.password }, database, rest);
}

/** Every session pgherd opens on a member starts with this search_path (pg_temp last, where it cannot shadow). */
export const PINNED_SEARCH_PATH = '-c search_path=pg_catalog,pg_temp';

/** A client for a PgBouncer's admin console with `password` alone (pgherd's new one, proven before it is in force). */
export function poolerLoginClient(
  p: { host: string; port: number; adminUser: string; serverEnvironment: string | null },
  password: string,
  extra: Extra = {},
): pg.Client {
  return client(p.host, p.port, p.adminUser, { ...accessFor(p.serverEnvironment).pgbouncer, password }, 'pgbouncer', extra);
}

/** A client for a PgBouncer's admin console on one of `environment`'s servers. */
export function poolerClient(
  p: { host: string; port: number; adminUser: string; serverEnvironment: string | null },
  extra: Extra = {},
): pg.Client {
  return client(p.host, p.port, p.adminUser, accessFor(p.serverEnvironment).pgbouncer, 'pgbouncer', extra);
}
