// What differs between what a herd declares and what its primary has, each difference with the SQL that
// puts it as declared (in the order Apply runs it: roles, memberships, databases, their CONNECT grants,
// extensions; then, only with "drop what is not declared", what is there undeclared). Names read from a
// server are quoted whatever they hold; declared ones were checked when saved. Pure.
import { ignored, ROLE_ATTRIBUTES, rotationOf, type Declaration, type RoleDecl } from './declaration';
import { ruleKey, type RenderedLine } from './hba';
import type { ObjectsReading, RoleRead } from './read-objects';

export interface Statement {
  /** The database it runs in. */
  database: string;
  text: string;
}

export interface ObjectChange {
  kind: 'role' | 'membership' | 'database' | 'extension' | 'hba';
  /** `role app`, `app in app_owner`, `extension app.pg_trgm`, `pg_hba` */
  name: string;
  what: 'missing' | 'differs' | 'undeclared' | 'cannot';
  /** What runs and what is declared, in words. */
  runs: string;
  declared: string;
  /** The declaration line it comes from (null: undeclared). */
  from: string | null;
  /** What puts it as declared (empty for hba: a file, and for what Apply cannot change). */
  sql: Statement[];
  /** Undeclared: changed only with "drop what is not declared". */
  drop: boolean;
  /** Why Apply cannot change it. */
  why?: string;
}

export const quoteIdent = (s: string) => `"${s.replaceAll('"', '""')}"`;

/** A string literal whatever standard_conforming_strings is (as node-postgres's escapeLiteral). */
export function quoteLiteral(s: string): string {
  const body = s.replaceAll("'", "''");
  return s.includes('\\') ? `E'${body.replaceAll('\\', '\\\\')}'` : `'${body}'`;
}

/** Roles every server has or pgherd needs: never drift, never dropped. */
export function builtIn(r: Pick<RoleRead, 'name' | 'bootstrap'>, reading: Pick<ObjectsReading, 'me' | 'replication'>): boolean {
  return (
    r.bootstrap ||
    r.name === reading.me.user ||
    /^pgherd/.test(r.name) ||
    /^rds/.test(r.name) ||
    reading.replication.some((x) => x.user === r.name)
  );
}

const attrsOf = (r: RoleRead) => ROLE_ATTRIBUTES.filter((a) => r[a]);

/** A VALID UNTIL as an instant (null: none), a date alone at midnight UTC. */
function untilMs(v: string | null): number | null {
  if (v === null || v === 'infinity') return null;
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : /T\d{2}:\d{2}(:\d{2})?$/.test(v) ? `${v}Z` : v;
  const ms = Date.parse(iso.replace(' ', 'T'));
  return Number.isNaN(ms) ? null : ms;
}

const untilLiteral = (v: string | null) => {
  const ms = untilMs(v);
  return ms === null ? "'infinity'" : quoteLiteral(new Date(ms).toISOString());
};

/** CREATE ROLE's options (what is not a default), or ALTER ROLE's (what differs from `run`). */
function roleOptions(r: RoleDecl, run?: RoleRead): string {
  const differs = (a: boolean, b: boolean | undefined) => !run || a !== b;
  return [
    ...ROLE_ATTRIBUTES.filter((a) => (run ? differs(r.attributes.includes(a), run[a]) : r.attributes.includes(a))).map((a) =>
      (r.attributes.includes(a) ? a : `no${a}`).toUpperCase(),
    ),
    ...((run ? r.inherit !== run.inherit : !r.inherit) ? [r.inherit ? 'INHERIT' : 'NOINHERIT'] : []),
    ...((run ? r.connlimit !== run.connlimit : r.connlimit !== -1) ? [`CONNECTION LIMIT ${r.connlimit}`] : []),
    ...((run ? untilMs(r.validUntil) !== untilMs(run.validUntil) : untilMs(r.validUntil) !== null)
      ? [`VALID UNTIL ${untilLiteral(r.validUntil)}`]
      : []),
  ].join(' ');
}

const roleWords = (r: { attributes: readonly string[]; inherit: boolean; connlimit: number; validUntil: string | null }) =>
  [
    ...(r.attributes.length ? r.attributes : ['nologin']),
    ...(r.inherit ? [] : ['noinherit']),
    ...(r.connlimit !== -1 ? [`connlimit=${r.connlimit}`] : []),
    ...(untilMs(r.validUntil) !== null ? [`valid_until=${new Date(untilMs(r.validUntil) ?? 0).toISOString()}`] : []),
  ].join(' ');

