// Sign-in against the lab's real OpenLDAP slapd: directory users with and without a role binding,
// wrong passwords, filter injection, a directory that is down (local admins still get in), server
// failover, and throttling per user and per address.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, roleBindings, users } from '@/db/schema';
import { ensureAdmin } from '@/lib/features/auth/superuser';
import { hashPassword } from '@/lib/features/auth/password';
import { ReservedNameError } from '@/lib/features/auth/reserved-names';
import { freePort } from '@/lib/lab/ports';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { authenticate } from '@/lib/features/auth/authenticate';
import { escapeFilterValue, ldapAuthenticate, ldapConfigSchema, type LdapConfig } from './ldap';

let t: TestDb;
let cfg: LdapConfig;
const person = (name: string) => t.lab.ldap!.users.find((u) => u.username === name)!;

beforeAll(async () => {
  t = await freshDatabase();
  const l = t.lab.ldap!;
  cfg = ldapConfigSchema.parse({
    urls: [l.url],
    bindDn: l.bindDn,
    bindPassword: l.bindPassword,
    userBase: l.userBase,
    groupBase: l.groupBase,
  });
  await ensureAdmin(t.db, 'break-glass', 'local-Pass-1');
  await t.db.insert(roleBindings).values({ role: 'operator', subjectType: 'group', subject: l.groups['dba-prod']! });
});
afterAll(async () => ifAssigned(t)?.close());

describe('LDAP sign-in', () => {
  it('signs in a directory user whose group is bound to a role, recording its DN and groups', async () => {
    const alice = person('alice');
    const res = await authenticate(t.db, 'alice', alice.password, '10.0.0.1', cfg);
    expect(res).toMatchObject({ ok: true, user: { username: 'alice', displayName: 'Alice Prod-DBA', groups: alice.groups } });
    const [u] = await t.db.select().from(users).where(eq(users.username, 'alice'));
    expect(u).toMatchObject({ source: 'ldap', ldapDn: alice.dn, passwordHash: null, email: 'alice@lab.internal' });
  });

  it('refuses a wrong password and an empty one, and audits them', async () => {
    expect(await authenticate(t.db, 'alice', 'not-it', '10.0.0.2', cfg)).toEqual({
      ok: false,
      code: 'invalid',
      reason: 'Wrong username or password.',
    });
    expect((await authenticate(t.db, 'alice', '', '10.0.0.2', cfg)).ok).toBe(false);
    const failed = await t.db.select().from(auditEntries).where(eq(auditEntries.remoteAddr, '10.0.0.2'));
    expect(failed.map((f) => [f.action, f.username])).toEqual([
      ['auth.sign_in_failed', 'alice'],
      ['auth.sign_in_failed', 'alice'],
    ]);
    expect(failed[0]!.changes).toEqual({ reason: [null, 'invalid: wrong password'] });
  });

  it('keeps out a user in no bound group, until a binding names the user or a group of theirs', async () => {
    const carol = person('carol');
    expect(await authenticate(t.db, 'carol', carol.password, '10.0.0.3', cfg)).toMatchObject({ ok: false, code: 'not_allowed' });
    expect(await authenticate(t.db, 'dave', person('dave').password, '10.0.0.3', cfg)).toMatchObject({ ok: false, code: 'not_allowed' });
    const [refused] = await t.db.select().from(auditEntries).where(eq(auditEntries.action, 'auth.sign_in_refused'));
    expect(refused!.username).toBe('carol');
    await t.db.insert(roleBindings).values({ role: 'viewer', subjectType: 'group', subject: t.lab.ldap!.groups.readonly!.toUpperCase() });
    expect((await authenticate(t.db, 'carol', carol.password, '10.0.0.3', cfg)).ok).toBe(true);
  });

  it('treats a username as data inside the filter', async () => {
    expect(escapeFilterValue('a*)(uid=*')).toBe('a\\2a\\29\\28uid=\\2a');
    for (const name of ['*', 'alice)(uid=*', 'al*']) {
      expect(await ldapAuthenticate(cfg, name, person('alice').password)).toEqual({
        ok: false,
        reason: 'invalid',
        message: 'no such user',
      });
    }
  });

  it('signs nobody in with a username holding replacement patterns ($\u2019, $&, $`), the right password or not', async () => {
    const alice = person('alice');
    // `$'` pasted the filter's own closing parenthesis back in: "(uid=alice))" found alice.
    for (const name of ["alice$'", 'alice$&', '$`alice', "alice$'$&"]) {
      expect(await ldapAuthenticate(cfg, name, alice.password), name).toEqual({ ok: false, reason: 'invalid', message: 'no such user' });
      expect(await authenticate(t.db, name, alice.password, '10.0.5.1', cfg), name).toMatchObject({ ok: false, code: 'invalid' });
    }
    const actions = await t.db.select({ action: auditEntries.action }).from(auditEntries).where(eq(auditEntries.remoteAddr, '10.0.5.1'));
    expect(actions.map((a) => a.action)).toEqual(Array(4).fill('auth.sign_in_failed'));
  });

  it('refuses a directory user named as pgherd names itself, bound to a role, however the name is typed or found', async () => {
    const impostor = person('system');
    await t.db.insert(roleBindings).values({ role: 'admin', subjectType: 'user', subject: 'system' });
    for (const typed of ['system', 'SYSTEM', ' System ']) {
      const res = await authenticate(t.db, typed, impostor.password, '10.0.6.1', cfg);
      expect(res, typed).toMatchObject({ ok: false, code: 'invalid' });
    }
    // Found by mail, the directory still names him `system`.
    const byMail = { ...cfg, userFilter: '(mail={username})' };
    expect(await authenticate(t.db, 'system@lab.internal', impostor.password, '10.0.6.2', byMail)).toMatchObject({
      ok: false,
      code: 'invalid',
    });
    expect(
      await t.db
        .select()
        .from(users)
        .where(sql`lower(${users.username}) = 'system'`),
    ).toEqual([]);
    const reasons = (await t.db.select().from(auditEntries).where(eq(auditEntries.action, 'auth.sign_in_failed')))
      .filter((e) => e.remoteAddr.startsWith('10.0.6.'))
      .map((e) => (e.changes as { reason: [null, string] }).reason[1]);
    expect(reasons).toEqual([
      'invalid: a name pgherd uses for itself',
      'invalid: a name pgherd uses for itself',
      'invalid: a name pgherd uses for itself',
      'invalid: the directory names the user system, a name pgherd uses for itself',
    ]);
  });

  it('creates no local account named as pgherd names itself, and signs in none that exists', async () => {
    for (const name of ['system', ' SYSTEM', 'rule: nightly', 'schedule'])
      await expect(ensureAdmin(t.db, name, 'local-Pass-1'), name).rejects.toThrow(ReservedNameError);
    expect(
      await t.db
        .select()
        .from(users)
        .where(sql`lower(trim(${users.username})) IN ('system', 'schedule') OR ${users.username} LIKE 'rule:%'`),
    ).toEqual([]);
    // One made before names were checked (straight into the table) is no one's either.
    await t.db.insert(users).values({
      username: 'System',
      displayName: 'old',
      passwordHash: await hashPassword('local-Pass-1'),
      source: 'local',
      isSuperuser: true,
    });
    expect(await authenticate(t.db, 'System', 'local-Pass-1', '10.0.7.1', cfg)).toMatchObject({ ok: false, code: 'invalid' });
  });

  it('says the directory is unreachable when no server answers, lets local accounts in, and fails over to the next URL', async () => {
    const dead = `ldap://127.0.0.1:${await freePort()}`;
    const down = { ...cfg, urls: [dead], timeoutMs: 1000 };
    expect(await authenticate(t.db, 'alice', person('alice').password, '10.0.0.4', down)).toEqual({
      ok: false,
      code: 'unreachable',
      reason: 'The directory (LDAP) cannot be reached; local accounts can still sign in.',
    });
    expect((await authenticate(t.db, 'break-glass', 'local-Pass-1', '10.0.0.4', down)).ok).toBe(true);
    expect((await authenticate(t.db, 'alice', person('alice').password, '10.0.0.4', { ...cfg, urls: [dead, cfg.urls[0]!] })).ok).toBe(true);
  });

  it('throttles after repeated failures per user and per address, even with the right password', async () => {
    const bob = person('bob');
    await t.db.insert(roleBindings).values({ role: 'operator', subjectType: 'user', subject: 'bob' });
    for (let i = 0; i < 5; i++) expect((await authenticate(t.db, 'bob', 'wrong', `10.1.0.${i}`, cfg)).ok).toBe(false);
    expect(await authenticate(t.db, 'bob', bob.password, '10.1.0.99', cfg)).toMatchObject({ ok: false, code: 'throttled' });
    // Another user from a fresh address is not affected; one address failing for many users is.
    expect((await authenticate(t.db, 'alice', person('alice').password, '10.1.1.1', cfg)).ok).toBe(true);
    for (let i = 0; i < 20; i++) await authenticate(t.db, `ghost${i}`, 'x', '10.9.9.9', cfg);
    expect(await authenticate(t.db, 'alice', person('alice').password, '10.9.9.9', cfg)).toMatchObject({ ok: false, code: 'throttled' });
  });
});

