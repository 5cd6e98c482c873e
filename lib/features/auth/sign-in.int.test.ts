// Sign-in against the lab's slapd: one account and one throttle per person, whatever case or spelling
// the username is typed in, and per address whatever X-Forwarded-For a client makes up.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { ADDRESS_SLOTS, authenticate, THROTTLE } from './authenticate';
import { clientAddressOf } from './client-address';
import { ldapConfigSchema, type LdapConfig } from '@/lib/adapters/ldap/ldap';

let t: TestDb;
let cfg: LdapConfig;
const password = (u: string) => t.lab.ldap!.users.find((x) => x.username === u)!.password;

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
  await seedLabFleet(t.db, t.lab);
});
afterAll(async () => ifAssigned(t)?.close());

describe('sign-in', () => {
  it('records one account per directory user, in the directory\u2019s spelling, whatever case it is typed in', async () => {
    const a = await authenticate(t.db, 'CAROL ', password('carol'), '10.8.0.1', cfg);
    const b = await authenticate(t.db, 'carol', password('carol'), '10.8.0.1', cfg);
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(a.user.id).toBe(b.user.id);
    expect(a.user.username).toBe('carol');
    expect(await t.db.$count(users, sql`lower(${users.username}) = 'carol'`)).toBe(1);
  });

  it('throttles a user across case variants of the name', async () => {
    const variants = ['Bob', 'BOB', ' bob', 'bOb', 'boB ', 'BoB'];
    for (const v of variants.slice(0, THROTTLE.perUser)) {
      const r = await authenticate(t.db, v, 'not-his-password', `10.8.1.${variants.indexOf(v)}`, cfg);
      expect(r.ok ? 'ok' : r.code).toBe('invalid');
    }
    // The right password, yet another spelling, yet another address: still throttled.
    const r = await authenticate(t.db, 'BOB', password('bob'), '10.8.1.99', cfg);
    expect(r.ok ? 'ok' : r.code).toBe('throttled');
  });

  it('throttles an address whatever X-Forwarded-For the client sends', async () => {
    // As pgherd's server works it out: the peer, the header ignored (no trusted proxy).
    const peer = '10.8.2.1';
    for (let i = 0; i < THROTTLE.perAddress; i++) {
      const addr = clientAddressOf(peer, `198.51.100.${i}`, null);
      const r = await authenticate(t.db, `nobody-${i}`, 'x', addr, cfg);
      expect(r.ok ? 'ok' : r.code).toBe('invalid');
    }
    const r = await authenticate(t.db, 'alice', password('alice'), clientAddressOf(peer, '198.51.100.250', null), cfg);
    expect(r.ok ? 'ok' : r.code).toBe('throttled');
    expect((await t.db.select().from(users).where(eq(users.username, 'alice'))).length).toBe(0);
  });

  it('evaluates a burst of parallel guesses one at a time: never more failures than the limit, for a user or from an address', async () => {
    const failures = async (where: ReturnType<typeof sql>) =>
      Number(
        (await t.db.execute(sql`SELECT count(*)::int AS n FROM audit_entries WHERE action = 'auth.sign_in_failed' AND ${where}`)).rows[0]!
          .n,
      );
    // Twenty at once for one user, from twenty addresses (as a botnet would).
    const oneUser = await Promise.all(Array.from({ length: 20 }, (_, i) => authenticate(t.db, 'dave', `guess-${i}`, `10.8.3.${i}`, cfg)));
    expect(oneUser.every((r) => !r.ok)).toBe(true);
    expect(await failures(sql`username = 'dave'`)).toBeLessThanOrEqual(THROTTLE.perUser);
    expect(oneUser.filter((r) => !r.ok && r.code === 'throttled').length).toBeGreaterThanOrEqual(20 - THROTTLE.perUser);
    // Forty at once from one address, each for another user: four are evaluated at a time (people behind
    // one NAT sign in together), so the limit may be passed by at most three, never by the burst.
    const oneAddress = await Promise.all(Array.from({ length: 40 }, (_, i) => authenticate(t.db, `burst-${i}`, 'x', '10.8.4.1', cfg)));
    expect(oneAddress.every((r) => !r.ok)).toBe(true);
    expect(await failures(sql`remote_addr = '10.8.4.1'`)).toBeLessThanOrEqual(THROTTLE.perAddress + ADDRESS_SLOTS - 1);
  });
});
