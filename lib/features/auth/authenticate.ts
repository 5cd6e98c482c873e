// The one place a username and password become a pgherd user: throttled per user and per address;
// local accounts (the bootstrap admin, break-glass) first, so a directory that is down locks no
// local admin out; then the directory (LDAP), whose users need at least one role binding (for
// themselves or one of their groups) to get in. Every attempt is audited with its address.
import { and, eq, gt, or, sql } from 'drizzle-orm';
import type { Db, Queries } from '@/db/client';
import { auditEntries, roleBindings, users } from '@/db/schema';
import { writeAudit } from '@/lib/engine/write-audit';
import { bindingsFor } from '@/lib/engine/access';
import { ldapAuthenticate, ldapConfig, type LdapConfig } from '@/lib/adapters/ldap/ldap';
import { verifyPassword } from './password';
import { isReservedName } from './reserved-names';
import { setting } from '@/lib/settings/settings';

export interface AuthenticatedUser {
  id: number;
  username: string;
  displayName: string;
  isSuperuser: boolean;
  groups: string[];
}

/** Why a sign-in failed, as the sign-in page tells it. */
export type AuthFailure = 'invalid' | 'unreachable' | 'throttled' | 'not_allowed';

export type AuthResult = { ok: true; user: AuthenticatedUser } | { ok: false; code: AuthFailure; reason: string };

/** Sign-in throttling: failures allowed per username and per client address in the window. */
export const THROTTLE = {
  get windowMs() {
    return setting('PGHERD_SIGNIN_WINDOW_MS');
  },
  get perUser() {
    return setting('PGHERD_SIGNIN_MAX_PER_USER');
  },
  get perAddress() {
    return setting('PGHERD_SIGNIN_MAX_PER_ADDRESS');
  },
};

const MESSAGES: Record<AuthFailure, string> = {
  invalid: 'Wrong username or password.',
  unreachable: 'The directory (LDAP) cannot be reached; local accounts can still sign in.',
  throttled: 'Too many failed sign-ins for this user or from this address: wait a few minutes.',
  not_allowed: 'Your account has no role in pgherd: ask an administrator to bind you or your group to a role.',
};

/** Failed sign-ins in the window, for this user and from this address (read from the audit log). */
async function recentFailures(db: Queries, username: string, remoteAddr: string): Promise<{ user: number; address: number }> {
  const since = new Date(Date.now() - THROTTLE.windowMs);
  const [r] = await db
    .select({
      user: sql<number>`count(*) FILTER (WHERE ${auditEntries.username} = ${username})::int`,
      address: sql<number>`count(*) FILTER (WHERE ${auditEntries.remoteAddr} = ${remoteAddr} AND ${remoteAddr} <> '')::int`,
    })
    .from(auditEntries)
    .where(
      and(
        eq(auditEntries.action, 'auth.sign_in_failed'),
        gt(auditEntries.at, since),
        or(eq(auditEntries.username, username), remoteAddr ? eq(auditEntries.remoteAddr, remoteAddr) : sql`false`),
      ),
    );
  if (!r) throw new Error('recentFailures: the count query returned no row');
  return r;
}

/**
 * One spelling per person: "Alice", "ALICE " and "alice" are one user for lookup, throttling and the
 * account pgherd records (a directory compares uids without regard to case; counting them apart
 * would multiply the per-user limit).
 */
export const normalizeUsername = (username: string) => username.normalize('NFKC').trim().toLowerCase().slice(0, 200);

/** pg_try_advisory_xact_lock's first key for sign-in attempts (the second: the username's or address's hash). */
const SIGNIN_LOCK = 72_842_101;
/** Sign-ins evaluated at once from one address (people behind one NAT sign in at the same time). */
export const ADDRESS_SLOTS = 4;

