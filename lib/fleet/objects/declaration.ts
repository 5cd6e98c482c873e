// What lives inside a herd, declared: roles, databases, extensions and access rules (pg_hba lines), one
// object a line. An object set (object_sets) is assigned to an environment or a herd (the herd's in place
// of the environment's), and a herd's own lines lie over it: a role, database or extension named again
// replaces the set's; the herd's access rules come before the set's (matched first). Pure: parsing,
// checking and layering; docs/fleet-objects.md is the reference.
//
//   role app_owner
//   role app login connlimit=50 valid_until=2027-06-30 in=app_owner
//   database app owner=app_owner encoding=UTF8 locale=C.UTF-8 connect=app
//   extension app pg_trgm 1.6
//   hba hostssl app app {members} scram-sha-256
//   ignore role replicator

export const ROLE_ATTRIBUTES = ['login', 'superuser', 'createdb', 'createrole', 'replication', 'bypassrls'] as const;
export type RoleAttribute = (typeof ROLE_ATTRIBUTES)[number];

export interface RoleDecl {
  kind: 'role';
  name: string;
  /** Attributes it has; every other one it has not. `inherit` unless `noinherit`. */
  attributes: RoleAttribute[];
  inherit: boolean;
  connlimit: number;
  /** `infinity`, an ISO date or time, or null (none). */
  validUntil: string | null;
  /** The roles it is a member of. */
  memberOf: string[];
}

export interface DatabaseDecl {
  kind: 'database';
  name: string;
  owner: string | null;
  encoding: string | null;
  locale: string | null;
  /** Who may connect (CONNECT): role names, or `public`; null: not declared. */
  connect: string[] | null;
}

export interface ExtensionDecl {
  kind: 'extension';
  database: string;
  name: string;
  /** null: the version its server installs by default (pg_available_extensions.default_version). */
  version: string | null;
}

export const HBA_TYPES = ['local', 'host', 'hostssl', 'hostnossl'] as const;
export const HBA_METHODS = [
  'trust',
  'reject',
  'scram-sha-256',
  'md5',
  'peer',
  'cert',
  'ident',
  'ldap',
  'radius',
  'pam',
  'gss',
  'sspi',
] as const;
/** An address a template stands for, filled in per herd (lib/fleet/objects/hba.ts). */
export const HBA_PLACEHOLDERS = ['{members}', '{pgherd}', '{poolers}'] as const;

export interface HbaDecl {
  kind: 'hba';
  type: (typeof HBA_TYPES)[number];
  databases: string[];
  users: string[];
  /** A CIDR, samehost, samenet, all, or a placeholder; null for local. */
  address: string | null;
  method: (typeof HBA_METHODS)[number];
  options: string[];
  /** As written, for messages. */
  text: string;
}

export interface IgnoreDecl {
  kind: 'ignore';
  what: 'role' | 'database' | 'extension';
  /** `*` matches any run of characters. */
  pattern: string;
}

/**
 * A login rotated by alternating users: a group role (no login) and two login roles in it, one of them the
 * one its secret names; a rotation sets a new password on the other, points the secret at it, and lets
 * the old one's password expire after `graceSeconds` (lib/actions/objects/rotate-credentials.action.ts).
 */
export interface RotateDecl {
  kind: 'rotate';
  group: string;
  users: [string, string];
  /** A secret reference (lib/fleet/objects/secret-store.ts), `{herd}` and `{environment}` filled in per herd. */
  secret: string;
  graceSeconds: number;
}

export type ObjectDecl = RoleDecl | DatabaseDecl | ExtensionDecl | HbaDecl | IgnoreDecl | RotateDecl;

export interface Declaration {
  roles: Map<string, RoleDecl & { from: string }>;
  databases: Map<string, DatabaseDecl & { from: string }>;
  /** By `database.name`. */
  extensions: Map<string, ExtensionDecl & { from: string }>;
  hba: (HbaDecl & { from: string })[];
  ignore: IgnoreDecl[];
  /** By group. Their users' VALID UNTIL and passwords are the rotation's: never drift. */
  rotations: Map<string, RotateDecl & { from: string }>;
}