function roleChanges(d: Declaration, reading: ObjectsReading, drop: ObjectChange[]): ObjectChange[] {
  const out: ObjectChange[] = [];
  const grants: ObjectChange[] = [];
  const byName = new Map(reading.roles.map((r) => [r.name, r]));
  for (const r of d.roles.values()) {
    // A rotated user's VALID UNTIL is its rotation's (the old one expires after the grace): never drift.
    const rotated = rotationOf(d, r.name) !== null;
    const found = byName.get(r.name);
    const run = found && rotated ? { ...found, validUntil: r.validUntil } : found;
    const want = roleWords(r);
    if (!run)
      out.push({
        kind: 'role',
        name: `role ${r.name}`,
        what: 'missing',
        runs: 'none',
        declared: want,
        from: r.from,
        sql: [{ database: 'postgres', text: `CREATE ROLE ${quoteIdent(r.name)} ${roleOptions(r)}`.trimEnd() }],
        drop: false,
      });
    else {
      const have = roleWords({ attributes: attrsOf(run), inherit: run.inherit, connlimit: run.connlimit, validUntil: run.validUntil });
      if (have !== want)
        out.push({
          kind: 'role',
          name: `role ${r.name}`,
          what: 'differs',
          runs: have,
          declared: want,
          from: r.from,
          sql: [{ database: 'postgres', text: `ALTER ROLE ${quoteIdent(r.name)} WITH ${roleOptions(r, run)}` }],
          drop: false,
        });
    }
    const groups = new Set(run?.memberOf ?? []);
    for (const g of r.memberOf)
      if (!groups.has(g)) {
        const exists = byName.has(g) || d.roles.has(g) || /^pg_/.test(g);
        grants.push({
          kind: 'membership',
          name: `${r.name} in ${g}`,
          what: exists ? 'missing' : 'cannot',
          runs: 'not a member',
          declared: 'a member',
          from: r.from,
          sql: exists ? [{ database: 'postgres', text: `GRANT ${quoteIdent(g)} TO ${quoteIdent(r.name)}` }] : [],
          drop: false,
          ...(exists ? {} : { why: `there is no role ${g} and none is declared` }),
        });
      }
    for (const g of groups)
      if (!r.memberOf.includes(g))
        drop.push({
          kind: 'membership',
          name: `${r.name} in ${g}`,
          what: 'undeclared',
          runs: 'a member',
          declared: 'not a member',
          from: null,
          sql: [{ database: 'postgres', text: `REVOKE ${quoteIdent(g)} FROM ${quoteIdent(r.name)}` }],
          drop: true,
        });
  }
  return [...out, ...grants];
}

function undeclaredRoles(d: Declaration, reading: ObjectsReading): ObjectChange[] {
  return reading.roles
    .filter((r) => !d.roles.has(r.name) && !builtIn(r, reading) && !ignored(d, 'role', r.name))
    .map((r) => ({
      kind: 'role' as const,
      name: `role ${r.name}`,
      what: 'undeclared' as const,
      runs: roleWords({ attributes: attrsOf(r), inherit: r.inherit, connlimit: r.connlimit, validUntil: r.validUntil }),
      declared: 'none',
      from: null,
      // It may own objects: DROP ROLE then fails, and says which; pgherd reassigns nothing.
      sql: [{ database: 'postgres', text: `DROP ROLE ${quoteIdent(r.name)}` }],
      drop: true,
    }));
}

