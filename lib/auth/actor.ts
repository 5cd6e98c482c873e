// The signed-in user behind a server action, with the address the audit log records.
import { headers } from 'next/headers';
import { clientAddress } from './client-address';
import { requireUser } from './session';

export async function currentActor(): Promise<{ id: number; username: string; remoteAddr: string }> {
  const user = await requireUser();
  return { id: user.id, username: user.username, remoteAddr: clientAddress((await headers()).get('x-forwarded-for')) };
}
