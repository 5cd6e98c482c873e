// The connection strings a replica's host reads to reach its upstream: primary_conninfo (remaster,
// switchover, failover, a new replica), pg_rewind's --source-server and pg_basebackup's -d. They keep
// pgherd's rule for strings a host's libpq reads where the upstream's environment verifies TLS: the
// server's certificate is checked for the address against the environment's CA (verify-full, the CA
// in a file on that host). pgherd writes no password into them: the replication user authenticates
// as the host is set up to (a client certificate, ~/.pgpass, pg_hba), which pgherd neither sees nor
// weakens. Without a CA for the environment the string says nothing of TLS (the host's defaults).
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import type { ActionDeps } from '@/lib/engine/define-action';
import type { StepContext } from '@/lib/engine/pipeline';
import { accessFor } from '@/lib/fleet/pg-access';
import { execNotedOk } from './exec-noted';
import { caFileName, caPemOf, WRITE_CA_SH } from './host-ca';
import { conninfo } from '@/lib/adapters/libpq/conninfo';

export interface Upstream {
  host: string;
  port: number;
  /** The environment of the upstream's server: whose CA verifies it. */
  serverEnvironment: string | null;
}

/** The string, given where the CA's file is on the host (null: the environment verifies no TLS). */
export function replicationConninfoWith(up: Upstream, fields: Record<string, string | number>, caPath: string | null): string {
  const words: Record<string, string | number> = { host: up.host, port: up.port, ...fields };
  if (caPath !== null) Object.assign(words, { sslmode: 'verify-full', sslrootcert: caPath });
  return conninfo(words);
}

/**
 * Puts the upstream environment's CA in a file of the SSH user's on `host` (~/.pgherd/ca-<digest>.crt:
 * the user that runs the cluster, pg_rewind and pg_basebackup), when there is one; returns its path.
 */
export async function caFileOnHost(deps: ActionDeps, host: { ssh: SshTarget }, ctx: StepContext, up: Upstream): Promise<string | null> {
  const ca = caPemOf(accessFor(up.serverEnvironment).postgres.tls);
  if (ca === null) return null;
  const script = `set -e; ${WRITE_CA_SH}; echo "$f"`;
  const r = await execNotedOk(deps, host, ctx, ['sh', '-c', script, 'pgherd-ca', caFileName(ca)], 15_000, { stdin: ca });
  const path = r.stdout.trim().split('\n').pop() ?? '';
  if (!path.startsWith('/')) throw new Error(`the CA's file on the host: its path was not said (${r.stdout.trim() || 'nothing'})`);
  return path;
}

/** The whole string for `up`, read on `host`, with the CA's file put there first when the environment has one. */
export async function replicationConninfo(
  deps: ActionDeps,
  host: { ssh: SshTarget },
  ctx: StepContext,
  up: Upstream,
  fields: Record<string, string | number>,
): Promise<string> {
  return replicationConninfoWith(up, fields, await caFileOnHost(deps, host, ctx, up));
}
