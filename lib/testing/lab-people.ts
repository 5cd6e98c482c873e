// The lab's directory people, signed in as the console signs them in (against slapd, their groups
// recorded), for the tests of who may do what.
import type { Db } from '@/db/client';
import { loadAccess, type Actor } from '@/lib/engine/access';
import { authenticate } from '@/lib/features/auth/authenticate';
import { ldapConfigSchema, type LdapConfig } from '@/lib/adapters/ldap/ldap';
import type { LabInfo } from '@/lib/lab/lab';

/** The console's directory settings for the lab's slapd. */
export function labLdapConfig(lab: LabInfo): LdapConfig {
  const l = lab.ldap!;
  return ldapConfigSchema.parse({
    urls: [l.url],
    bindDn: l.bindDn,
    bindPassword: l.bindPassword,
    userBase: l.userBase,
    groupBase: l.groupBase,
  });
}

/** Signs `username` in with their lab password, from `remoteAddr`: who they are and what they may do. */
export async function signInLab(
  db: Db,
  lab: LabInfo,
  cfg: LdapConfig,
  username: string,
  remoteAddr: string,
): Promise<Actor & { id: number; remoteAddr: string }> {
  const res = await authenticate(db, username, lab.ldap!.users.find((u) => u.username === username)!.password, remoteAddr, cfg);
  if (!res.ok) throw new Error(`${username}: ${res.code}`);
  return { id: res.user.id, username, access: await loadAccess(db, res.user.id), remoteAddr };
}
