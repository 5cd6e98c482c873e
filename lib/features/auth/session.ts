import { getServerSession } from 'next-auth';
import { headers } from 'next/headers';
import { forbidden, notFound, redirect } from 'next/navigation';
import { cache } from 'react';
import { getDb } from '@/db/client';
import { AccessDenied, answeringDenial, auditDenial, loadAccess, type Access, type Requester } from '@/lib/engine/access';
import { CLIENT_ADDRESS_HEADER, clientAddress } from './client-address';
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
  if (!session?.user.id) return null;
  const u = session.user;
  return { id: u.id, username: u.username, superuser: u.superuser, name: u.name ?? u.username };
});

/** The signed-in user's roles as the database has them now (once per request). */
export const getCurrentAccess = cache(async (): Promise<Access | null> => {
  const user = await getCurrentUser();
  if (!user) return null;
  return { ...(await loadAccess(getDb(), user.id)), remoteAddr: clientAddress((await headers()).get(CLIENT_ADDRESS_HEADER)) };
});

/** For pages and server actions: the signed-in user, or a redirect to the sign-in page. */
export async function requireUser(): Promise<CurrentUser> {
  const user = await getCurrentUser();
  if (!user) redirect('/login');
  return user;
}

/** The signed-in user's access, or a redirect to the sign-in page. */
export async function requireAccess(): Promise<Access> {
  const access = await getCurrentAccess();
  if (!access) redirect('/login');
  return access;
}

/** The signed-in user and the address the request came from: who a refusal is recorded against. */
async function requester(): Promise<Requester | undefined> {
  const user = await getCurrentUser();
  return user
    ? { id: user.id, username: user.username, remoteAddr: clientAddress((await headers()).get(CLIENT_ADDRESS_HEADER)) }
    : undefined;
}

/**
 * Renders the 403 page (HTTP status 403) after recording the refusal in the audit log, which is where
 * the page finds the message to show: Next renders forbidden.tsx before the page decides, so the page
 * asks for the user's latest refusal once it is in the browser (components/auth/denial-reason.tsx).
 */
export async function deny(reason: string | AccessDenied): Promise<never> {
  const err = typeof reason === 'string' ? new AccessDenied(reason) : reason;
  await auditDenial(getDb(), err, await requester());
  forbidden();
}

/**
 * A server action's input that no page of the console sends (a forged or hand-made request: an id out
 * of range, a missing field): the 404 page, nothing done, never a 500.
 */
export function malformed(): never {
  notFound();
}

/**
 * The console's one way of answering a refusal that `fn` throws (lib/ admin and ops only throw): it is
 * recorded in the audit log, then answered with `answer(err)`, for a server action whose form says it.
 */
export async function orAnswer<T>(fn: () => Promise<T>, answer: (err: AccessDenied) => T): Promise<T> {
  return answeringDenial(getDb(), await requester(), fn, answer);
}

/** Runs `fn`; an AccessDenied it throws is recorded and becomes the 403 page with its message. */
export const orDeny = <T>(fn: () => Promise<T>): Promise<T> => orAnswer(fn, () => forbidden());
