// What a primary has inside, read whole when the refresh's fingerprint of it moved (OBJECTS_FINGERPRINT_SQL,
// a digest of its roles, memberships and databases, part of every observation), its configuration was
// loaded again (pg_hba is read at a reload), or the last reading is old (an extension updated in another
// database moves neither). One connection to its postgres database, and one to each declared database
// for its extensions.
import type pg from 'pg';
import { withInstance } from '@/lib/fleet/pg-access';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { ruleKey, type HbaLine } from './hba';

export interface RoleRead {
  name: string;
  login: boolean;
  superuser: boolean;
  createdb: boolean;
  createrole: boolean;
  replication: boolean;
  bypassrls: boolean;
  inherit: boolean;
  connlimit: number;
  validUntil: string | null;
  memberOf: string[];
  /** The bootstrap superuser (oid 10). */
  bootstrap: boolean;
}

export interface DatabaseRead {
  name: string;
  owner: string;
  encoding: string;
  locale: string;
  /** Roles granted CONNECT (`public` for PUBLIC), from its ACL; null: the default ACL (PUBLIC connects). */
  connect: string[] | null;
}

export interface HbaRuleRead extends HbaLine {
  line: number;
  error: string | null;
}

export interface ObjectsReading {
  serverVersionNum: number;
  /** The databases, extensions and logins it was asked to read (a declaration that names more is read again). */
  asked: { databases: string[]; extensions: string[]; logins: string[] };
  roles: RoleRead[];
  databases: DatabaseRead[];
  /** The installed extensions of each database read (the declared ones), by database. */
  extensions: Record<string, Record<string, string>>;
  /** The version each extension's files install by default, for those declared. */
  available: Record<string, string>;
  /** pg_hba as the server parsed it at its last reload (null: this role may not read it, as on RDS). */
  hba: HbaRuleRead[] | null;
  hbaFile: string | null;
  /**
   * The asked logins' passwords as a SHA-256 (hex) of the verifier pg_authid keeps (null: none set), compared
   * with the one pgherd set; null where this role may not read pg_authid (RDS's master user).
   */
  passwords: Record<string, string | null> | null;
  /** pgherd's own session as the server sees it. */
  me: { user: string; address: string | null; ssl: boolean; database: string };
  /** Who streams from it now. */
  replication: { address: string | null; user: string; ssl: boolean }[];
}

const READ_SQL = `
SELECT current_setting('server_version_num')::int AS vnum,
  (SELECT coalesce(json_agg(json_build_object(
      'name', r.rolname, 'login', r.rolcanlogin, 'superuser', r.rolsuper, 'createdb', r.rolcreatedb,
      'createrole', r.rolcreaterole, 'replication', r.rolreplication, 'bypassrls', r.rolbypassrls,
      'inherit', r.rolinherit, 'connlimit', r.rolconnlimit, 'validUntil', r.rolvaliduntil, 'bootstrap', r.oid = 10,
      'memberOf', (SELECT coalesce(json_agg(g.rolname ORDER BY g.rolname), '[]') FROM pg_auth_members m
                   JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid)) ORDER BY r.rolname), '[]')
     FROM pg_roles r WHERE r.rolname !~ '^pg_') AS roles,
  (SELECT coalesce(json_agg(json_build_object(
      'name', d.datname, 'owner', pg_get_userbyid(d.datdba), 'encoding', pg_encoding_to_char(d.encoding),
      'locale', d.datcollate,
      'connect', CASE WHEN d.datacl IS NULL THEN NULL ELSE
        (SELECT coalesce(json_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END), '[]')
           FROM aclexplode(d.datacl) a WHERE a.privilege_type = 'CONNECT' AND a.grantee <> d.datdba) END)
      ORDER BY d.datname), '[]')
     FROM pg_database d WHERE NOT d.datistemplate) AS databases,
  (SELECT coalesce(json_object_agg(name, default_version), '{}') FROM pg_available_extensions WHERE name = ANY($1::text[])) AS available,
  CASE WHEN has_function_privilege('pg_hba_file_rules()', 'EXECUTE') THEN
    (SELECT coalesce(json_agg(json_build_object('line', line_number, 'type', type, 'databases', database, 'users', user_name,
        'address', address, 'netmask', netmask, 'method', auth_method, 'options', coalesce(options, '{}'), 'error', error)
        ORDER BY line_number), '[]') FROM pg_hba_file_rules) END AS hba,
  CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE') THEN current_setting('hba_file') END AS hba_file,
  json_build_object('user', session_user, 'address', host(inet_client_addr()), 'database', current_database(),
    'ssl', coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)) AS me,
  (SELECT coalesce(json_agg(json_build_object('address', host(r.client_addr), 'user', r.usename, 'ssl', coalesce(s.ssl, false))), '[]')
     FROM pg_stat_replication r LEFT JOIN pg_stat_ssl s ON s.pid = r.pid) AS replication`;