describe('LDAP over TLS (the lab\u2019s slapd has a certificate for 127.0.0.1 from its own CA)', () => {
  it('signs in over StartTLS and over ldaps:// when the certificate checks out against the CA file', async () => {
    const l = t.lab.ldap!;
    expect((await ldapAuthenticate({ ...cfg, startTls: true, caFile: l.caFile }, 'alice', person('alice').password)).ok).toBe(true);
    expect((await ldapAuthenticate({ ...cfg, urls: [l.ldapsUrl], caFile: l.caFile }, 'alice', person('alice').password)).ok).toBe(true);
    // By name too: the certificate names localhost (SNI is sent for names, not for addresses).
    expect(
      (
        await ldapAuthenticate(
          { ...cfg, urls: [l.ldapsUrl.replace('127.0.0.1', 'localhost')], caFile: l.caFile },
          'alice',
          person('alice').password,
        )
      ).ok,
    ).toBe(true);
  });

  it('refuses a server whose certificate it cannot verify (verification is on by default), as unreachable, before sending the password', async () => {
    const l = t.lab.ldap!;
    for (const c of [
      { ...cfg, startTls: true },
      { ...cfg, urls: [l.ldapsUrl] },
    ]) {
      const res = await ldapAuthenticate(ldapConfigSchema.parse({ ...c, timeoutMs: 2000 }), 'alice', person('alice').password);
      expect(res).toMatchObject({ ok: false, reason: 'unreachable' });
      expect((res as { message: string }).message).toMatch(/certificate/i);
    }
    // Off only on purpose (a lab): then the same server is accepted without the CA.
    expect((await ldapAuthenticate({ ...cfg, urls: [l.ldapsUrl], tlsVerify: false }, 'alice', person('alice').password)).ok).toBe(true);
  });
});