/** A role or database name as pgherd writes it (always quoted in SQL, and in pg_hba where it must be). */
const NAME = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;
const EXTENSION = /^[a-z_][a-z0-9_-]{0,62}$/;
const VERSION = /^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$/;
const ENCODING = /^[A-Za-z0-9_-]{1,32}$/;
const LOCALE = /^[A-Za-z0-9_.@-]{1,64}$/;
const VALID_UNTIL = /^(infinity|\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:?\d{2})?)?)$/;
const HBA_OPTION = /^([a-z_]+)=[A-Za-z0-9_.:/,@+-]{1,200}$/;
/** The authentication options pgherd writes: none that holds a secret (ldapbindpasswd, radiussecrets), which would sit in its records. */
const HBA_OPTIONS = new Set([
  'clientcert',
  'clientname',
  'map',
  'pamservice',
  'pam_use_hostname',
  'ldapserver',
  'ldapport',
  'ldapscheme',
  'ldaptls',
  'ldapprefix',
  'ldapsuffix',
  'ldapbasedn',
  'ldapbinddn',
  'ldapsearchattribute',
  'ldapsearchfilter',
  'radiusservers',
  'radiusidentifiers',
  'radiusports',
  'krb_realm',
  'include_realm',
  'compat_realm',
  'upn_username',
]);
const PATTERN = /^[A-Za-z0-9_$*-]{1,63}$/;
/** Words a role or database may not be named: Postgres's own, and pg_hba's keywords. */
const KEYWORDS = new Set([
  'public',
  'none',
  'current_user',
  'current_role',
  'session_user',
  'all',
  'replication',
  'sameuser',
  'samerole',
  'samegroup',
]);

export type Parsed = { ok: true; objects: ObjectDecl[] } | { ok: false; errors: string[] };

/** Why `name` cannot be a role or database pgherd declares, or null. */
export function badName(name: string, what: 'role' | 'database' | 'member-of'): string | null {
  if (!NAME.test(name))
    return `${JSON.stringify(name)} is not a name pgherd writes: a letter or _ first, then letters, digits, _, $ or -, at most 63`;
  if (KEYWORDS.has(name.toLowerCase())) return `${name} is a keyword, not a ${what === 'database' ? 'database' : 'role'} name`;
  if (what === 'role' && /^pg_/i.test(name)) return `${name}: role names that begin with pg_ are Postgres's own`;
  if (what !== 'member-of' && /^pgherd/i.test(name)) return `${name}: names that begin with pgherd are pgherd's own`;
  if (what === 'database' && /^(template0|template1|postgres)$/.test(name)) return `${name} is a database every server has`;
  return null;
}

const list = (v: string) => v.split(',').filter((x) => x !== '');

/** Roles whose members reach the server's files, programs or every session (and RDS's stand-in for a superuser). */
export const SERVER_ROLES =
  /^(postgres|pg_execute_server_program|pg_write_server_files|pg_read_server_files|pg_signal_backend|pg_checkpoint|pg_create_subscription|rds_superuser|rdsadmin)$/;

/**
 * What a line gives that only a global admin may (an object set): superuser and the attributes that lead
 * to it, membership in a role that reaches the server, an access rule that asks no password. Null: none.
 */
export function privileged(o: ObjectDecl): string | null {
  if (o.kind === 'role') {
    const attr = o.attributes.find((a) => a === 'superuser' || a === 'createrole' || a === 'replication' || a === 'bypassrls');
    if (attr) return `${o.name}: ${attr}`;
    const role = o.memberOf.find((g) => SERVER_ROLES.test(g));
    if (role) return `${o.name}: in=${role}`;
  }
  if (o.kind === 'hba' && o.method === 'trust') return `${o.text}: trust (no password asked)`;
  return null;
}

