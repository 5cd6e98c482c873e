// A herd's PgBouncer as pgherd sees it: its admin console, reached with its server environment's
// credentials, and its entries in one line.
import { showDatabases, type AdminConnector } from '@/lib/adapters/pgbouncer/admin';
import type { PoolerRef } from './herd-ref';
import { poolerClient } from './pg-access';

/** Connects to a pooler's admin console with its server environment's credentials (PGHERD_PG_CONFIG). */
export const poolerConsole =
  (p: Parameters<typeof poolerClient>[0]): AdminConnector =>
  (timeouts) =>
    poolerClient(p, timeouts);

/** The entries as PgBouncer sees them, in one line (for a step's record). */
export async function describePooler(p: PoolerRef): Promise<string> {
  const dbs = await showDatabases(poolerConsole(p));
  return p.databases
    .map((d) => {
      const e = dbs.get(d);
      return e ? `${d} -> ${e.host}:${e.port}${e.paused ? ' (paused)' : ''}` : `${d}: not in SHOW DATABASES`;
    })
    .join(', ');
}
