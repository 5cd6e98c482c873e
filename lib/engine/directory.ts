// A directory user's standing, asked of the directory again (not only at sign-in): whether they are
// still in it, and their groups now. A session, an API token and a rule's fires all act on it, so a
// person removed from the directory or from a group loses what it gave them within the re-check
// interval, not when a session or a token expires. The answer is kept a short while per user, so a
// burst of API calls is one search; a directory that does not answer refuses (as sign-in does).
import { eq } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { users } from '@/db/schema';
import { ldapConfig, ldapLookup, type LdapConfig, type LdapLookup } from '@/lib/adapters/ldap/ldap';
import { setting } from '@/lib/settings/settings';

/** PGHERD_LDAP_RECHECK_SECONDS: how long the directory's answer about a user is kept (default 60; 0: asked every time). */
export const recheckMs = (): number => setting('PGHERD_LDAP_RECHECK_SECONDS') * 1000;

export type Standing = { active: true; groups: string[] } | { active: false; why: string };

export interface StandingUser {
  id: number;
  username: string;
  source: 'local' | 'ldap';
  isActive: boolean;
  groups: string[];
}

const answers = new Map<string, { at: number; answer: LdapLookup }>();
const configs = new Map<string, LdapConfig | null>();

/** The process's directory configuration, read once per file (it is read at every request otherwise). */
function configured(): LdapConfig | null {
  const file = setting('PGHERD_LDAP_CONFIG') ?? '';
  if (!configs.has(file)) configs.set(file, ldapConfig(file));
  return configs.get(file) ?? null;
}

async function lookup(cfg: LdapConfig, username: string): Promise<LdapLookup> {
  const key = `${cfg.urls.join(' ')}|${cfg.userBase}|${username}`;
  const kept = answers.get(key);
  if (kept && Date.now() - kept.at < recheckMs()) return kept.answer;
  const answer = await ldapLookup(cfg, username);
  // An unreachable directory is asked again next time, not remembered.
  if (answer.found || answer.reason === 'gone') answers.set(key, { at: Date.now(), answer });
  else answers.delete(key);
  return answer;
}

/**
 * Whether `user` may act now, and with which groups: a local account by pgherd's own flag; a directory
 * account also by the directory (pgherd runs without one configured: the groups of the last sign-in).
 * New groups are written back, so every page and check that reads the user sees them.
 */
export async function standingOf(db: Queries, user: StandingUser, cfg: LdapConfig | null = configured()): Promise<Standing> {
  if (!user.isActive) return { active: false, why: 'is disabled in pgherd' };
  if (user.source !== 'ldap' || !cfg) return { active: true, groups: user.groups };
  const answer = await lookup(cfg, user.username);
  if (!answer.found)
    return answer.reason === 'gone'
      ? { active: false, why: `is gone from the directory (${answer.message})` }
      : { active: false, why: `cannot be checked: the directory did not answer (${answer.message})` };
  if (answer.groups.join('\n') !== [...user.groups].sort().join('\n'))
    await db.update(users).set({ groups: answer.groups, ldapDn: answer.dn }).where(eq(users.id, user.id));
  return { active: true, groups: answer.groups };
}
