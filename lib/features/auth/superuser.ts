// A local superuser (createsuperuser, the demo's admin): created, or its password reset and the
// account made active and superuser again.
import type { Db } from '@/db/client';
import { users } from '@/db/schema';
import { hashPassword } from './password';
import { refuseReservedName } from './reserved-names';

/** Throws ReservedNameError, creating nothing, for a name pgherd uses for itself. */
export async function ensureAdmin(db: Db, username: string, password: string): Promise<void> {
  refuseReservedName(username);
  const passwordHash = await hashPassword(password);
  await db
    .insert(users)
    .values({ username, displayName: username, passwordHash, isSuperuser: true, source: 'local' })
    .onConflictDoUpdate({ target: users.username, set: { passwordHash, isActive: true, isSuperuser: true } });
}
