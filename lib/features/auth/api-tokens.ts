// API tokens: created for a user with a scope and an optional expiry, shown once, hashed at rest,
// revocable, their last use recorded. A token acts as its user (the user's roles), within its scope.
import { createHash, randomBytes } from 'node:crypto';
import { and, desc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import { z } from 'zod';
import { isPlainName, NO_TRICKS } from '@/lib/adapters/validation/text';
import type { Db } from '@/db/client';
import { apiTokens, users } from '@/db/schema';
import { writeAudit } from '@/lib/engine/write-audit';
import { standingOf } from '@/lib/engine/directory';
import { setting } from '@/lib/settings/settings';

export type Scope = 'read' | 'operate';

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Who creates or revokes a token, for the audit log. */
export interface TokenActor {
  id: number;
  username: string;
  remoteAddr?: string;
}

/** The console's form: a name, a scope, and an expiry in days (empty: never). */
export const newTokenForm = z.object({
  name: z.string().trim().min(1, 'Name the token (what uses it).').max(100, 'At most 100 characters.').refine(isPlainName, NO_TRICKS),
  scope: z.enum(['read', 'operate'], { message: 'Choose read or operate.' }),
  expiresInDays: z.preprocess(
    (v) => (v === '' || v === undefined || v === null ? null : v),
    z.coerce
      .number({ message: 'Enter a number of days.' })
      .int('Enter a whole number of days.')
      .min(1, 'At least 1 day.')
      .max(3650, 'At most 3650 days.')
      .nullable(),
  ),
});

/**
 * PGHERD_API_TOKEN_MAX_DAYS: the longest a token may live (365 days unless configured). A token asked for
 * without an expiry, or a longer one, gets this; a token older than it is refused, whatever it was made with.
 */
export const tokenMaxDays = (): number => setting('PGHERD_API_TOKEN_MAX_DAYS');

/** The expiry a token gets: the one asked for, capped by the maximum lifetime from `now`. */
export function cappedExpiry(asked: Date | null, now: Date, maxDays: number | null = tokenMaxDays()): Date | null {
  if (maxDays === null) return asked;
  const cap = new Date(now.getTime() + maxDays * 86_400_000);
  return asked && asked < cap ? asked : cap;
}

export async function createApiToken(
  db: Db,
  userId: number,
  name: string,
  scope: Scope,
  expiresAt: Date | null = null,
  actor?: TokenActor,
): Promise<{ id: number; token: string }> {
  const token = `pgh_${randomBytes(32).toString('base64url')}`;
  expiresAt = cappedExpiry(expiresAt, new Date());
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(apiTokens)
      .values({ userId, name, tokenHash: hashToken(token), prefix: token.slice(0, 10), scope, expiresAt })
      .returning({ id: apiTokens.id });
    if (!row) throw new Error('createApiToken: the insert returned no row');
    await writeAudit(tx, {
      user: actor ?? { id: userId, username: `#${userId}` },
      remoteAddr: actor?.remoteAddr,
      action: 'token.create',
      objectType: 'api-tokens',
      objectId: String(row.id),
      objectLabel: `${name} (${token.slice(0, 10)}…)`,
      changes: { scope: [null, scope], expiresAt: [null, expiresAt?.toISOString() ?? null], owner: [null, userId] },
    });
    return { id: row.id, token };
  });
}

/**
 * Revokes a token of `ownerId` (null: any user's, for an administrator or a script). Returns false,
 * changing nothing, when there is no such live token.
 */
export async function revokeApiToken(db: Db, id: number, ownerId: number | null = null, actor?: TokenActor): Promise<boolean> {
  return db.transaction(async (tx) => {
    const rows = await tx
      .update(apiTokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt), ownerId === null ? undefined : eq(apiTokens.userId, ownerId)))
      .returning({ name: apiTokens.name, prefix: apiTokens.prefix, userId: apiTokens.userId });
    const [revoked] = rows;
    if (!revoked) return false;
    await writeAudit(tx, {
      user: actor ?? { id: null, username: 'system' },
      remoteAddr: actor?.remoteAddr,
      action: 'token.revoke',
      objectType: 'api-tokens',
      objectId: String(id),
      objectLabel: `${revoked.name} (${revoked.prefix}…)`,
      changes: { revoked: [false, true], owner: [null, revoked.userId] },
    });
    return true;
  });
}

export interface TokenRow {
  id: number;
  name: string;
  prefix: string;
  scope: Scope;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export async function listApiTokens(db: Db, userId: number): Promise<TokenRow[]> {
  return db
    .select({
      id: apiTokens.id,
      name: apiTokens.name,
      prefix: apiTokens.prefix,
      scope: apiTokens.scope,
      createdAt: apiTokens.createdAt,
      expiresAt: apiTokens.expiresAt,
      revokedAt: apiTokens.revokedAt,
      lastUsedAt: apiTokens.lastUsedAt,
    })
    .from(apiTokens)
    .where(eq(apiTokens.userId, userId))
    .orderBy(desc(apiTokens.createdAt), desc(apiTokens.id));
}

export interface TokenUser {
  id: number;
  username: string;
  scope: Scope;
}

/**
 * The token's user and scope, or null for an unknown, revoked or expired token, one older than the
 * maximum lifetime, or one whose user is inactive now (disabled, or gone from the directory); records
 * the use.
 */
export async function verifyApiToken(db: Db, token: string): Promise<TokenUser | null> {
  if (!/^pgh_[A-Za-z0-9_-]{43}$/.test(token)) return null;
  const maxDays = tokenMaxDays();
  const [used] = await db
    .update(apiTokens)
    .set({ lastUsedAt: sql`now()` })
    .where(
      and(
        eq(apiTokens.tokenHash, hashToken(token)),
        isNull(apiTokens.revokedAt),
        or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, sql`now()`)),
        gt(apiTokens.createdAt, sql`now() - make_interval(days => ${maxDays})`),
      ),
    )
    .returning({ userId: apiTokens.userId, scope: apiTokens.scope });
  if (!used) return null;
  const [u] = await db
    .select({ id: users.id, username: users.username, source: users.source, isActive: users.isActive, groups: users.groups })
    .from(users)
    .where(eq(users.id, used.userId));
  if (!u || !(await standingOf(db, u)).active) return null;
  return { id: u.id, username: u.username, scope: used.scope };
}
