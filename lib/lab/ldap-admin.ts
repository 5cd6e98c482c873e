// Changes to the lab's directory as its administrator would make them, with OpenLDAP's own clients
// (ldapadd, ldapmodify, ldapdelete) against the running slapd: tests add a person of their own and take
// them away again, leaving the lab's people to the other test files.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ssha, type LabLdap } from './ldap';

const execFileP = promisify(execFile);

/** Runs one of ldapadd/ldapmodify/ldapdelete bound as the directory's root, `input` on its stdin. */
async function asAdmin(l: LabLdap, tool: 'ldapadd' | 'ldapmodify' | 'ldapdelete', args: string[], input: string): Promise<void> {
  const argv = ['-x', '-H', l.url, '-D', l.adminDn, '-y', l.adminPasswordFile, ...args];
  const child = execFileP(`/usr/bin/${tool}`, argv, { timeout: 10_000 });
  child.child.stdin?.end(input);
  try {
    await child;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** A new person in ou=people, a member of the lab's `groups` (by name); their DN. */
export async function addPerson(l: LabLdap, username: string, password: string, groups: string[]): Promise<string> {
  const dn = `uid=${username},${l.userBase}`;
  await asAdmin(
    l,
    'ldapadd',
    [],
    [
      `dn: ${dn}`,
      'objectClass: inetOrgPerson',
      `uid: ${username}`,
      `cn: ${username}`,
      `sn: ${username}`,
      `userPassword: ${ssha(password)}`,
      '',
    ].join('\n'),
  );
  for (const g of groups) {
    const group = l.groups[g];
    if (!group) throw new Error(`the lab's directory has no group ${g}`);
    await asAdmin(l, 'ldapmodify', [], [`dn: ${group}`, 'changetype: modify', 'add: member', `member: ${dn}`, ''].join('\n'));
  }
  return dn;
}

/** Takes a person out of one of the lab's groups (by name). */
export async function leaveGroup(l: LabLdap, dn: string, group: string): Promise<void> {
  const g = l.groups[group];
  if (!g) throw new Error(`the lab's directory has no group ${group}`);
  await asAdmin(l, 'ldapmodify', [], [`dn: ${g}`, 'changetype: modify', 'delete: member', `member: ${dn}`, ''].join('\n'));
}

/** Deletes a person's entry (take them out of their groups first: groupOfNames keeps a member's DN). */
export async function removePerson(l: LabLdap, dn: string): Promise<void> {
  await asAdmin(l, 'ldapdelete', [dn], '');
}
