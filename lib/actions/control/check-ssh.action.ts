// Check SSH (pin the host key): the read-only first contact with a server pgherd has no host key for.
// It runs `true` and nothing else; the key the host presents is pinned to the server by its id (the
// worker's onFirstContact), and shown, for the admin to compare with the host's own. Every command that
// changes anything is refused on a host without a pinned key (lib/adapters/ssh), so this is how a new server
// becomes usable; a server whose key is pinned is checked against it.
import { eq } from 'drizzle-orm';
import { servers } from '@/db/schema';
import { defineAction } from '@/lib/engine/define-action';
import { asks } from '@/lib/actions/drivers';

export const checkSshAction = defineAction({
  name: 'check-ssh',
  control: asks('shell'),
  label: 'Check SSH (pin the host key)',
  // Trusting a host key is an admin's act.
  permission: 'admin',
  pinsHostKey: true,
  dangerous: false,
  plan: (t) => ({
    steps: [
      {
        name: 'connect and run true',
        does: {
          kind: 'ssh.check-host-key',
          server: t.serverId,
          ssh: { host: t.ssh.host, port: t.ssh.port, username: t.ssh.username },
          // The key it is checked against; none: the one presented is pinned.
          pinned: t.ssh.hostKeyFingerprint,
        },
        says: `connect to ${t.ssh.username}@${t.ssh.host}:${t.ssh.port} and run \`true\` (nothing else); ${
          t.ssh.hostKeyFingerprint
            ? `check that its host key is the pinned ${t.ssh.hostKeyFingerprint}`
            : `pin the host key it presents to ${t.hostname} (no key is pinned yet): compare it with the host's own, \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\``
        }`,
        timeoutMs: 30_000,
        run: async (x) => {
          x.note({ command: 'true' });
          const r = await x.deps.ssh.exec(t.ssh, ['true'], { timeoutMs: 15_000, readOnly: true });
          if (r.code !== 0) throw new Error(`${t.ssh.host}: \`true\` exited ${r.code ?? 'by a signal'}`);
          const [s] = await x.deps.db.select({ fp: servers.sshHostKeyFingerprint }).from(servers).where(eq(servers.id, t.serverId));
          const fp = s?.fp ?? 'not recorded';
          const text = t.ssh.hostKeyFingerprint ? `${t.hostname}: host key ${fp} (as pinned)` : `${t.hostname}: host key ${fp} pinned`;
          x.note({ exitCode: r.code, stdout: text });
          x.deps.outcome?.(text);
        },
      },
    ],
    warnings: t.ssh.hostKeyFingerprint ? [] : ['first contact: the key the host presents is trusted from now on'],
  }),
});
