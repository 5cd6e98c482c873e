// PgBouncer's admin console (the "pgbouncer" database): PAUSE, RESUME, RELOAD, SHOW DATABASES.
// Simple-query protocol only, which is what node-postgres uses for a query without parameters.
import type { Client } from 'pg';
import { ENTRY_NAME } from './ini';

/** Opens a (not yet connected) client to one PgBouncer's admin console with these timeouts; the
 *  caller decides the address, the user, the password and TLS. */
export type AdminConnector = (timeouts: { connectionTimeoutMillis: number; query_timeout: number }) => Client;

export type AdminCommand = 'RELOAD' | `PAUSE ${string}` | `RESUME ${string}` | 'SHOW DATABASES';

/** Runs the commands in order on one admin connection; returns the last one's rows. */
export async function poolerAdmin(connect: AdminConnector, commands: AdminCommand[], timeoutMs = 5000): Promise<Record<string, unknown>[]> {
  for (const c of commands) {
    const name = /^(PAUSE|RESUME) (.+)$/.exec(c)?.[2];
    if (name !== undefined && !ENTRY_NAME.test(name)) throw new Error(`not a PgBouncer database name: ${JSON.stringify(name)}`);
  }
  const c = connect({ connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  c.on('error', () => {}); // connect() or the query rejects with it
  await c.connect();
  try {
    let rows: Record<string, unknown>[] = [];
    for (const cmd of commands) rows = (await c.query<Record<string, unknown>>(cmd)).rows;
    return rows;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Where PgBouncer itself says each entry points now (after a RELOAD, this is what it will use). */
export async function showDatabases(connect: AdminConnector): Promise<Map<string, { host: string; port: number; paused: boolean }>> {
  const rows = await poolerAdmin(connect, ['SHOW DATABASES']);
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  return new Map(rows.map((r) => [text(r.name), { host: text(r.host), port: Number(r.port), paused: Number(r.paused) === 1 }]));
}
