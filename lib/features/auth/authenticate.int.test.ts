import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, users } from '@/db/schema';
import { ensureAdmin } from '@/lib/features/auth/superuser';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { authenticate } from './authenticate';

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase();
  await ensureAdmin(t.db, 'root-admin', 's3cret-Pass');
});
afterAll(async () => ifAssigned(t)?.close());

describe('authenticate (local accounts)', () => {
  it('signs in with the right password and records the sign-in', async () => {
    const res = await authenticate(t.db, 'root-admin', 's3cret-Pass', '10.1.2.3');
    expect(res).toMatchObject({ ok: true, user: { username: 'root-admin', isSuperuser: true } });
    const [u] = await t.db.select().from(users).where(eq(users.username, 'root-admin'));
    expect(u!.lastLoginAt).not.toBeNull();
    const [a] = await t.db.select().from(auditEntries).where(eq(auditEntries.action, 'auth.sign_in'));
    expect(a).toMatchObject({ username: 'root-admin', remoteAddr: '10.1.2.3', objectType: 'user' });
  });

  it('refuses a wrong password, an unknown user and a disabled account, auditing each', async () => {
    expect((await authenticate(t.db, 'root-admin', 'wrong')).ok).toBe(false);
    expect((await authenticate(t.db, 'nobody', 'whatever')).ok).toBe(false);
    await t.db.update(users).set({ isActive: false }).where(eq(users.username, 'root-admin'));
    expect((await authenticate(t.db, 'root-admin', 's3cret-Pass')).ok).toBe(false);
    const failed = await t.db.select().from(auditEntries).where(eq(auditEntries.action, 'auth.sign_in_failed')).orderBy(auditEntries.id);
    expect(failed.map((f) => f.objectLabel)).toEqual(['root-admin', 'nobody', 'root-admin']);
  });
});
