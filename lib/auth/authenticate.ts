// The one place a username and password become a pgherd user. LDAP (a later issue) plugs in here.
import { eq } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { users } from '@/db/schema';
import { writeAudit } from '@/lib/audit/write-audit';
import { verifyPassword } from './password';

export interface AuthenticatedUser {
  id: number;
  username: string;
  displayName: string;
  isSuperuser: boolean;
}

export type AuthResult = { ok: true; user: AuthenticatedUser } | { ok: false; reason: string };

export async function authenticate(db: Db, username: string, password: string, remoteAddr = ''): Promise<AuthResult> {
  const name = username.trim();
  const [user] = await db.select().from(users).where(eq(users.username, name)).limit(1);
  const ok = !!user && user.isActive && user.source === 'local' && (await verifyPassword(password, user.passwordHash));
  await writeAudit(db, {
    user: ok ? { id: user!.id, username: user!.username } : { id: null, username: name.slice(0, 200) },
    remoteAddr,
    action: ok ? 'auth.sign_in' : 'auth.sign_in_failed',
    objectType: 'user',
    objectId: user ? String(user.id) : '',
    objectLabel: name.slice(0, 200),
  });
  if (!ok) return { ok: false, reason: 'Wrong username or password.' };
  await db.update(users).set({ lastLoginAt: new Date() }).where(eq(users.id, user.id));
  return {
    ok: true,
    user: { id: user.id, username: user.username, displayName: user.displayName, isSuperuser: user.isSuperuser },
  };
}