function parseRole(words: string[], errors: string[], at: string): RoleDecl | null {
  const [name = '', ...rest] = words;
  const bad = badName(name, 'role');
  if (bad) return (void errors.push(`${at}: ${bad}`), null);
  const role: RoleDecl = { kind: 'role', name, attributes: [], inherit: true, connlimit: -1, validUntil: null, memberOf: [] };
  for (const w of rest) {
    const eq = w.indexOf('=');
    const key = eq < 0 ? w.toLowerCase() : w.slice(0, eq).toLowerCase();
    const value = eq < 0 ? '' : w.slice(eq + 1);
    if (eq < 0 && (ROLE_ATTRIBUTES as readonly string[]).includes(key)) {
      if (!role.attributes.includes(key as RoleAttribute)) role.attributes.push(key as RoleAttribute);
    } else if (eq < 0 && key === 'nologin') role.attributes = role.attributes.filter((a) => a !== 'login');
    else if (eq < 0 && key === 'noinherit') role.inherit = false;
    else if (key === 'connlimit' && /^(-1|\d{1,6})$/.test(value)) role.connlimit = Number(value);
    else if (key === 'valid_until' && VALID_UNTIL.test(value)) role.validUntil = value;
    else if (key === 'in' && value) {
      for (const g of list(value)) {
        const b = badName(g, 'member-of');
        if (b) errors.push(`${at}: in=${b}`);
        else if (g === name) errors.push(`${at}: ${name} cannot be a member of itself`);
        else if (!role.memberOf.includes(g)) role.memberOf.push(g);
      }
    } else
      errors.push(
        `${at}: ${JSON.stringify(w)} is not something a role has (login, nologin, superuser, createdb, createrole, replication, bypassrls, noinherit, connlimit=N, valid_until=DATE, in=ROLE,...)`,
      );
  }
  return role;
}

function parseDatabase(words: string[], errors: string[], at: string): DatabaseDecl | null {
  const [name = '', ...rest] = words;
  const bad = badName(name, 'database');
  if (bad) return (void errors.push(`${at}: ${bad}`), null);
  const d: DatabaseDecl = { kind: 'database', name, owner: null, encoding: null, locale: null, connect: null };
  for (const w of rest) {
    const eq = w.indexOf('=');
    const key = w.slice(0, Math.max(eq, 0)).toLowerCase();
    const value = w.slice(eq + 1);
    const b = key === 'owner' ? badName(value, 'member-of') : null;
    if (key === 'owner' && !b) d.owner = value;
    else if (key === 'encoding' && ENCODING.test(value)) d.encoding = value.toUpperCase();
    else if (key === 'locale' && LOCALE.test(value)) d.locale = value;
    else if (key === 'connect' && value) {
      d.connect = [];
      for (const r of list(value)) {
        const rb = r === 'public' ? null : badName(r, 'member-of');
        if (rb) errors.push(`${at}: connect=${rb}`);
        else d.connect.push(r);
      }
    } else errors.push(`${at}: ${JSON.stringify(w)} is not something a database has (owner=ROLE, encoding=E, locale=L, connect=ROLE,...)`);
  }
  return d;
}

function parseExtension(words: string[], errors: string[], at: string): ExtensionDecl | null {
  const [database = '', name = '', version, ...rest] = words;
  const b = badName(database, 'database');
  if (b) return (void errors.push(`${at}: ${b}`), null);
  if (!EXTENSION.test(name)) return (void errors.push(`${at}: ${JSON.stringify(name)} is not an extension's name`), null);
  if (name === 'plpgsql') return (void errors.push(`${at}: plpgsql is in every database; it is not declared`), null);
  if (version !== undefined && !VERSION.test(version))
    return (void errors.push(`${at}: ${JSON.stringify(version)} is not a version`), null);
  if (rest.length) return (void errors.push(`${at}: an extension line is: extension DATABASE NAME [VERSION]`), null);
  return { kind: 'extension', database, name, version: version ?? null };
}

/** A pg_hba token list of names or keywords (a role may be +group). */
function hbaNames(v: string, users: boolean, errors: string[], at: string): string[] {
  const out: string[] = [];
  for (const raw of list(v)) {
    const n = users && raw.startsWith('+') ? raw.slice(1) : raw;
    const keywords = users ? ['all'] : ['all', 'sameuser', 'samerole', 'replication'];
    if (raw.startsWith('@')) errors.push(`${at}: ${raw}: pgherd writes no line that includes a file`);
    else if (keywords.includes(raw)) out.push(raw);
    else if (!NAME.test(n)) errors.push(`${at}: ${JSON.stringify(raw)} is not a ${users ? 'role' : 'database'} name pgherd writes`);
    // pg_hba reads a quoted +"name" as a role of that name, not a group: a group is written unquoted.
    else if (raw.startsWith('+') && !/^[A-Za-z0-9_]+$/.test(n))
      errors.push(`${at}: ${raw}: a group in pg_hba is letters, digits and _ only`);
    else out.push(raw);
  }
  if (!out.length && !errors.length) errors.push(`${at}: no ${users ? 'role' : 'database'}`);
  return out;
}

