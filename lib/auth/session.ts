import { getServerSession } from 'next-auth';
import { redirect } from 'next/navigation';
import { cache } from 'react';
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

/** For pages and server actions: the signed-in user, or a redirect to the sign-in page. */
export async function requireUser(): Promise<CurrentUser> {
  const user = await getCurrentUser();
  if (!user) redirect('/login');
  return user;
}
