// PgBouncer's admin console (the "pgbouncer" database): PAUSE, RESUME, RELOAD, SHOW DATABASES, SHOW CONFIG, SHOW USERS.
// Simple-query protocol only, which is what node-postgres uses for a query without parameters.
import type { Client } from 'pg';
import { ENTRY_NAME } from './ini';

/** Opens a (not yet connected) client to one PgBouncer's admin console with these timeouts; the
 *  caller decides the address, the user, the password and TLS. */
export type AdminConnector = (timeouts: { connectionTimeoutMillis: number; query_timeout: number }) => Client;

export type AdminCommand = 'RELOAD' | `PAUSE ${string}` | `RESUME ${string}` | 'SHOW DATABASES' | 'SHOW CONFIG' | 'SHOW USERS';

/** One admin connection for `fn`: each command it runs is checked (a database name PgBouncer can have) before it is sent. */
export async function withPoolerAdmin<T>(
  connect: AdminConnector,
  fn: (run: (cmd: AdminCommand) => Promise<Record<string, unknown>[]>) => Promise<T>,
  timeoutMs = 5000,
): Promise<T> {
  const c = connect({ connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  c.on('error', () => {}); // connect() or the query rejects with it
  await c.connect();
  try {
    return await fn(async (cmd) => {
      const name = /^(PAUSE|RESUME) (.+)$/.exec(cmd)?.[2];
      if (name !== undefined && !ENTRY_NAME.test(name)) throw new Error(`not a PgBouncer database name: ${JSON.stringify(name)}`);
      return (await c.query<Record<string, unknown>>(cmd)).rows;
    });
  } finally {
    await c.end().catch(() => {});
  }
}

/** Runs the commands in order on one admin connection; returns the last one's rows. */
export async function poolerAdmin(connect: AdminConnector, commands: AdminCommand[], timeoutMs = 5000): Promise<Record<string, unknown>[]> {
  for (const c of commands) {
    const name = /^(PAUSE|RESUME) (.+)$/.exec(c)?.[2];
    if (name !== undefined && !ENTRY_NAME.test(name)) throw new Error(`not a PgBouncer database name: ${JSON.stringify(name)}`);
  }
  return withPoolerAdmin(
    connect,
    async (run) => {
      let rows: Record<string, unknown>[] = [];
      for (const cmd of commands) rows = await run(cmd);
      return rows;
    },
    timeoutMs,
  );
}

/** SHOW DATABASES's rows by entry name: where each points, and whether it is paused. */
export function databasesOf(rows: Record<string, unknown>[]): Map<string, { host: string; port: number; paused: boolean }> {
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  return new Map(rows.map((r) => [text(r.name), { host: text(r.host), port: Number(r.port), paused: Number(r.paused) === 1 }]));
}

export async function showDatabases(connect: AdminConnector): Promise<Map<string, { host: string; port: number; paused: boolean }>> {
  return databasesOf(await poolerAdmin(connect, ['SHOW DATABASES']));
}

/** A setting as the pooler runs it now (SHOW CONFIG's value; '' when unset or unknown). */
export async function poolerSetting(connect: AdminConnector, key: string): Promise<string> {
  const rows = await poolerAdmin(connect, ['SHOW CONFIG']);
  const v = rows.find((r) => r.key === key)?.value;
  return typeof v === 'string' ? v : '';
}
