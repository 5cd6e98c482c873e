// API tokens: created for a user with a scope and an optional expiry, shown once, hashed at rest.
import { createHash, randomBytes } from 'node:crypto';
import { and, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { apiTokens, users } from '@/db/schema';

export type Scope = 'read' | 'operate';

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export async function createApiToken(db: Db, userId: number, name: string, scope: Scope, expiresAt: Date | null = null): Promise<{ id: number; token: string }> {
  const token = `pgh_${randomBytes(32).toString('base64url')}`;
  const [row] = await db.insert(apiTokens).values({ userId, name, tokenHash: hashToken(token), prefix: token.slice(0, 10), scope, expiresAt }).returning({ id: apiTokens.id });
  return { id: row.id, token };
}

export async function revokeApiToken(db: Db, id: number): Promise<void> {
  await db.update(apiTokens).set({ revokedAt: new Date() }).where(eq(apiTokens.id, id));
}

export interface TokenUser {
  id: number;
  username: string;
  scope: Scope;
}

/** The token's user and scope, or null for an unknown, revoked or expired token; records the use. */
export async function verifyApiToken(db: Db, token: string): Promise<TokenUser | null> {
  if (!/^pgh_[A-Za-z0-9_-]{43}$/.test(token)) return null;
  const rows = await db.update(apiTokens).set({ lastUsedAt: sql`now()` })
    .where(and(eq(apiTokens.tokenHash, hashToken(token)), isNull(apiTokens.revokedAt), or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, sql`now()`))))
    .returning({ userId: apiTokens.userId, scope: apiTokens.scope });
  if (!rows.length) return null;
  const [u] = await db.select({ id: users.id, username: users.username, active: users.isActive }).from(users).where(eq(users.id, rows[0].userId));
  return u?.active ? { id: u.id, username: u.username, scope: rows[0].scope } : null;
}
