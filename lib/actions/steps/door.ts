// The door of a side a major upgrade's switch fences. `default_transaction_read_only` is only a default:
// any client may say `BEGIN READ WRITE` (or SET it off) and commit on the old side after the switch,
// where its rows are lost to the new one. So the switch also refuses application clients at the door:
// every database that takes connections gets CONNECTION LIMIT 0, which superusers and background
// workers are not held to (pgherd's own statements, the subscriptions' apply workers on that side),
// and every session of a role that is not a superuser is ended, with any session in a transaction (and
// the logical walsenders of such roles: a replication connection to a database takes SQL too).
// The limit each database had before is kept in pgherd's database, and given back when the side
// takes writes again (a roll back, an abandon, a fence the reconcile settles). A superuser client is
// not held at the door (it could lift any fence itself); it is ended when it is in a transaction.
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { instanceDoors } from '@/db/schema';
import { onDb, type Endpoint } from '@/lib/actions/steps/endpoint-db';
import { refuse } from '@/lib/fleet/refusal';

/**
 * The sessions ended as the door closes: not pgherd's own; client backends of a role that is not a
 * superuser, or in a transaction; and walsenders attached to a database (logical replication, which
 * also takes SQL) of a role that is neither a superuser nor a major upgrade's own. Physical
 * replication (no database) goes on.
 */
const END_SESSIONS = `
  WITH open AS MATERIALIZED (
    SELECT a.pid FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
    WHERE a.pid <> pg_backend_pid()
      AND ((a.backend_type = 'client backend' AND (a.xact_start IS NOT NULL OR NOT coalesce(r.rolsuper, false)))
        OR (a.backend_type = 'walsender' AND a.datname IS NOT NULL AND NOT coalesce(r.rolsuper, false)
            AND coalesce(r.rolname, '') !~ '^pgherd_upgrade_[0-9]+$')))
  SELECT pid FROM open WHERE pg_terminate_backend(pid)`;

/** Sweeps a session that passed the limit's check just before it was set (it shows once started) may need. */
const SWEEPS = 5;

/**
 * Closes the door of instance `instanceId` (at `e`): its databases' earlier limits kept first (a limit
 * of 0 found now keeps the one kept before), then CONNECTION LIMIT 0 on each database that takes
 * connections, templates too (template1 would otherwise let a database's owner in to lift its own
 * limit), then the sessions ended, swept again until a sweep ends none. Refuses, changing nothing,
 * when pgherd's role is not a superuser there (the door would shut pgherd out with the rest).
 */
export async function closeDoor(db: Db, instanceId: number, e: Endpoint): Promise<{ databases: string[]; ended: number }> {
  return onDb(e, 'postgres', async (c) => {
    const [me] = (await c.query<{ superuser: boolean }>('SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user')).rows;
    if (!me?.superuser)
      throw refuse(
        'not-applicable',
        `pgherd's role is not a superuser on ${e.host}:${String(e.port)}: the fence would shut pgherd out with the clients`,
      );
    // -2: a database a DROP DATABASE left half done, which ALTER DATABASE refuses (and which takes no connection).
    const dbs = (
      await c.query<{ datname: string; limit: number }>(
        `SELECT datname, datconnlimit AS limit FROM pg_database WHERE datallowconn AND datconnlimit <> -2 ORDER BY datname`,
      )
    ).rows;
    if (dbs.length)
      await db
        .insert(instanceDoors)
        .values(dbs.map((d) => ({ instanceId, datname: d.datname, earlierLimit: d.limit })))
        .onConflictDoUpdate({
          target: [instanceDoors.instanceId, instanceDoors.datname],
          set: { earlierLimit: sql`excluded.earlier_limit`, closedAt: sql`now()` },
          setWhere: sql`excluded.earlier_limit <> 0`,
        });
    for (const d of dbs) await c.query(`ALTER DATABASE ${c.escapeIdentifier(d.datname)} CONNECTION LIMIT 0`);
    let ended = 0;
    for (let i = 0; i < SWEEPS; i++) {
      const n = (await c.query(END_SESSIONS)).rowCount ?? 0;
      ended += n;
      if (!n && i > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return { databases: dbs.map((d) => d.datname), ended };
  });
}

/**
 * Opens the door `closeDoor` closed: each database still there and still at 0 gets its earlier limit
 * back (one someone set otherwise meanwhile is left as it is). Nothing to do when it was not closed.
 */
export async function openDoor(db: Db, instanceId: number, e: Endpoint): Promise<string[]> {
  const kept = await db.select().from(instanceDoors).where(eq(instanceDoors.instanceId, instanceId));
  if (!kept.length) return [];
  const opened = await onDb(e, 'postgres', async (c) => {
    const now = new Map(
      (await c.query<{ datname: string; limit: number }>(`SELECT datname, datconnlimit AS limit FROM pg_database`)).rows.map(
        (r) => [r.datname, r.limit] as const,
      ),
    );
    const done: string[] = [];
    for (const k of kept) {
      if (now.get(k.datname) !== 0) continue;
      await c.query(`ALTER DATABASE ${c.escapeIdentifier(k.datname)} CONNECTION LIMIT ${String(Math.trunc(k.earlierLimit))}`);
      done.push(k.datname);
    }
    return done;
  });
  await db.delete(instanceDoors).where(
    and(
      eq(instanceDoors.instanceId, instanceId),
      inArray(
        instanceDoors.datname,
        kept.map((k) => k.datname),
      ),
    ),
  );
  return opened;
}