interface ReadRow {
  vnum: number;
  roles: RoleRead[];
  databases: DatabaseRead[];
  available: Record<string, string>;
  hba:
    | (Omit<HbaRuleRead, 'databases' | 'users' | 'options'> & { databases: string[] | null; users: string[] | null; options: string[] })[]
    | null;
  hba_file: string | null;
  me: ObjectsReading['me'];
  replication: ObjectsReading['replication'];
}

type Endpoint = Pick<InstanceRef, 'host' | 'port' | 'serverEnvironment'>;

const withClient = <T>(e: Endpoint, database: string, timeoutMs: number, fn: (c: pg.Client) => Promise<T>): Promise<T> =>
  withInstance(e, { database, connectionTimeoutMillis: timeoutMs, statement_timeout: timeoutMs, application_name: 'pgherd-objects' }, fn);

/** The logins' verifiers as digests, only where pg_authid may be read (a query naming it fails otherwise, whatever its CASE). */
const PASSWORDS_SQL = `SELECT rolname AS name, encode(sha256(convert_to(rolpassword, 'UTF8')), 'hex') AS digest
  FROM pg_catalog.pg_authid WHERE rolname = ANY($1::text[])`;

async function readPasswords(c: pg.Client, logins: string[]): Promise<Record<string, string | null> | null> {
  if (!logins.length) return {};
  const may = await c.query<{ may: boolean }>("SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS may");
  if (!may.rows[0]?.may) return null;
  const r = await c.query<{ name: string; digest: string | null }>(PASSWORDS_SQL, [logins]);
  return Object.fromEntries(r.rows.map((x) => [x.name, x.digest]));
}

/** A primary's objects; `databases`: those whose extensions are read (the declared ones that it has); `logins`: whose passwords. */
export async function readObjects(
  e: Endpoint,
  opts: { databases: string[]; extensions: string[]; logins: string[]; timeoutMs?: number },
): Promise<ObjectsReading> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const [row, passwords] = await withClient(e, 'postgres', timeoutMs, async (c) => [
    (await c.query<ReadRow>(READ_SQL, [opts.extensions])).rows[0],
    await readPasswords(c, opts.logins),
  ]);
  if (!row) throw new Error('the objects query returned no row');
  const present = new Set(row.databases.map((d) => d.name));
  const extensions: Record<string, Record<string, string>> = {};
  for (const d of opts.databases.filter((x) => present.has(x))) {
    extensions[d] = await withClient(e, d, timeoutMs, async (c) => {
      const r = await c.query<{ extname: string; extversion: string }>('SELECT extname, extversion FROM pg_extension');
      return Object.fromEntries(r.rows.map((x) => [x.extname, x.extversion]));
    });
  }
  return {
    serverVersionNum: row.vnum,
    asked: { databases: opts.databases, extensions: opts.extensions, logins: opts.logins },
    roles: row.roles,
    databases: row.databases,
    extensions,
    available: row.available,
    hba: row.hba?.map((h) => ({ ...h, databases: h.databases ?? [], users: h.users ?? [], options: h.options })) ?? null,
    hbaFile: row.hba_file,
    passwords,
    me: row.me,
    replication: row.replication,
  };
}

/** A member's pg_hba rules as the server parsed its file (ruleKey of each; `error: ...` for a line it refused). */
export async function readHbaRules(e: Endpoint, timeoutMs = 10_000): Promise<string[]> {
  return withClient(e, 'postgres', timeoutMs, async (c) => {
    const r = await c.query<{
      type: HbaLine['type'];
      databases: string[] | null;
      users: string[] | null;
      address: string | null;
      netmask: string | null;
      method: string;
      options: string[] | null;
      error: string | null;
    }>(
      'SELECT type, database AS databases, user_name AS users, address, netmask, auth_method AS method, options, error FROM pg_hba_file_rules ORDER BY line_number',
    );
    return r.rows.map((x) =>
      x.error ? `error: ${x.error}` : ruleKey({ ...x, databases: x.databases ?? [], users: x.users ?? [], options: x.options ?? [] }),
    );
  });
}
