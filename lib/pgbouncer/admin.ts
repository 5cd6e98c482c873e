// PgBouncer's admin console (the "pgbouncer" database): PAUSE, RESUME, RELOAD, SHOW DATABASES.
// Simple-query protocol only, which is what node-postgres uses for a query without parameters.
import { poolerClient } from '@/lib/ops/pg-access';
import { ENTRY_NAME } from './ini';

export interface PoolerEndpoint {
  host: string;
  port: number;
  adminUser: string;
  /** Its server's environment: whose password and TLS settings are used (PGHERD_PG_CONFIG). */
  serverEnvironment: string | null;
}

export type AdminCommand = 'RELOAD' | `PAUSE ${string}` | `RESUME ${string}` | 'SHOW DATABASES';

/** Runs the commands in order on one admin connection; returns the last one's rows. */
export async function poolerAdmin(p: PoolerEndpoint, commands: AdminCommand[], timeoutMs = 5000): Promise<Record<string, unknown>[]> {
  for (const c of commands) {
    const name = /^(PAUSE|RESUME) (.+)$/.exec(c)?.[2];
    if (name !== undefined && !ENTRY_NAME.test(name)) throw new Error(`not a PgBouncer database name: ${JSON.stringify(name)}`);
  }
  const c = poolerClient(p, { connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  c.on('error', () => {}); // connect() or the query rejects with it
  await c.connect();
  try {
    let rows: Record<string, unknown>[] = [];
    for (const cmd of commands) rows = (await c.query(cmd)).rows;
    return rows;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Where PgBouncer itself says each entry points now (after a RELOAD, this is what it will use). */
export async function showDatabases(p: PoolerEndpoint): Promise<Map<string, { host: string; port: number; paused: boolean }>> {
  const rows = await poolerAdmin(p, ['SHOW DATABASES']);
  return new Map(rows.map((r) => [String(r.name), { host: String(r.host ?? ''), port: Number(r.port), paused: Number(r.paused) === 1 }]));
}
