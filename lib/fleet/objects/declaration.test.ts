import { describe, expect, it } from 'vitest';
import { declarationOf, ignored, parseDeclaration, roleLine } from './declaration';
import { objectChanges, quoteIdent, quoteLiteral } from './diff';
import type { ObjectsReading } from './read-objects';

const errorsOf = (text: string, allowSuperuser = false) => {
  const p = parseDeclaration(text, { allowSuperuser });
  return p.ok ? [] : p.errors;
};

const reading = (over: Partial<ObjectsReading> = {}): ObjectsReading => ({
  serverVersionNum: 160000,
  asked: { databases: [], extensions: [], logins: [] },
  passwords: null,
  roles: [
    {
      name: 'postgres',
      login: true,
      superuser: true,
      createdb: true,
      createrole: true,
      replication: true,
      bypassrls: true,
      inherit: true,
      connlimit: -1,
      validUntil: null,
      memberOf: [],
      bootstrap: true,
    },
    {
      name: 'pgherd',
      login: true,
      superuser: true,
      createdb: false,
      createrole: false,
      replication: false,
      bypassrls: false,
      inherit: true,
      connlimit: -1,
      validUntil: null,
      memberOf: [],
      bootstrap: false,
    },
  ],
  databases: [{ name: 'postgres', owner: 'postgres', encoding: 'UTF8', locale: 'C.UTF-8', connect: null }],
  extensions: {},
  available: { pg_trgm: '1.6' },
  hba: [],
  hbaFile: null,
  me: { user: 'pgherd', address: '127.0.0.1', ssl: true, database: 'postgres' },
  replication: [],
  ...over,
});