function parseHba(words: string[], errors: string[], at: string, text: string): HbaDecl | null {
  const [type = '', dbs = '', users = '', ...rest] = words;
  if (!(HBA_TYPES as readonly string[]).includes(type))
    return (void errors.push(`${at}: ${JSON.stringify(type)} is not a connection type pgherd writes (${HBA_TYPES.join(', ')})`), null);
  const n = errors.length;
  const databases = hbaNames(dbs, false, errors, at);
  const roles = hbaNames(users, true, errors, at);
  let address: string | null = null;
  if (type !== 'local') {
    address = rest.shift() ?? '';
    if (!validAddress(address))
      errors.push(
        `${at}: ${JSON.stringify(address)} is not an address pgherd writes (a CIDR, samehost, samenet, all, ${HBA_PLACEHOLDERS.join(', ')})`,
      );
  }
  const method = rest.shift() ?? '';
  if (!(HBA_METHODS as readonly string[]).includes(method))
    errors.push(
      `${at}: ${JSON.stringify(method)} is not an authentication method (${HBA_METHODS.join(', ')}; password sends it in the clear: use scram-sha-256)`,
    );
  for (const o of rest) {
    const name = HBA_OPTION.exec(o)?.[1];
    if (!name || !HBA_OPTIONS.has(name))
      errors.push(
        `${at}: ${JSON.stringify(o)} is not an option pgherd writes (name=value, of ${[...HBA_OPTIONS].join(', ')}; none that holds a secret)`,
      );
  }
  if (errors.length > n) return null;
  return {
    kind: 'hba',
    type: type as HbaDecl['type'],
    databases,
    users: roles,
    address,
    method: method as HbaDecl['method'],
    options: rest,
    text,
  };
}

/** `pgbouncer`: PgBouncer's auth user, its password in the herd's poolers' auth_file (rotate-credentials). */
const SECRET = /^((aws|file):[A-Za-z0-9_./{}+=@-]{1,200}|pgbouncer)$/;
const GRACE = /^(\d{1,6})(s|m|h|d)$/;

