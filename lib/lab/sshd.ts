// OpenSSH servers run by the lab's unprivileged user, one on every lab server's address: the lab's
// servers are reached over real SSH. As a fleet should be, each environment's hosts have a host key of
// their own and authorize pgherd's key for that environment only (PGHERD_SSH_KEYS): a staging key is
// refused by production's hosts.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { asLabUser, mkdirOwned, run, selfIdentity, type Identity } from './proc';
import { waitFor } from '@/lib/testing/wait';

export interface LabSshKeys {
  /** pgherd's private key for the environment (readable by the user running pgherd, not by the lab user). */
  privateKeyPath: string;
  publicKey: string;
  /** The environment's hosts' key fingerprint, OpenSSH style (SHA256:...). */
  hostKeyFingerprint: string;
  /** The file its hosts' sshd reads the keys it authorizes from (PGHERD_SSH_AUTHORIZED_KEYS). */
  authorizedKeys?: string;
}

export interface LabSsh extends LabSshKeys {
  port: number;
  user: string;
  /** Each environment's keys; the top-level ones are the first environment's (production's, in the demo): PGHERD_SSH_KEY. */
  environments: Record<string, LabSshKeys>;
  /** Where the daemons listen, one each (process `sshd-<index>`). */
  addresses: string[];
}

/** The keys of an environment's hosts in the lab (the first environment's where it has none of its own). */
export const labSshFor = (ssh: LabSsh, environment: string): LabSshKeys => ssh.environments[environment] ?? ssh;

function banner(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('SSH-2.0-'));
    });
  });
}

export async function startSshd(
  id: Identity,
  dir: string,
  hosts: { address: string; environment: string }[],
  port: number,
): Promise<{ pids: number[]; ssh: LabSsh; authorizedFiles: string[] }> {
  const home = path.join(dir, 'ssh');
  mkdirOwned(id, home, 0o755);
  // pgherd's client keys belong to whoever runs pgherd (root here), in a directory of its own.
  const self = selfIdentity();
  const clientDir = path.join(dir, 'pgherd-key');
  mkdirOwned(self, clientDir, 0o700);
  const environments: Record<string, LabSshKeys & { hostKey: string; authorized: string }> = {};
  for (const env of [...new Set(hosts.map((h) => h.environment))]) {
    const tag = env.replace(/[^a-z0-9-]/gi, '_');
    const hostKey = path.join(home, `ssh_host_ed25519_key.${tag}`);
    await run(id, ['/usr/bin/ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `pgherd-lab-host-${tag}`, '-f', hostKey]);
    // The first environment's key is also plain id_ed25519: PGHERD_SSH_KEY, the default.
    const clientKey = path.join(clientDir, Object.keys(environments).length ? `id_ed25519.${tag}` : 'id_ed25519');
    await run(self, ['/usr/bin/ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `pgherd-${tag}`, '-f', clientKey]);
    const publicKey = readFileSync(`${clientKey}.pub`, 'utf8').trim();
    const authorized = path.join(home, `authorized_keys.${tag}`);
    writeFileSync(authorized, `${publicKey}\n`, { mode: 0o600 });
    chownSync(authorized, id.uid, id.gid);
    const fp = (await run(self, ['/usr/bin/ssh-keygen', '-l', '-E', 'sha256', '-f', `${hostKey}.pub`])).stdout.split(' ')[1]!;
    environments[env] = { privateKeyPath: clientKey, publicKey, hostKeyFingerprint: fp, hostKey, authorized };
  }
  // One daemon per server address, as on real hosts: each has its own MaxStartups budget (and sshd
  // could not listen on more than 16 addresses anyway).
  const pids: number[] = [];
  for (let i = 0; i < hosts.length; i++) {
    const { address, environment } = hosts[i]!;
    const keys = environments[environment]!;
    const config = path.join(home, `sshd_config.${i}`);
    writeFileSync(
      config,
      [
        `ListenAddress ${address}:${port}`,
        `HostKey ${keys.hostKey}`,
        `PidFile ${path.join(home, `sshd.${i}.pid`)}`,
        `AuthorizedKeysFile ${keys.authorized}`,
        `AllowUsers ${id.user}`,
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        // Keys live under /tmp, whose sticky world-writable parent StrictModes refuses.
        'StrictModes no',
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
    chmodSync(config, 0o644);
    pids.push(await spawnSshd(id, dir, i, address, port));
  }
  const shown = Object.fromEntries(
    Object.entries(environments).map(([env, k]) => [
      env,
      { privateKeyPath: k.privateKeyPath, publicKey: k.publicKey, hostKeyFingerprint: k.hostKeyFingerprint, authorizedKeys: k.authorized },
    ]),
  );
  const first = Object.values(shown)[0]!;
  return {
    pids,
    ssh: { port, user: id.user, ...first, environments: shown, addresses: hosts.map((h) => h.address) },
    authorizedFiles: Object.values(environments).map((k) => k.authorized),
  };
}

/** Starts the daemon for the i-th address from its configuration file; resolves once it answers. */
export async function spawnSshd(id: Identity, dir: string, i: number, address: string, port: number): Promise<number> {
  const config = path.join(dir, 'ssh', `sshd_config.${i}`);
  const log = path.join(dir, `sshd.${i}.log`);
  const out = openSync(log, 'a');
  const [cmd, ...args] = asLabUser(id, ['/usr/sbin/sshd', '-D', '-e', '-f', config]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? -1;
  });
  await waitFor(
    `sshd on ${address}:${port}`,
    async () => {
      if (exited !== null) throw new Error(`sshd exited (${exited}): ${readFileSync(log, 'utf8').trim()}`);
      return (await banner(address, port)) ? true : undefined;
    },
    15_000,
  );
  return child.pid!;
}
