// One connection of pgherd's role to a database of an endpoint that may not be in the inventory yet (a
// major upgrade's green side), and what the upgrade and its owed cleanups do over it.
import type pg from 'pg';
import { withInstance } from '@/lib/fleet/pg-access';

/** Where the upgrade's own statements go: an instance, or green before it is in the inventory. */
export interface Endpoint {
  host: string;
  port: number;
  serverEnvironment: string | null;
}

/**
 * One connection of pgherd's role for `fn`, to `database` on `e`. A side made read-only for a switch
 * still takes the upgrade's own statements (its marker, its subscriptions).
 */
export function onDb<T>(e: Endpoint, database: string, fn: (c: pg.Client) => Promise<T>, timeoutMs = 30_000): Promise<T> {
  return withInstance(
    e,
    {
      database,
      connectionTimeoutMillis: 5000,
      statement_timeout: timeoutMs,
      application_name: 'pgherd-upgrade',
      options: '-c default_transaction_read_only=off',
    },
    fn,
  );
}

/**
 * Makes `e` refuse (`on`) or take again (`off`) the writes of every client that does not ask otherwise
 * (`default_transaction_read_only`, in postgresql.auto.conf, reloaded); replication applies either way.
 */
export async function setReadOnly(e: Endpoint, on: boolean): Promise<void> {
  await onDb(e, 'postgres', async (c) => {
    await c.query(on ? 'ALTER SYSTEM SET default_transaction_read_only = on' : 'ALTER SYSTEM RESET default_transaction_read_only');
    await c.query('SELECT pg_reload_conf()');
  });
}
