// One physical host, one environment. pgherd's credentials are shared wide (an SSH key, a Postgres
// password per environment), so whoever could point a row of one environment at another's host could
// aim those credentials there. An address (the name resolved) and a host key are each bound to the
// servers of at most one environment: checked when a server is saved, and again on every SSH
// connection, after the host proved which key it holds and before any command runs.
import { isDatabaseUnavailable } from '@/db/client';
import { lookup } from 'node:dns/promises';
import { sql } from 'drizzle-orm';
import type { Queries } from '@/db/client';

/** The addresses a host name or address stands for: itself, and what it resolves to (nothing more when it does not resolve in time). */
export async function addressesOf(host: string, timeoutMs = 3000): Promise<string[]> {
  const own = host
    .trim()
    .toLowerCase()
    .replace(/\.$/, '')
    .replace(/^\[(.*)\]$/, '$1');
  let timer: NodeJS.Timeout | undefined;
  const resolved = await Promise.race([
    lookup(own, { all: true, verbatim: true }).then(
      (a) => a.map((x) => x.address.toLowerCase()),
      () => [] as string[],
    ),
    new Promise<string[]>((r) => (timer = setTimeout(() => r([]), timeoutMs))),
  ]).finally(() => clearTimeout(timer));
  return withMappedForms([own, ...resolved]);
}

/** Each IPv4 address also as IPv6 maps it (::ffff:a.b.c.d), and each mapped one as plain IPv4: one host either way. */
export function withMappedForms(addresses: string[]): string[] {
  const out = new Set<string>();
  for (const a of addresses) {
    out.add(a);
    const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
    if (mapped?.[1]) out.add(mapped[1]);
    else if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(a)) out.add(`::ffff:${a}`);
  }
  return [...out];
}

interface Other extends Record<string, unknown> {
  hostname: string;
  environment: string;
}

const named = (o: Other[]) => o.map((x) => `${x.hostname} (${x.environment})`).join(', ');

/**
 * Servers of environments other than `environmentId` that are reached at one of `addresses` (their
 * address, or their host name where they have none) or are known by one of them: null when none.
 */
export async function addressTakenElsewhere(
  db: Queries,
  environmentId: number,
  addresses: string[],
  exceptServerId?: number,
): Promise<string | null> {
  if (!addresses.length) return null;
  const list = sql.join(
    addresses.map((a) => sql`${a}`),
    sql`, `,
  );
  const o = (
    await db.execute<Other>(sql`
    SELECT s.hostname, e.name AS environment FROM servers s JOIN environments e ON e.id = s.environment_id
    WHERE s.environment_id <> ${environmentId} AND s.id IS DISTINCT FROM ${exceptServerId ?? null}::int
      AND (lower(rtrim(coalesce(nullif(s.address, ''), s.hostname), '.')) IN (${list}) OR lower(rtrim(s.hostname, '.')) IN (${list}))
    ORDER BY s.hostname LIMIT 3`)
  ).rows;
  return o.length ? `${addresses[0] ?? ''} is the address of ${named(o)}: a host belongs to one environment` : null;
}

/** Servers of other environments than server `serverId`'s that have `fingerprint` pinned: null when none. */
export async function hostKeyTakenElsewhere(db: Queries, serverId: number, fingerprint: string): Promise<string | null> {
  const o = (
    await db.execute<Other>(sql`
    SELECT s.hostname, e.name AS environment FROM servers s JOIN environments e ON e.id = s.environment_id
    WHERE s.ssh_host_key_fingerprint = ${fingerprint}
      AND s.environment_id <> (SELECT environment_id FROM servers WHERE id = ${serverId})
    ORDER BY s.hostname LIMIT 3`)
  ).rows;
  return o.length ? `host key ${fingerprint} is pinned to ${named(o)}: a host belongs to one environment` : null;
}

/** The host a connection reached may serve server `serverId`'s environment: throws HostBindingError otherwise. */
export async function checkHostBinding(db: Queries, serverId: number, host: string, fingerprint: string): Promise<void> {
  // Asked when a step opens an SSH connection: pgherd's database failing over meanwhile (30 s at most,
  // docs/deployment.md) is waited out, as the step's lease waits it out, rather than failing the step.
  await rideOverFailover(async () => {
    const [env] = (await db.execute<{ id: number }>(sql`SELECT environment_id AS id FROM servers WHERE id = ${serverId}`)).rows;
    if (!env) throw new HostBindingError(`server ${serverId} is not in the inventory`);
    const problem =
      (await hostKeyTakenElsewhere(db, serverId, fingerprint)) ??
      (await addressTakenElsewhere(db, env.id, await addressesOf(host), serverId));
    if (problem) throw new HostBindingError(problem);
  });
}

/** Runs `fn` again while pgherd's database is unavailable (a failover), for `ms` at most. */
async function rideOverFailover<T>(fn: () => Promise<T>, ms = 40_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export class HostBindingError extends Error {
  constructor(problem: string) {
    super(`refused to use this host: ${problem}; nothing was run there`);
    this.name = 'HostBindingError';
  }
}
