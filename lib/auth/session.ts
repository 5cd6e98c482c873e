import { getServerSession } from 'next-auth';
import { forbidden, redirect } from 'next/navigation';
import { cache } from 'react';
import { getDb } from '@/db/client';
import type { Role } from '@/lib/ops/define-action';
import { AccessDenied, canSomewhere, loadAccess, type Access } from './access';
import { authOptions } from './options';

export interface CurrentUser {
  id: number;
  username: string;
  superuser: boolean;
  name: string;
}

/** Once per request: the layout and the page both ask, and decrypting the session costs. */
export const getCurrentUser = cache(async (): Promise<CurrentUser | null> => {
  const session = await getServerSession(authOptions);
  if (!session?.user?.id) return null;
  const u = session.user;
  return { id: u.id, username: u.username, superuser: u.superuser, name: u.name ?? u.username };
});

/** The signed-in user's roles as the database has them now (once per request). */
export const getCurrentAccess = cache(async (): Promise<Access | null> => {
  const user = await getCurrentUser();
  return user ? loadAccess(getDb(), user.id) : null;
});

/** For pages and server actions: the signed-in user, or a redirect to the sign-in page. */
export async function requireUser(): Promise<CurrentUser> {
  const user = await getCurrentUser();
  if (!user) redirect('/login');
  return user;
}

/** The signed-in user's access, or a redirect to the sign-in page. */
export async function requireAccess(): Promise<Access> {
  await requireUser();
  return (await getCurrentAccess())!;
}

/**
 * Why this request was refused, for the forbidden page: React's per-request cache gives each request
 * its own holder, which the page fills before it calls forbidden().
 */
export const forbiddenReason = cache((): { message: string } => ({ message: '' }));

/** Renders the 403 page with this message (the HTTP status is 403). */
export function deny(message: string): never {
  forbiddenReason().message = message;
  forbidden();
}

/** Runs `fn`; an AccessDenied it throws becomes the 403 page with its message. */
export async function orDeny<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AccessDenied) deny(err.message);
    throw err;
  }
}

/** For pages that need a role somewhere (the role bindings list, say): the 403 page otherwise. */
export async function requireRoleSomewhere(need: Role, what: string): Promise<Access> {
  const a = await requireAccess();
  if (!canSomewhere(a, need)) deny(`${what} needs the ${need} role`);
  return a;
}