function databaseChanges(d: Declaration, reading: ObjectsReading, drop: ObjectChange[]): ObjectChange[] {
  const out: ObjectChange[] = [];
  const byName = new Map(reading.databases.map((x) => [x.name, x]));
  for (const db of d.databases.values()) {
    const run = byName.get(db.name);
    const name = `database ${db.name}`;
    if (!run) {
      const opts = [
        ...(db.owner ? [`OWNER ${quoteIdent(db.owner)}`] : []),
        ...(db.encoding ? [`ENCODING ${quoteLiteral(db.encoding)}`] : []),
        ...(db.locale ? [`LC_COLLATE ${quoteLiteral(db.locale)} LC_CTYPE ${quoteLiteral(db.locale)}`] : []),
        'TEMPLATE template0',
      ];
      out.push({
        kind: 'database',
        name,
        what: 'missing',
        runs: 'none',
        declared: [db.owner && `owner ${db.owner}`, db.encoding, db.locale].filter(Boolean).join(', ') || 'a database',
        from: db.from,
        sql: [{ database: 'postgres', text: `CREATE DATABASE ${quoteIdent(db.name)} ${opts.join(' ')}` }],
        drop: false,
      });
    } else {
      if (db.owner && run.owner !== db.owner)
        out.push({
          kind: 'database',
          name: `${name} owner`,
          what: 'differs',
          runs: run.owner,
          declared: db.owner,
          from: db.from,
          sql: [{ database: 'postgres', text: `ALTER DATABASE ${quoteIdent(db.name)} OWNER TO ${quoteIdent(db.owner)}` }],
          drop: false,
        });
      const fixed = [
        ...(db.encoding && run.encoding.toUpperCase() !== db.encoding ? [[`encoding`, run.encoding, db.encoding]] : []),
        ...(db.locale && run.locale !== db.locale ? [[`locale`, run.locale, db.locale]] : []),
      ];
      for (const [what = '', runs = '', want = ''] of fixed)
        out.push({
          kind: 'database',
          name: `${name} ${what}`,
          what: 'cannot',
          runs,
          declared: want,
          from: db.from,
          sql: [],
          drop: false,
          why: `a database's ${what} is set when it is created: dump it and restore it into a new database`,
        });
    }
    if (db.connect) {
      const owner = run?.owner ?? db.owner;
      const has = new Set([...(run ? (run.connect ?? ['public']) : ['public']), ...(owner ? [owner] : [])]);
      const want = new Set([...db.connect, ...(owner ? [owner] : [])]);
      const sql = [
        ...[...want]
          .filter((r) => !has.has(r))
          .map((r) => `GRANT CONNECT ON DATABASE ${quoteIdent(db.name)} TO ${r === 'public' ? 'PUBLIC' : quoteIdent(r)}`),
        ...[...has]
          .filter((r) => !want.has(r))
          .map((r) => `REVOKE CONNECT ON DATABASE ${quoteIdent(db.name)} FROM ${r === 'public' ? 'PUBLIC' : quoteIdent(r)}`),
      ];
      if (sql.length)
        out.push({
          kind: 'database',
          name: `${name} connect`,
          what: 'differs',
          runs: [...has].sort().join(', ') || 'its owner alone',
          declared: [...want].sort().join(', '),
          from: db.from,
          sql: sql.map((text) => ({ database: 'postgres', text })),
          drop: false,
        });
    }
  }
  for (const run of reading.databases)
    if (
      !d.databases.has(run.name) &&
      run.name !== 'postgres' &&
      !/^pgherd/.test(run.name) &&
      !/^rdsadmin$/.test(run.name) &&
      !ignored(d, 'database', run.name)
    )
      drop.push({
        kind: 'database',
        name: `database ${run.name}`,
        what: 'undeclared',
        runs: `owner ${run.owner}`,
        declared: 'none',
        from: null,
        sql: [{ database: 'postgres', text: `DROP DATABASE ${quoteIdent(run.name)}` }],
        drop: true,
      });
  return out;
}

function extensionChanges(d: Declaration, reading: ObjectsReading, drop: ObjectChange[]): ObjectChange[] {
  const out: ObjectChange[] = [];
  for (const e of d.extensions.values()) {
    const name = `extension ${e.database}.${e.name}`;
    const want = e.version ?? reading.available[e.name] ?? null;
    const runs = reading.extensions[e.database]?.[e.name] ?? null;
    if (want === null) {
      out.push({
        kind: 'extension',
        name,
        what: 'cannot',
        runs: runs ?? 'none',
        declared: e.version ?? 'its default version',
        from: e.from,
        sql: [],
        drop: false,
        why: `this server has no extension ${e.name} to install (its package is not on the host)`,
      });
      continue;
    }
    if (runs === want) continue;
    const stmt =
      runs === null
        ? `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(e.name)} SCHEMA public VERSION ${quoteLiteral(want)}`
        : `ALTER EXTENSION ${quoteIdent(e.name)} UPDATE TO ${quoteLiteral(want)}`;
    out.push({
      kind: 'extension',
      name,
      what: runs === null ? 'missing' : 'differs',
      runs: runs ?? 'none',
      declared: want,
      from: e.from,
      sql: [{ database: e.database, text: stmt }],
      drop: false,
    });
  }
  for (const [database, exts] of Object.entries(reading.extensions))
    for (const [ext, version] of Object.entries(exts))
      if (ext !== 'plpgsql' && !d.extensions.has(`${database}.${ext}`) && !ignored(d, 'extension', ext))
        drop.push({
          kind: 'extension',
          name: `extension ${database}.${ext}`,
          what: 'undeclared',
          runs: version,
          declared: 'none',
          from: null,
          sql: [{ database, text: `DROP EXTENSION ${quoteIdent(ext)}` }],
          drop: true,
        });
  return out;
}

