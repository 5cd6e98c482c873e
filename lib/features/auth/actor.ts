// The signed-in user behind a server action: the address the audit log records and the roles the
// entry points check.
import { headers } from 'next/headers';
import type { SignedInActor } from '@/lib/engine/access';
import { CLIENT_ADDRESS_HEADER, clientAddress } from './client-address';
import { requireAccess, requireUser } from './session';

export async function currentActor(): Promise<SignedInActor> {
  const user = await requireUser();
  return {
    id: user.id,
    username: user.username,
    remoteAddr: clientAddress((await headers()).get(CLIENT_ADDRESS_HEADER)),
    access: await requireAccess(),
  };
}
