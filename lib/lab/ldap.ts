// OpenLDAP slapd for the lab: a directory with ou=people, ou=groups (groupOfNames) and a service
// account pgherd searches with, loaded offline by slapadd and run by the lab user on a free port.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { listening } from './ports';
import { asLabUser, mkdirOwned, run, type Identity } from './proc';
import { waitFor } from '@/lib/testing/wait';
import { issueCertificate, type LabCa } from './tls';

export interface LabLdapUser {
  username: string;
  password: string;
  dn: string;
  /** Group DNs the user is a member of. */
  groups: string[];
}

export interface LabLdap {
  /** Plain LDAP, where StartTLS is offered. */
  url: string;
  /** LDAP over TLS (ldaps://), with a certificate for 127.0.0.1 signed by the lab's own CA. */
  ldapsUrl: string;
  /** The lab CA's certificate (PEM): what a client verifies slapd's certificate against. */
  caFile: string;
  baseDn: string;
  userBase: string;
  groupBase: string;
  bindDn: string;
  bindPassword: string;
  /** The file PGHERD_LDAP_CONFIG points at for the console. */
  configFile: string;
  /** The directory's root DN and a file holding its password (no newline, for ldapmodify -y): tests change the directory with them. */
  adminDn: string;
  adminPasswordFile: string;
  users: LabLdapUser[];
  /** Group name -> DN. */
  groups: Record<string, string>;
}

export const LAB_BASE_DN = 'dc=lab,dc=internal';

/** The lab's people and their groups: one per kind of user the roles tests need. */
export const LAB_PEOPLE: { username: string; name: string; groups: string[] }[] = [
  { username: 'alice', name: 'Alice Prod-DBA', groups: ['dba-prod'] },
  { username: 'bob', name: 'Bob Staging-DBA', groups: ['dba-staging'] },
  { username: 'carol', name: 'Carol Auditor', groups: ['readonly'] },
  { username: 'dave', name: 'Dave Nobody', groups: [] },
  // Admin in staging only: the one who would aim staging's rows at production's hosts.
  { username: 'erin', name: 'Erin Staging-Admin', groups: ['admins-staging'] },
  // Operator in production: who approves what a production DBA asks for (docs/approvals.md).
  { username: 'frank', name: 'Frank Prod-Operator', groups: ['ops-prod'] },
  // A directory person named as pgherd names itself: sign-in must refuse him, however he is bound.
  { username: 'system', name: 'Sys Impostor', groups: [] },
];
export const LAB_GROUPS = ['dba-prod', 'dba-staging', 'admins-staging', 'readonly', 'ops-prod'];

/** {SSHA} as OpenLDAP checks it: base64(sha1(password + salt) + salt). */
export function ssha(password: string): string {
  const salt = randomBytes(8);
  return `{SSHA}${Buffer.concat([createHash('sha1').update(password).update(salt).digest(), salt]).toString('base64')}`;
}