export async function authenticate(
  db: Db,
  username: string,
  password: string,
  remoteAddr = '',
  ldap: LdapConfig | null = ldapConfig(),
): Promise<AuthResult> {
  const name = normalizeUsername(username);
  // Written in the attempt's transaction, before its locks go: the next attempt counts it.
  let conn: Queries = db;
  const fail = async (code: AuthFailure, detail: string, userId: number | null = null): Promise<AuthResult> => {
    await writeAudit(conn, {
      user: { id: userId, username: name },
      remoteAddr,
      action: code === 'not_allowed' ? 'auth.sign_in_refused' : 'auth.sign_in_failed',
      objectType: 'user',
      objectId: userId ? String(userId) : '',
      objectLabel: name,
      changes: { reason: [null, `${code}: ${detail}`] },
    });
    return { ok: false, code, reason: MESSAGES[code] };
  };
  // One attempt at a time per username, and at most ADDRESS_SLOTS at once per address: a burst of
  // parallel requests must not all be counted against the failures of before it (each would pass the
  // check and get its guess). The locks last the attempt's transaction; whoever finds them taken is
  // throttled at once, without waiting (and without holding a connection).
  return db.transaction(async (tx) => {
    const [slot] = (
      await tx.execute(sql`
      SELECT pg_try_advisory_xact_lock(${SIGNIN_LOCK}, hashtext(${`user:${name}`})) AS user_lock,
             (${remoteAddr} = '' OR EXISTS (SELECT 1 FROM generate_series(1, ${ADDRESS_SLOTS}) s
                WHERE pg_try_advisory_xact_lock(${SIGNIN_LOCK}, hashtext(${`address:${remoteAddr}:`} || s)))) AS address_lock`)
    ).rows as { user_lock: boolean; address_lock: boolean }[];
    if (!slot) throw new Error('authenticate: the sign-in lock query returned no row');
    const seen = await recentFailures(tx, name, remoteAddr);
    if (!slot.user_lock || !slot.address_lock || seen.user >= THROTTLE.perUser || seen.address >= THROTTLE.perAddress) {
      // Not counted as a failure itself: a throttled attacker does not extend the lock forever.
      const why = !slot.user_lock
        ? 'another sign-in for this user is in progress'
        : !slot.address_lock
          ? 'too many sign-ins in progress from this address'
          : 'too many failures';
      await writeAudit(tx, {
        user: { id: null, username: name },
        remoteAddr,
        action: 'auth.sign_in_throttled',
        objectType: 'user',
        objectLabel: name,
        changes: { reason: [null, why] },
      });
      return { ok: false, code: 'throttled', reason: MESSAGES.throttled };
    }
    conn = tx;
    return verify(conn);
  });

  async function verify(db: Queries): Promise<AuthResult> {
    // Asked of nobody (no account, no directory): such an account, however it came to be, is no one's.
    if (isReservedName(name)) return fail('invalid', 'a name pgherd uses for itself');
    const [local] = await db
      .select()
      .from(users)
      .where(sql`lower(${users.username}) = ${name}`)
      .orderBy(users.id)
      .limit(1);
    let user: typeof users.$inferSelect;
    if (local?.source === 'local' || !ldap) {
      if (!local) return fail('invalid', 'no such local user');
      const ok = local.isActive && local.source === 'local' && (await verifyPassword(password, local.passwordHash));
      if (!ok) return fail('invalid', 'wrong password or inactive', local.id);
      user = local;
    } else {
      const res = await ldapAuthenticate(ldap, name, password);
      if (!res.ok) return fail(res.reason, res.message, local?.id ?? null);
      // The directory's spelling, in one case: the account is the same whichever way it was typed.
      const canonical = normalizeUsername(res.username);
      // The directory may spell the person otherwise than typed (a filter on mail): its name counts too.
      if (isReservedName(canonical)) return fail('invalid', `the directory names the user ${canonical}, a name pgherd uses for itself`);
      const values = {
        username: local?.username ?? canonical,
        displayName: res.displayName,
        email: res.email,
        source: 'ldap' as const,
        ldapDn: res.dn,
        groups: res.groups,
        passwordHash: null,
      };
      const [upserted] = await db
        .insert(users)
        .values(values)
        .onConflictDoUpdate({
          target: users.username,
          set: { displayName: values.displayName, email: values.email, ldapDn: values.ldapDn, groups: values.groups },
        })
        .returning();
      if (!upserted) throw new Error(`authenticate: the upsert of user ${canonical} returned no row`);
      user = upserted;
      if (!user.isActive) return fail('invalid', 'account disabled in pgherd', user.id);
      if (!user.isSuperuser && !(await hasAnyBinding(db, user.username, user.groups)))
        return fail('not_allowed', `no role binding for the user or its groups (${user.groups.join('; ') || 'none'})`, user.id);
    }
    await db.update(users).set({ lastLoginAt: new Date() }).where(eq(users.id, user.id));
    await writeAudit(db, {
      user: { id: user.id, username: user.username },
      remoteAddr,
      action: 'auth.sign_in',
      objectType: 'user',
      objectId: String(user.id),
      objectLabel: user.username,
    });
    return {
      ok: true,
      user: { id: user.id, username: user.username, displayName: user.displayName, isSuperuser: user.isSuperuser, groups: user.groups },
    };
  }
}

async function hasAnyBinding(db: Queries, username: string, groups: string[]): Promise<boolean> {
  return (await db.select({ id: roleBindings.id }).from(roleBindings).where(bindingsFor(username, groups)).limit(1)).length > 0;
}