describe('a declaration', () => {
  it('takes roles, databases, extensions, access rules and ignores, and renders a role as it reads', () => {
    const p = parseDeclaration(
      [
        'role app_owner',
        'role app login connlimit=50 valid_until=2027-06-30 in=app_owner',
        'database app owner=app_owner encoding=utf8 locale=C.UTF-8 connect=app',
        'extension app pg_trgm 1.6',
        'hba hostssl app app {members} scram-sha-256',
        'ignore role replicator',
      ].join('\n'),
    );
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.objects.map((o) => o.kind)).toEqual(['role', 'role', 'database', 'extension', 'hba', 'ignore']);
    const app = p.objects[1];
    expect(app?.kind === 'role' && roleLine(app)).toBe('role app login connlimit=50 valid_until=2027-06-30 in=app_owner');
  });

  it('refuses hostile names and what is not pgherd to write, naming the line', () => {
    expect(errorsOf('role "x"; DROP ROLE postgres; --"')[0]).toMatch(/^line 1: .*is not a name pgherd writes/);
    expect(errorsOf("database a'b")[0]).toMatch(/not a name pgherd writes/);
    expect(errorsOf('role pg_monitor')[0]).toMatch(/pg_ are Postgres's own/);
    expect(errorsOf('role pgherd_x')[0]).toMatch(/pgherd's own/);
    expect(errorsOf('role public')[0]).toMatch(/keyword/);
    expect(errorsOf('database template1')[0]).toMatch(/every server has/);
    expect(errorsOf('extension app "pg_trgm;drop"')[0]).toMatch(/not an extension/);
    expect(errorsOf("extension app pg_trgm 1.6'--")[0]).toMatch(/not a version/);
    expect(errorsOf('hba host all all 10.0.0.0/8 password')[0]).toMatch(/in the clear/);
    expect(errorsOf('hba host all all 10.0.0.0/33 trust')[0]).toMatch(/not an address/);
    expect(errorsOf('hba host all all 10.0.0.0/8 trust ldapserver="x y"')[0]).toMatch(/not an option/);
    expect(errorsOf('hba host all all 10.0.0.0/8 ldap ldapbindpasswd=secret')[0]).toMatch(/none that holds a secret/);
    expect(errorsOf('hba hostssl all all 10.0.0.0/8 cert clientcert=verify-full')).toEqual([]);
    expect(errorsOf('hba host @/etc/passwd all 10.0.0.0/8 trust')[0]).toMatch(/includes a file/);
    expect(errorsOf('role a\u0000b')).toEqual(['it holds a tab or a control character']);
    expect(errorsOf("role a valid_until=2027-01-01'")[0]).toMatch(/not something a role has/);
    expect(errorsOf('role a\nrole a')).toEqual(['role a is declared twice']);
    expect(errorsOf('role a in=a')[0]).toMatch(/member of itself/);
  });

  it("takes superuser only where a global admin writes (an object set), never in a herd's own lines", () => {
    expect(errorsOf('role boss login superuser')[0]).toMatch(/only in an object set/);
    expect(errorsOf('role boss login superuser', true)).toEqual([]);
    const { errors } = declarationOf({ environmentSet: null, herdSet: null, herdOverrides: 'role boss superuser' });
    expect(errors[0]).toMatch(/^herd override: line 1: boss: superuser/);
    // Nor what leads to it: a membership in a role that reaches the server, the attributes that grant it,
    // a rule that asks no password.
    for (const [line, why] of [
      ['role mallory login in=postgres', /mallory: in=postgres/],
      ['role mallory login in=pg_execute_server_program', /in=pg_execute_server_program/],
      ['role mallory login in=rds_superuser', /in=rds_superuser/],
      ['role mallory login createrole', /mallory: createrole/],
      ['role mallory login replication', /mallory: replication/],
      ['hba host all all 0.0.0.0/0 trust', /trust \(no password asked\)/],
    ] as const) {
      expect(errorsOf(line)[0], line).toMatch(why);
      expect(errorsOf(line, true), line).toEqual([]);
    }
    // pg_hba reads a quoted +"group" as a role's name: such a group is refused.
    expect(errorsOf('hba host all +ops-team 10.0.0.0/8 scram-sha-256')[0]).toMatch(/a group in pg_hba is letters, digits and _ only/);
    expect(errorsOf('role a\tb')).toEqual(['it holds a tab or a control character']);
  });

  it("lays a herd's lines over its set: a role named again replaces it, the herd's rules come first", () => {
    const { declaration: d, errors } = declarationOf({
      environmentSet: {
        id: 1,
        name: 'base',
        version: 3,
        declaration: 'role app login\nhba host all all 10.0.0.0/8 scram-sha-256\nignore database scratch_*',
      },
      herdSet: null,
      herdOverrides: 'role app login connlimit=5\nhba host all all 10.1.0.0/16 reject',
    });
    expect(errors).toEqual([]);
    expect(d.roles.get('app')).toMatchObject({ connlimit: 5, from: 'herd override' });
    expect(d.hba.map((h) => h.from)).toEqual(['herd override', 'set base v3 (environment)']);
    expect(ignored(d, 'database', 'scratch_42')).toBe(true);
    expect(ignored(d, 'database', 'scratch')).toBe(false);
  });
});

describe('its differences', () => {
  const decl = (text: string) => declarationOf({ environmentSet: null, herdSet: null, herdOverrides: text }).declaration;

  it('creates what is missing in order (roles, memberships, databases, extensions) and drops only what nothing declares', () => {
    const r = reading({
      roles: [
        ...reading().roles,
        {
          name: 'stray',
          login: true,
          superuser: false,
          createdb: false,
          createrole: false,
          replication: false,
          bypassrls: false,
          inherit: true,
          connlimit: -1,
          validUntil: null,
          memberOf: [],
          bootstrap: false,
        },
      ],
    });
    const c = objectChanges(
      decl('role app_owner\nrole app login in=app_owner\ndatabase app owner=app_owner\nextension app pg_trgm'),
      r,
      null,
    );
    expect(c.map((x) => [x.name, x.what, x.drop])).toEqual([
      ['role app_owner', 'missing', false],
      ['role app', 'missing', false],
      ['app in app_owner', 'missing', false],
      ['database app', 'missing', false],
      ['extension app.pg_trgm', 'missing', false],
      ['role stray', 'undeclared', true],
    ]);
    expect(c.flatMap((x) => x.sql.map((s) => s.text))).toEqual([
      'CREATE ROLE "app_owner"',
      'CREATE ROLE "app" LOGIN',
      'GRANT "app_owner" TO "app"',
      'CREATE DATABASE "app" OWNER "app_owner" TEMPLATE template0',
      'CREATE EXTENSION IF NOT EXISTS "pg_trgm" SCHEMA public VERSION \'1.6\'',
      'DROP ROLE "stray"',
    ]);
  });

  it('quotes names read from a server whatever they hold', () => {
    const evil = 'x"; DROP DATABASE app; --';
    const r = reading({
      databases: [...reading().databases, { name: evil, owner: 'postgres', encoding: 'UTF8', locale: 'C', connect: null }],
    });
    const c = objectChanges(decl('role a'), r, null).find((x) => x.what === 'undeclared');
    expect(c?.sql[0]?.text).toBe(`DROP DATABASE ${quoteIdent(evil)}`);
    expect(quoteIdent(evil)).toBe('"x""; DROP DATABASE app; --"');
    expect(quoteLiteral("it's \\ here")).toBe("E'it''s \\\\ here'");
  });

  it('changes only the attributes that differ, and says what cannot be changed in place', () => {
    const r = reading({
      roles: [
        ...reading().roles,
        {
          name: 'app',
          login: true,
          superuser: false,
          createdb: true,
          createrole: false,
          replication: false,
          bypassrls: false,
          inherit: true,
          connlimit: -1,
          validUntil: '2027-06-30T00:00:00+00:00',
          memberOf: [],
          bootstrap: false,
        },
      ],
      databases: [...reading().databases, { name: 'app', owner: 'postgres', encoding: 'SQL_ASCII', locale: 'C', connect: null }],
    });
    const c = objectChanges(decl('role app login valid_until=2027-06-30\ndatabase app encoding=UTF8 connect=app'), r, null);
    expect(c.find((x) => x.name === 'role app')?.sql[0]?.text).toBe('ALTER ROLE "app" WITH NOCREATEDB');
    expect(c.find((x) => x.name === 'database app encoding')).toMatchObject({ what: 'cannot', sql: [] });
    expect(c.find((x) => x.name === 'database app connect')?.sql.map((s) => s.text)).toEqual([
      'GRANT CONNECT ON DATABASE "app" TO "app"',
      'REVOKE CONNECT ON DATABASE "app" FROM PUBLIC',
    ]);
  });

  it("never counts the bootstrap superuser, pgherd's own role or a replica's as undeclared", () => {
    const r = reading({
      roles: [
        ...reading().roles,
        {
          name: 'replicator',
          login: true,
          superuser: false,
          createdb: false,
          createrole: false,
          replication: true,
          bypassrls: false,
          inherit: true,
          connlimit: -1,
          validUntil: null,
          memberOf: [],
          bootstrap: false,
        },
      ],
      replication: [{ address: '127.0.0.2', user: 'replicator', ssl: false }],
    });
    expect(objectChanges(decl('role a'), r, null).map((x) => x.name)).toEqual(['role a']);
  });
});

describe('a rotated login', () => {
  it("declares its group (no login) and its two users (login, in the group), and its users' VALID UNTIL is never drift", () => {
    const { declaration: d, errors } = declarationOf({
      environmentSet: null,
      herdSet: null,
      herdOverrides: 'rotate app_rw users=app_rw_a,app_rw_b secret=aws:pgherd/{herd}/app_rw grace=15m',
    });
    expect(errors).toEqual([]);
    expect(d.rotations.get('app_rw')).toMatchObject({ users: ['app_rw_a', 'app_rw_b'], graceSeconds: 900 });
    expect(d.roles.get('app_rw')).toMatchObject({ attributes: [] });
    expect(d.roles.get('app_rw_b')).toMatchObject({ attributes: ['login'], memberOf: ['app_rw'] });
    const base = reading();
    const user = (name: string, validUntil: string | null) => ({
      name,
      login: true,
      superuser: false,
      createdb: false,
      createrole: false,
      replication: false,
      bypassrls: false,
      inherit: true,
      connlimit: -1,
      validUntil,
      memberOf: ['app_rw'],
      bootstrap: false,
    });
    const r = {
      ...base,
      roles: [
        ...base.roles,
        { ...user('app_rw', null), login: false, memberOf: [] },
        user('app_rw_a', null),
        user('app_rw_b', '2026-01-01T00:00:00+00:00'),
      ],
    };
    expect(objectChanges(d, r, null)).toEqual([]);

    // A password is drift only where pgherd set one and it is not that one, and only where pg_authid was read.
    const marks = { app_rw_a: 'aa', app_rw_b: 'bb' };
    const named = (passwords: ObjectsReading['passwords']) =>
      objectChanges(d, { ...r, passwords }, null, marks).map((c) => [c.name, c.what, c.runs]);
    expect(named({ app_rw_a: 'aa', app_rw_b: 'bb' })).toEqual([]);
    expect(named(null)).toEqual([]);
    expect(named({ app_rw_a: 'aa', app_rw_b: 'cc' })).toEqual([['password app_rw_b', 'cannot', 'a password set outside pgherd']]);
    expect(named({ app_rw_a: null, app_rw_b: 'bb' })).toEqual([['password app_rw_a', 'cannot', 'no password']]);
    // A login pgherd never set a password on is not judged.
    expect(objectChanges(d, { ...r, passwords: { app_rw_a: 'x', app_rw_b: 'y' } }, null, {})).toEqual([]);
  });

  it('refuses what would not alternate, or names no store', () => {
    expect(errorsOf('rotate app users=a,a secret=file:x')[0]).toMatch(/two different users/);
    expect(errorsOf('rotate app users=a,b')[0]).toMatch(/needs secret=/);
    expect(errorsOf('rotate app users=a,b secret=vault:x')[0]).toMatch(/not something a rotation has/);
    // PgBouncer's auth user: the pooler is where it is read, nothing else after the word.
    expect(errorsOf('rotate pgbouncer_auth users=a,b secret=pgbouncer')).toEqual([]);
    expect(errorsOf('rotate pgbouncer_auth users=a,b secret=pgbouncer:x')[0]).toMatch(/not something a rotation has/);
    // Its password goes to clients: never a role that reaches the server, even in a global admin's set.
    expect(errorsOf('rotate grp users=postgres,app_b secret=file:x', true)[0]).toMatch(/postgres reaches the server itself/);
    expect(errorsOf('rotate rds_superuser users=a,b secret=file:x', true)[0]).toMatch(/reaches the server itself/);
    expect(errorsOf('rotate app users=a,b secret=file:x grace=40d')[0]).toMatch(/grace is between/);
    expect(errorsOf('rotate app users=app,b secret=file:x')[0]).toMatch(/cannot be one of its users/);
    const { errors } = declarationOf({
      environmentSet: null,
      herdSet: null,
      herdOverrides: 'role app login\nrotate app users=a,b secret=file:x',
    });
    expect(errors[0]).toMatch(/its group cannot log in/);
  });
});
