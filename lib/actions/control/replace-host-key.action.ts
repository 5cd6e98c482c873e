// Replace the pinned SSH host key, after a legitimate change (a reinstalled host, a rotated key): the
// admin types the new key's fingerprint, read on the host itself; pgherd connects expecting exactly that
// key (a fresh connection, never one made under the old key), runs `true` and nothing else, and pins it
// to the server in place of the old one only if the host presented it. A host presenting any other key
// changes nothing. Audited as server.host_key with the old and new fingerprints.
import { and, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { servers } from '@/db/schema';
import { writeAudit } from '@/lib/engine/write-audit';
import { defineAction } from '@/lib/engine/define-action';
import { refuse } from '@/lib/fleet/refusal';
import { asks } from '@/lib/actions/drivers';

/** What fingerprint() gives and `ssh-keygen -lf` prints: SHA256 and the unpadded base64 of the key's hash. */
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

export const replaceHostKeyParams = z
  .object({
    fingerprint: z
      .string()
      .trim()
      .regex(
        FINGERPRINT,
        'a SHA256 fingerprint as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it on the host (SHA256: and 43 characters)',
      )
      .optional(),
  })
  .strict();

export const replaceHostKeyAction = defineAction({
  name: 'replace-host-key',
  control: asks('shell'),
  label: 'Replace the pinned SSH host key',
  // Deciding which key a host is trusted by is an admin's act, and typed: a wrong key is a way in.
  permission: 'admin',
  pinsHostKey: true,
  dangerous: true,
  params: {
    schema: replaceHostKeyParams,
    fields: [
      {
        name: 'fingerprint',
        label: "The host's new key",
        kind: 'text',
        emptyLabel: 'SHA256:…',
        help: 'Read it on the host itself, not from the connection: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub',
      },
    ],
  },
  plan: (t, { params }) => {
    const fp = params.fingerprint;
    if (!fp) return refuse('params', "type the fingerprint of the host's new key above (read on the host), then update the plan");
    if (fp === t.ssh.hostKeyFingerprint) return refuse('host-key', `${fp} is already the key pinned to ${t.hostname}`);
    return {
      steps: [
        {
          name: 'connect expecting the new key and run true',
          does: {
            kind: 'ssh.expect-host-key',
            server: t.serverId,
            ssh: { host: t.ssh.host, port: t.ssh.port, username: t.ssh.username },
            fingerprint: fp,
          },
          says: `connect to ${t.ssh.username}@${t.ssh.host}:${t.ssh.port} expecting host key ${fp}, and run \`true\` (nothing else)`,
          timeoutMs: 30_000,
          run: async (x) => {
            x.note({ command: `true (expecting host key ${fp})` });
            // A pooled connection is only reused for the key it was verified with: this one is new.
            const r = await x.deps.ssh.exec({ ...t.ssh, hostKeyFingerprint: fp }, ['true'], { timeoutMs: 15_000, readOnly: true });
            if (r.code !== 0) throw new Error(`${t.ssh.host}: \`true\` exited ${r.code ?? 'by a signal'}`);
            x.note({ exitCode: r.code, stdout: `${t.hostname} presented ${fp}` });
          },
        },
        {
          name: 'pin the new key',
          does: { kind: 'ssh.pin-host-key', server: t.serverId, fingerprint: fp, replaces: t.ssh.hostKeyFingerprint },
          says: `pin ${fp} to ${t.hostname} in place of ${t.ssh.hostKeyFingerprint ?? 'no key'}, only if the host presented it`,
          run: async (x) => {
            // Only over the key the plan was made with: a change since then (another admin) stops here.
            const changed = await x.deps.db
              .update(servers)
              .set({ sshHostKeyFingerprint: fp })
              .where(
                and(eq(servers.id, t.serverId), sql`${servers.sshHostKeyFingerprint} IS NOT DISTINCT FROM ${t.ssh.hostKeyFingerprint}`),
              )
              .returning({ id: servers.id });
            if (!changed.length) {
              const [now] = await x.deps.db.select({ fp: servers.sshHostKeyFingerprint }).from(servers).where(eq(servers.id, t.serverId));
              // Another instance of the same server, ticked in the same operation, pinned it first.
              if (now?.fp === fp) return void x.note({ stdout: `${t.hostname}: ${fp} is pinned already` });
              throw new Error(
                `${t.hostname}'s pinned key changed since this operation was planned (now ${now?.fp ?? 'none'}); nothing was pinned`,
              );
            }
            await writeAudit(x.deps.db, {
              user: x.deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
              action: 'server.host_key',
              objectType: 'servers',
              objectId: String(t.serverId),
              objectLabel: `${t.hostname}${x.deps.operation ? ` (operation #${x.deps.operation.id})` : ''}`,
              environmentId: t.serverEnvironmentId,
              changes: { sshHostKeyFingerprint: [t.ssh.hostKeyFingerprint, fp] },
            });
            const text = `${t.hostname}: host key ${fp} pinned (was ${t.ssh.hostKeyFingerprint ?? 'none'})`;
            x.note({ stdout: text });
            x.deps.outcome?.(text);
          },
        },
      ],
      warnings: [
        `from now on ${t.hostname} is trusted by ${fp} only${t.ssh.hostKeyFingerprint ? `; ${t.ssh.hostKeyFingerprint} no longer is` : ''}`,
      ],
    };
  },
});