function parseRotate(words: string[], errors: string[], at: string): RotateDecl | null {
  const [group = '', ...rest] = words;
  const bad = badName(group, 'role');
  if (bad) return (void errors.push(`${at}: ${bad}`), null);
  let users: string[] = [];
  let secret = '';
  let graceSeconds = 3600;
  for (const w of rest) {
    const eq = w.indexOf('=');
    const key = w.slice(0, Math.max(eq, 0));
    const value = w.slice(eq + 1);
    const g = GRACE.exec(value);
    if (key === 'users') users = list(value);
    else if (key === 'secret' && SECRET.test(value)) secret = value;
    else if (key === 'grace' && g) graceSeconds = Number(g[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[g[2] as 's' | 'm' | 'h' | 'd'];
    else
      errors.push(
        `${at}: ${JSON.stringify(w)} is not something a rotation has (users=A,B secret=aws:ID|file:NAME|pgbouncer grace=30s|15m|1h|7d)`,
      );
  }
  if (users.length !== 2 || users[0] === users[1])
    return (void errors.push(`${at}: a rotation alternates two different users: users=A,B`), null);
  for (const u of users) {
    const b = badName(u, 'role');
    if (b) return (void errors.push(`${at}: users=${b}`), null);
  }
  if (users.includes(group)) return (void errors.push(`${at}: the group ${group} cannot be one of its users`), null);
  // Its password is handed to clients: never a role that reaches the server itself, whoever declares it.
  const server = [group, ...users].find((u) => SERVER_ROLES.test(u));
  if (server) return (void errors.push(`${at}: ${server} reaches the server itself: a rotated login is an application's`), null);
  if (!secret)
    return (
      void errors.push(`${at}: a rotation needs secret=aws:ID, secret=file:NAME or secret=pgbouncer (where its clients read the login)`),
      null
    );
  if (graceSeconds < 1 || graceSeconds > 30 * 86400) return (void errors.push(`${at}: grace is between 1 s and 30 days`), null);
  return { kind: 'rotate', group, users: [users[0] ?? '', users[1] ?? ''], secret, graceSeconds };
}

/** A CIDR (IPv4 or IPv6), a keyword pg_hba knows, or a placeholder. */
export function validAddress(a: string): boolean {
  if ((HBA_PLACEHOLDERS as readonly string[]).includes(a) || ['samehost', 'samenet', 'all'].includes(a)) return true;
  const m = /^([0-9.]+|[0-9a-fA-F:]+)\/(\d{1,3})$/.exec(a);
  if (!m) return false;
  const [, ip = '', bits = ''] = m;
  if (ip.includes('.')) {
    const parts = ip.split('.');
    return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255) && Number(bits) <= 32;
  }
  return ip.includes(':') && Number(bits) <= 128;
}

/** The declaration's text, line by line; every error at once (`line 3: ...`). */
export function parseDeclaration(text: string, opts: { allowSuperuser?: boolean } = {}): Parsed {
  const errors: string[] = [];
  const objects: ObjectDecl[] = [];
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(text.replaceAll('\r', '')))
    return { ok: false, errors: ['it holds a tab or a control character'] };
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const at = `line ${i + 1}`;
    const [kind = '', ...words] = line.split(/\s+/);
    let o: ObjectDecl | null = null;
    if (kind === 'role') o = parseRole(words, errors, at);
    else if (kind === 'database') o = parseDatabase(words, errors, at);
    else if (kind === 'extension') o = parseExtension(words, errors, at);
    else if (kind === 'hba') o = parseHba(words, errors, at, line);
    else if (kind === 'rotate') o = parseRotate(words, errors, at);
    else if (kind === 'ignore') {
      const [what = '', pattern = '', ...rest] = words;
      if (!['role', 'database', 'extension'].includes(what) || !PATTERN.test(pattern) || rest.length)
        errors.push(`${at}: an ignore line is: ignore role|database|extension PATTERN (letters, digits, _, $, - and *)`);
      else o = { kind: 'ignore', what: what as IgnoreDecl['what'], pattern };
    } else errors.push(`${at}: ${JSON.stringify(kind)} is not an object pgherd declares (role, database, extension, hba, rotate, ignore)`);
    if (o && !opts.allowSuperuser) {
      const why = privileged(o);
      if (why) errors.push(`${at}: ${why}: declared only in an object set, which only a global admin writes`);
    }
    if (o) objects.push(o);
  });
  const seen = new Set<string>();
  for (const o of objects) {
    const key = keyOf(o);
    if (key && seen.has(key)) errors.push(`${key.replace(':', ' ')} is declared twice`);
    if (key) seen.add(key);
  }
  return errors.length ? { ok: false, errors } : { ok: true, objects };
}

const keyOf = (o: ObjectDecl): string | null =>
  o.kind === 'role' || o.kind === 'database'
    ? `${o.kind}:${o.name}`
    : o.kind === 'extension'
      ? `extension:${o.database}.${o.name}`
      : o.kind === 'rotate'
        ? `rotate:${o.group}`
        : null;

export interface SetText {
  id: number;
  name: string;
  version: number;
  declaration: string;
}

export interface DeclaredInputs {
  environmentSet: SetText | null;
  herdSet: SetText | null;
  herdOverrides: string;
}

/** Whether anything declares what lives in the herd. */
export const declared = (x: DeclaredInputs) => !!(x.environmentSet || x.herdSet || x.herdOverrides.trim());

/**
 * What a herd should have: its set (the herd's, else its environment's), the herd's own lines over it.
 * A layer that does not parse (a row edited by hand) is returned as errors, and nothing of it is used.
 */
