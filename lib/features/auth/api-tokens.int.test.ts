// API tokens end: with no configuration, a token lives a year at most. Made without an expiry it gets
// one a year out; one an older version made open-ended is refused once it is a year old.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiTokens, users } from '@/db/schema';
import { ensureAdmin } from '@/lib/features/auth/superuser';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { createApiToken, verifyApiToken } from './api-tokens';

const DAY = 86_400_000;
let t: TestDb;
let userId: number;
beforeAll(async () => {
  delete process.env.PGHERD_API_TOKEN_MAX_DAYS;
  t = await freshDatabase();
  await ensureAdmin(t.db, 'token-owner', 's3cret-Pass-1');
  userId = (await t.db.select({ id: users.id }).from(users).where(eq(users.username, 'token-owner')))[0]!.id;
});
afterAll(async () => ifAssigned(t)?.close());

describe('API tokens, with PGHERD_API_TOKEN_MAX_DAYS unset', () => {
  it('a token made without an expiry, or a longer one, ends 365 days from now', async () => {
    for (const asked of [null, new Date(Date.now() + 5000 * DAY)]) {
      const before = Date.now();
      const { id } = await createApiToken(t.db, userId, `t-${String(asked)}`, 'read', asked);
      const [row] = await t.db.select({ e: apiTokens.expiresAt }).from(apiTokens).where(eq(apiTokens.id, id));
      expect(row!.e, String(asked)).not.toBeNull();
      expect(row!.e!.getTime()).toBeGreaterThanOrEqual(before + 365 * DAY);
      expect(row!.e!.getTime()).toBeLessThanOrEqual(Date.now() + 365 * DAY);
    }
  });

  it('an open-ended token an older version made is refused once a year old, and works until then', async () => {
    const { id, token } = await createApiToken(t.db, userId, 'old', 'operate', null);
    // As an older version stored it: no expiry at all.
    await t.db
      .update(apiTokens)
      .set({ expiresAt: null, createdAt: sql`now() - interval '364 days'` })
      .where(eq(apiTokens.id, id));
    expect(await verifyApiToken(t.db, token)).toMatchObject({ scope: 'operate' });
    await t.db
      .update(apiTokens)
      .set({ createdAt: sql`now() - interval '366 days'` })
      .where(eq(apiTokens.id, id));
    expect(await verifyApiToken(t.db, token)).toBeNull();
    const [row] = await t.db.select({ revoked: apiTokens.revokedAt }).from(apiTokens).where(eq(apiTokens.id, id));
    expect(row!.revoked).toBeNull();
  });
});
