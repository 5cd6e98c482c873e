// The lab's backup hosts and scratch servers. Each environment gets a backup host (its own loopback
// address, reached over the lab's SSH like any server) that holds the environment's posix pgBackRest
// repositories, and scratch servers (empty hosts of the environment) that restores and drills lay
// new herds out on. pgherd configures pgBackRest itself (the Configure backups action): the lab only
// provides the hosts and the SSH trust between them that pgBackRest's own protocol needs.
import { appendFileSync, chownSync, existsSync, linkSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdirOwned, run, type Identity } from './proc';
import { shortEnv } from './fleet';
import { issueCertificate, type LabCa, type LabCertificate } from './tls';

export interface LabBackupHost {
  environment: string;
  /** Its host name (in the lab's zone and in pgherd's inventory). */
  server: string;
  address: string;
  site: string;
  /** Where the environment's repositories live on it (one pgBackRest repository, a stanza per herd). */
  repoPath: string;
}

export interface LabScratchServer {
  environment: string;
  server: string;
  address: string;
  site: string;
  /** Where a restored herd's data directories go on it (empty at the lab's start). */
  dataRoot: string;
  /** Its TLS certificate, from the lab's CA, for a Postgres restored onto it (the restore's sslCertFile, sslKeyFile). */
  tls?: LabCertificate;
}

/**
 * An address an EC2 instance launched in the environment's subnet gets (the lab's AWS front gives it as the
 * instance's private address): an sshd answers there with the environment's host key, as a new host of the
 * environment's image would. Not in pgherd's inventory until something launches it.
 */
export interface LabLaunchSlot {
  environment: string;
  address: string;
}

/** What the environment's image holds for a Postgres on a launched instance: a folder for data, and a certificate naming every launch address. */
export interface LabLaunchImage {
  environment: string;
  dataRoot: string;
  tls?: LabCertificate;
}

export interface LabBackup {
  hosts: LabBackupHost[];
  scratch: LabScratchServer[];
  /** Addresses for instances launched in EC2 (an sshd each), and each environment's image. */
  launch: LabLaunchSlot[];
  images: LabLaunchImage[];
}

/** Scratch servers per environment in a lab. */
export const SCRATCH_PER_ENVIRONMENT = 2;

/**
 * The lab's backup hosts (<subnet>.250 + k, one per environment) and scratch servers (<subnet>.230 +
 * n): addresses above the members' and below the poolers' (241+), so one lab's subnet holds them all.
 */
export function planBackupHosts(dir: string, environments: string[], sites: string[], subnet = '127.0.1'): LabBackup {
  if (environments.length > 5) throw new Error('the lab has backup hosts for at most 5 environments');
  const hosts = environments.map((environment, k) => ({
    environment,
    server: `backup-${shortEnv(environment)}.lab.internal`,
    address: `${subnet}.${String(250 + k)}`,
    site: sites[0] ?? 'dc-east',
    repoPath: path.join(dir, 'backup', shortEnv(environment), 'repo'),
  }));
  const scratch = environments.flatMap((environment, k) =>
    Array.from({ length: SCRATCH_PER_ENVIRONMENT }, (_, n) => {
      const server = `scratch-${shortEnv(environment)}-${String(n + 1)}.lab.internal`;
      return {
        environment,
        server,
        address: `${subnet}.${String(230 + k * SCRATCH_PER_ENVIRONMENT + n)}`,
        site: sites[n % Math.max(1, sites.length)] ?? 'dc-east',
        dataRoot: path.join(dir, 'scratch', server.split('.')[0]!),
      };
    }),
  );
  // The rest of the scratch range (<subnet>.230-239), shared out: at most 4 an environment (a herd grown
  // by a replica, another, and a replacement of one of them).
  const free = 10 - scratch.length;
  const each = Math.min(4, Math.floor(free / Math.max(1, environments.length)));
  const launch = environments.flatMap((environment, k) =>
    Array.from({ length: each }, (_, n) => ({ environment, address: `${subnet}.${String(239 - k * each - n)}` })),
  );
  const images = environments.map((environment) => ({ environment, dataRoot: path.join(dir, 'launched', shortEnv(environment)) }));
  return { hosts, scratch, launch, images };
}

