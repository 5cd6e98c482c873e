// The SSH pool the engine acts through: pgherd's key for each server's environment, the host key seen
// on first contact pinned to the server by its id (never by an address another server may share or
// take over), and every connection checked against the host bindings before any command runs.
import { and, eq, isNull } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { servers } from '@/db/schema';
import type { SshKeys } from '@/lib/adapters/ssh/keys';
import { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { checkHostBinding } from '@/lib/fleet/host-binding';

type Log = (event: string, fields: Record<string, unknown>) => void;

export function fleetSsh(db: Queries, log: Log, keys?: SshKeys | (() => SshKeys)): SshPool {
  return new SshPool({
    ...(keys ? { keys } : {}),
    log: (e, f) => {
      if (e !== 'ssh.exec.start' && e !== 'ssh.exec.end') log(e, f);
    },
    onConnected: async (t, fp) => {
      if (t.serverId === undefined) return;
      try {
        await checkHostBinding(db, t.serverId, t.host, fp);
      } catch (err) {
        log('ssh.host.refused', { host: t.host, serverId: t.serverId, fingerprint: fp, error: (err as Error).message });
        throw err;
      }
    },
    onFirstContact: async (t, fp) => {
      if (t.serverId === undefined) return void log('ssh.hostkey.not_pinned', { host: t.host, fingerprint: fp, reason: 'no server id' });
      await db
        .update(servers)
        .set({ sshHostKeyFingerprint: fp })
        .where(and(eq(servers.id, t.serverId), isNull(servers.sshHostKeyFingerprint)));
      log('ssh.hostkey.pinned', { host: t.host, serverId: t.serverId, fingerprint: fp });
    },
  });
}