export function declarationOf(x: DeclaredInputs): { declaration: Declaration; errors: string[] } {
  const d: Declaration = { roles: new Map(), databases: new Map(), extensions: new Map(), hba: [], ignore: [], rotations: new Map() };
  const errors: string[] = [];
  const base = x.herdSet ?? x.environmentSet;
  const layer = (text: string, from: string, allowSuperuser: boolean): (HbaDecl & { from: string })[] => {
    const p = parseDeclaration(text, { allowSuperuser });
    if (!p.ok) {
      errors.push(...p.errors.map((e) => `${from}: ${e}`));
      return [];
    }
    const hba: (HbaDecl & { from: string })[] = [];
    for (const o of p.objects) {
      if (o.kind === 'role') d.roles.set(o.name, { ...o, from });
      else if (o.kind === 'database') d.databases.set(o.name, { ...o, from });
      else if (o.kind === 'extension') d.extensions.set(`${o.database}.${o.name}`, { ...o, from });
      else if (o.kind === 'hba') hba.push({ ...o, from });
      else if (o.kind === 'rotate') d.rotations.set(o.group, { ...o, from });
      else d.ignore.push(o);
    }
    return hba;
  };
  const baseHba = base ? layer(base.declaration, `set ${base.name} v${base.version} (${x.herdSet ? 'herd' : 'environment'})`, true) : [];
  const ownHba = x.herdOverrides.trim() ? layer(x.herdOverrides, 'herd override', false) : [];
  // The herd's own rules first: pg_hba takes the first line that matches.
  d.hba = [...ownHba, ...baseHba];
  // A rotation's group and users are roles it declares: the group with no login, each user a login in it
  // (a line that declares one of them otherwise is refused: the rotation needs them so).
  for (const r of d.rotations.values()) {
    const group = d.roles.get(r.group);
    if (group && group.attributes.includes('login')) errors.push(`${r.from}: rotate ${r.group}: its group cannot log in`);
    if (!group)
      d.roles.set(r.group, {
        kind: 'role',
        name: r.group,
        attributes: [],
        inherit: true,
        connlimit: -1,
        validUntil: null,
        memberOf: [],
        from: r.from,
      });
    for (const u of r.users) {
      const user = d.roles.get(u);
      if (user && (!user.attributes.includes('login') || !user.memberOf.includes(r.group)))
        errors.push(`${r.from}: rotate ${r.group}: ${u} is declared without login or outside ${r.group}`);
      if (!user)
        d.roles.set(u, {
          kind: 'role',
          name: u,
          attributes: ['login'],
          inherit: true,
          connlimit: -1,
          validUntil: null,
          memberOf: [r.group],
          from: r.from,
        });
    }
  }
  for (const e of d.extensions.values())
    if (!d.databases.has(e.database) && e.database !== 'postgres')
      errors.push(`${e.from}: extension ${e.name} is in database ${e.database}, which is not declared`);
  return { declaration: d, errors };
}

/** The rotation that alternates `role` as one of its users, if any. */
export const rotationOf = (d: Pick<Declaration, 'rotations'>, role: string) =>
  [...d.rotations.values()].find((r) => r.users.includes(role)) ?? null;

/** Whether `name` is one the declaration says to leave alone. */
export function ignored(d: Pick<Declaration, 'ignore'>, what: IgnoreDecl['what'], name: string): boolean {
  return d.ignore.some((i) => i.what === what && new RegExp(`^${i.pattern.replace(/[$-]/g, '\\$&').replaceAll('*', '.*')}$`).test(name));
}

/** A role as a declaration line (Accept writes it). */
export function roleLine(r: Omit<RoleDecl, 'kind'>): string {
  return [
    'role',
    r.name,
    ...r.attributes,
    ...(r.inherit ? [] : ['noinherit']),
    ...(r.connlimit !== -1 ? [`connlimit=${r.connlimit}`] : []),
    ...(r.validUntil ? [`valid_until=${r.validUntil}`] : []),
    ...(r.memberOf.length ? [`in=${r.memberOf.join(',')}`] : []),
  ].join(' ');
}

export function databaseLine(d: Omit<DatabaseDecl, 'kind'>): string {
  return [
    'database',
    d.name,
    ...(d.owner ? [`owner=${d.owner}`] : []),
    ...(d.encoding ? [`encoding=${d.encoding}`] : []),
    ...(d.locale ? [`locale=${d.locale}`] : []),
    ...(d.connect ? [`connect=${d.connect.join(',')}`] : []),
  ].join(' ');
}

export const extensionLine = (e: Omit<ExtensionDecl, 'kind'>) =>
  ['extension', e.database, e.name, ...(e.version ? [e.version] : [])].join(' ');