/** Creates the repositories' and scratch servers' directories, owned by the lab user, and the scratch servers' certificates. */
export async function prepareBackupHosts(id: Identity, b: LabBackup, ca: LabCa | null): Promise<void> {
  for (const h of b.hosts) mkdirOwned(id, h.repoPath, 0o750);
  for (const img of b.images) {
    mkdirOwned(id, img.dataRoot, 0o750);
    const addresses = b.launch.filter((l) => l.environment === img.environment).map((l) => l.address);
    if (ca && addresses.length)
      img.tls = await issueCertificate(id, ca, `${img.dataRoot}-tls`, 'server', {
        ips: addresses,
        names: [`launched-${shortEnv(img.environment)}.lab.internal`],
      });
  }
  for (const s of b.scratch) {
    mkdirOwned(id, s.dataRoot, 0o750);
    if (ca)
      s.tls = await issueCertificate(id, ca, path.join(path.dirname(s.dataRoot), `${path.basename(s.dataRoot)}-tls`), 'server', {
        ips: [s.address],
        names: [s.server],
      });
  }
}

/**
 * The SSH trust pgBackRest's own protocol needs between an environment's hosts (a database host pushes
 * WAL to its backup host; the backup host reads the database hosts when it backs up): the lab user's key
 * (~/.ssh/id_ed25519, made once, shared by every lab on the machine), authorized on every lab host.
 *
 * Lab only: the lab's hosts share one user and one home, and a lab's host keys change with every start
 * on addresses another lab used before, so its ~/.ssh/config does not check host keys between 127.*
 * addresses. A real fleet gives its postgres users keys and known_hosts by its own configuration
 * management; pgherd's own SSH (ssh2, pinned keys) is unaffected.
 */
export async function labInternalSsh(id: Identity, authorizedFiles: string[]): Promise<void> {
  const home = (await run(id, ['/bin/sh', '-c', 'printf %s "$HOME"'])).stdout.trim() || os.homedir();
  const dotSsh = path.join(home, '.ssh');
  mkdirOwned(id, dotSsh, 0o700);
  const key = path.join(dotSsh, 'id_ed25519');
  if (!existsSync(key)) {
    // Made aside and linked into place: two labs starting at once end with one key, the first's.
    const aside = mkdtempSync(path.join(dotSsh, 'new-'));
    chownSync(aside, id.uid, id.gid);
    await run(id, ['/usr/bin/ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'pgherd-lab-internal', '-f', path.join(aside, 'k')]);
    // Only the lab whose private key was linked links its public half: the two halves are one pair.
    let ours = true;
    try {
      linkSync(path.join(aside, 'k'), key);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      ours = false;
    }
    if (ours) linkSync(path.join(aside, 'k.pub'), `${key}.pub`);
    rmSync(aside, { recursive: true, force: true });
  }
  // Another lab linked the private key a moment ago: its public half follows.
  for (let i = 0; !existsSync(`${key}.pub`); i++) {
    if (i >= 100) throw new Error(`${key}.pub did not appear beside ${key}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const config = path.join(dotSsh, 'config');
  const wanted = 'Host 127.*\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n';
  if (!existsSync(config) || !readFileSync(config, 'utf8').includes('Host 127.*')) {
    appendFileSync(config, wanted, { mode: 0o600 });
    chownSync(config, id.uid, id.gid);
  }
  const pub = readFileSync(`${key}.pub`, 'utf8').trim();
  for (const f of authorizedFiles) if (!readFileSync(f, 'utf8').includes(pub)) appendFileSync(f, `${pub}\n`);
}

/** The lab's zone entries for its backup hosts and scratch servers. */
export const backupZoneHosts = (b: LabBackup | undefined) => [
  ...(b?.hosts ?? []).map((h) => ({ name: h.server, address: h.address })),
  ...(b?.scratch ?? []).map((s) => ({ name: s.server, address: s.address })),
];
