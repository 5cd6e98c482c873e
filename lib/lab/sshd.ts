// An OpenSSH server run by the lab's unprivileged user, listening on every lab server's address,
// with pgherd's own key authorized: the lab's servers are reached over real SSH.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { asLabUser, mkdirOwned, run, selfIdentity, waitFor, type Identity } from './proc';

export interface LabSsh {
  port: number;
  user: string;
  /** pgherd's private key (readable by the user running pgherd, not by the lab user). */
  privateKeyPath: string;
  publicKey: string;
  /** The lab sshd's host key fingerprint, OpenSSH style (SHA256:...). */
  hostKeyFingerprint: string;
  /** Where the daemons listen, one each (process `sshd-<index>`). */
  addresses: string[];
}

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

export async function startSshd(id: Identity, dir: string, addresses: string[], port: number): Promise<{ pids: number[]; ssh: LabSsh }> {
  const home = path.join(dir, 'ssh');
  mkdirOwned(id, home, 0o755);
  const hostKey = path.join(home, 'ssh_host_ed25519_key');
  await run(id, ['/usr/bin/ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'pgherd-lab-host', '-f', hostKey]);
  // pgherd's client key belongs to whoever runs pgherd (root here), in a directory of its own.
  const self = selfIdentity();
  const clientDir = path.join(dir, 'pgherd-key');
  mkdirOwned(self, clientDir, 0o700);
  const clientKey = path.join(clientDir, 'id_ed25519');
  await run(self, ['/usr/bin/ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'pgherd', '-f', clientKey]);
  const publicKey = readFileSync(`${clientKey}.pub`, 'utf8').trim();
  const authorized = path.join(home, 'authorized_keys');
  writeFileSync(authorized, `${publicKey}\n`, { mode: 0o600 });
  chownSync(authorized, id.uid, id.gid);
  // One daemon per server address, as on real hosts: each has its own MaxStartups budget (and sshd
  // could not listen on more than 16 addresses anyway). They share one host key.
  const pids: number[] = [];
  for (let i = 0; i < addresses.length; i++) {
    const config = path.join(home, `sshd_config.${i}`);
    writeFileSync(
      config,
      [
        `ListenAddress ${addresses[i]!}:${port}`,
        `HostKey ${hostKey}`,
        `PidFile ${path.join(home, `sshd.${i}.pid`)}`,
        `AuthorizedKeysFile ${authorized}`,
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
    pids.push(await spawnSshd(id, dir, i, addresses[i]!, port));
  }
  const fp = (await run(self, ['/usr/bin/ssh-keygen', '-l', '-E', 'sha256', '-f', `${hostKey}.pub`])).stdout.split(' ')[1];
  return { pids, ssh: { port, user: id.user, privateKeyPath: clientKey, publicKey, hostKeyFingerprint: fp!, addresses } };
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