/** The pg_hba difference: the lines to be written, against what the server parsed (null: none). */
export function hbaChange(lines: RenderedLine[] | null, reading: ObjectsReading): ObjectChange | null {
  if (!lines) return null;
  if (reading.hba === null)
    return {
      kind: 'hba',
      name: 'pg_hba',
      what: 'cannot',
      runs: 'not readable',
      declared: `${lines.length} lines`,
      from: null,
      sql: [],
      drop: false,
      why: "pgherd may not read this server's pg_hba (pg_hba_file_rules)",
    };
  const have = reading.hba.filter((r) => !r.error).map(ruleKey);
  const want = lines.map(ruleKey);
  const broken = reading.hba.filter((r) => r.error);
  if (!broken.length && have.length === want.length && have.every((k, i) => k === want[i])) return null;
  const missing = lines.filter((l) => !have.includes(ruleKey(l))).map((l) => l.text);
  const extra = reading.hba
    .filter((r) => r.error || !want.includes(ruleKey(r)))
    .map((r) => `line ${r.line}${r.error ? ` (${r.error})` : ''}`);
  const words = [
    ...(missing.length ? [`to add: ${missing.join('; ')}`] : []),
    ...(extra.length ? [`not declared: ${extra.join(', ')}`] : []),
    ...(!missing.length && !extra.length ? ['the same lines in another order'] : []),
  ];
  return {
    kind: 'hba',
    name: 'pg_hba',
    what: 'differs',
    runs: `${reading.hba.length} lines`,
    declared: `${lines.length} lines`,
    from: null,
    sql: [],
    drop: false,
    why: words.join('; '),
  };
}

/**
 * A rotated login whose password is not the one pgherd set last (`marks`: a SHA-256 of each verifier it
 * set): changed behind its back. Not where pg_authid cannot be read (RDS), nor a login pgherd never set.
 */
export function passwordChanges(d: Declaration, reading: ObjectsReading, marks: Record<string, string>): ObjectChange[] {
  if (!reading.passwords) return [];
  const out: ObjectChange[] = [];
  for (const r of d.rotations.values())
    for (const user of r.users) {
      const mark = marks[user];
      if (!mark || !(user in reading.passwords) || reading.passwords[user] === mark) continue;
      out.push({
        kind: 'role',
        name: `password ${user}`,
        what: 'cannot',
        runs: reading.passwords[user] ? 'a password set outside pgherd' : 'no password',
        declared: `the password pgherd set (rotation ${r.group})`,
        from: r.from,
        sql: [],
        drop: false,
        why: 'pgherd never holds a password to put back: Rotate credentials sets a new one, points the secret at it, and replaces this one',
      });
    }
  return out;
}

/** Every difference, in the order Apply puts them right; the undeclared last. */
export function objectChanges(
  d: Declaration,
  reading: ObjectsReading,
  hbaLines: RenderedLine[] | null,
  marks: Record<string, string> = {},
): ObjectChange[] {
  const drops: ObjectChange[] = [];
  const roles = [...roleChanges(d, reading, drops), ...passwordChanges(d, reading, marks)];
  const databases = databaseChanges(d, reading, drops);
  const extensions = extensionChanges(d, reading, drops);
  const hba = hbaChange(hbaLines, reading);
  // Drops in the reverse order of making: memberships, extensions, databases, then roles (which may own them).
  const order = ['membership', 'extension', 'database', 'role'];
  drops.push(...undeclaredRoles(d, reading));
  drops.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  return [...roles, ...databases, ...extensions, ...(hba ? [hba] : []), ...drops];
}