export async function startLdap(
  id: Identity,
  dir: string,
  port: number,
  tlsPort: number,
  ca: LabCa,
): Promise<{ pid: number; ldap: LabLdap }> {
  const home = path.join(dir, 'ldap');
  mkdirOwned(id, home, 0o700);
  mkdirOwned(id, path.join(home, 'data'), 0o700);
  const cert = await issueCertificate(id, ca, home, 'slapd', { ips: ['127.0.0.1'], names: ['localhost'] });
  const tls = { ca: ca.caFile, cert: cert.certFile, key: cert.keyFile };
  const rootPassword = randomBytes(12).toString('base64url');
  const bindDn = `cn=pgherd,ou=services,${LAB_BASE_DN}`;
  const bindPassword = randomBytes(12).toString('base64url');
  const userBase = `ou=people,${LAB_BASE_DN}`;
  const groupBase = `ou=groups,${LAB_BASE_DN}`;
  const conf = path.join(home, 'slapd.conf');
  writeFileSync(
    conf,
    [
      'include /etc/ldap/schema/core.schema',
      'include /etc/ldap/schema/cosine.schema',
      'include /etc/ldap/schema/inetorgperson.schema',
      `pidfile ${home}/slapd.pid`,
      `argsfile ${home}/slapd.args`,
      `TLSCACertificateFile ${tls.ca}`,
      `TLSCertificateFile ${tls.cert}`,
      `TLSCertificateKeyFile ${tls.key}`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      'database mdb',
      `suffix "${LAB_BASE_DN}"`,
      `rootdn "cn=admin,${LAB_BASE_DN}"`,
      `rootpw ${ssha(rootPassword)}`,
      `directory ${home}/data`,
      'access to attrs=userPassword by self write by anonymous auth by * none',
      'access to * by users read by * none',
      '',
    ].join('\n'),
  );
  const users: LabLdapUser[] = LAB_PEOPLE.map((p) => ({
    username: p.username,
    password: `${p.username}-${randomBytes(6).toString('base64url')}`,
    dn: `uid=${p.username},${userBase}`,
    groups: p.groups.map((g) => `cn=${g},${groupBase}`),
  }));
  const groups = Object.fromEntries(LAB_GROUPS.map((g) => [g, `cn=${g},${groupBase}`]));
  const entry = (lines: string[]) => lines.join('\n');
  const ldif =
    [
      entry([`dn: ${LAB_BASE_DN}`, 'objectClass: dcObject', 'objectClass: organization', 'o: pgherd lab', 'dc: lab']),
      ...['people', 'groups', 'services'].map((ou) =>
        entry([`dn: ou=${ou},${LAB_BASE_DN}`, 'objectClass: organizationalUnit', `ou: ${ou}`]),
      ),
      entry([
        `dn: ${bindDn}`,
        'objectClass: organizationalRole',
        'objectClass: simpleSecurityObject',
        'cn: pgherd',
        `userPassword: ${ssha(bindPassword)}`,
      ]),
      ...users.map((u, i) =>
        entry([
          `dn: ${u.dn}`,
          'objectClass: inetOrgPerson',
          `uid: ${u.username}`,
          `cn: ${LAB_PEOPLE[i]!.name}`,
          `sn: ${LAB_PEOPLE[i]!.name.split(' ')[1]!}`,
          `mail: ${u.username}@lab.internal`,
          `userPassword: ${ssha(u.password)}`,
        ]),
      ),
      ...LAB_GROUPS.map((g) =>
        entry([
          `dn: ${groups[g]!}`,
          'objectClass: groupOfNames',
          `cn: ${g}`,
          ...users.filter((u) => u.groups.includes(groups[g]!)).map((u) => `member: ${u.dn}`),
        ]),
      ),
    ].join('\n\n') + '\n';
  const ldifFile = path.join(home, 'data.ldif');
  writeFileSync(ldifFile, ldif);
  for (const f of [conf, ldifFile]) chownSync(f, id.uid, id.gid);
  await run(id, ['/usr/sbin/slapadd', '-q', '-f', conf, '-l', ldifFile]);
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${tlsPort}`;
  const log = path.join(dir, 'log', 'slapd.log');
  const out = openSync(log, 'a');
  // -d keeps it in the foreground (its PID is the daemon's); level 0: no debug output.
  const [cmd, ...args] = asLabUser(id, ['/usr/sbin/slapd', '-d', '0', '-f', conf, '-h', `${url}/ ${ldapsUrl}/`]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? -1;
  });
  await waitFor(
    `slapd on ${url}`,
    async () => {
      if (exited !== null) throw new Error(`slapd exited (${exited}): ${readFileSync(log, 'utf8').trim().slice(-2000)}`);
      return (await listening('127.0.0.1', port)) && (await listening('127.0.0.1', tlsPort)) ? true : undefined;
    },
    15_000,
  );
  const configFile = path.join(dir, 'ldap.json');
  writeFileSync(
    configFile,
    JSON.stringify({ urls: [url], startTls: true, caFile: tls.ca, bindDn, bindPassword, userBase, groupBase }, null, 2),
    { mode: 0o600 },
  );
  const adminPasswordFile = path.join(dir, 'ldap-admin.secret');
  writeFileSync(adminPasswordFile, rootPassword, { mode: 0o600 });
  chmodSync(home, 0o755);
  return {
    pid: child.pid!,
    ldap: {
      url,
      ldapsUrl,
      caFile: tls.ca,
      baseDn: LAB_BASE_DN,
      userBase,
      groupBase,
      bindDn,
      bindPassword,
      configFile,
      adminDn: `cn=admin,${LAB_BASE_DN}`,
      adminPasswordFile,
      users,
      groups,
    },
  };
}
