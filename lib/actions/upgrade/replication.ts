// The names a major upgrade gives its replication (publications, subscriptions and their slots, the
// marker table, its role) and the helpers that take them away again, from either side.
import { onDb, type Endpoint } from '@/lib/actions/steps/endpoint-db';
import { dropUpgradeRole, revokeUpgradeRole } from './upgrade-role';

export const PUBLICATION = 'pgherd_upgrade';
export const BACK_PUBLICATION = 'pgherd_upgrade_back';
// One subscription a database, named (and its slot with it) by the upgrade and the database's place in
// the upgrade's list: a slot's name is the whole cluster's, so two databases never share one.
export type SubName = (k: number) => string;
export const subscription =
  (id: number): SubName =>
  (k) =>
    `pgherd_upgrade_${String(id)}_${String(k)}`;
export const backSubscription =
  (id: number): SubName =>
  (k) =>
    `pgherd_back_${String(id)}_${String(k)}`;
/** A table of pgherd's in each copied database: a row written on one side and seen on the other proves every earlier commit applied. */
export const MARKER = 'pgherd.upgrade_marker';
export const MARKER_TABLE = 'upgrade_marker';
export const MARKER_COLUMNS = 'token text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp()';

/** The upgrade's role taken away from `e`: its grants in each database, then the role. */
export async function dropRoleOn(e: Endpoint, databases: string[], upgradeId: number): Promise<void> {
  for (const d of databases) await onDb(e, d, (c) => revokeUpgradeRole(c, upgradeId));
  await onDb(e, 'postgres', (c) => dropUpgradeRole(c, upgradeId));
}

/** The upgrade's replication slots on `e` that nothing uses (a subscription gone with its side). */
export async function dropSlots(e: Endpoint, upgradeId: number): Promise<void> {
  await onDb(e, 'postgres', async (c) => {
    await c.query(
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
       WHERE NOT active AND (slot_name LIKE $1 OR slot_name LIKE $2)`,
      [`pgherd\\_upgrade\\_${String(upgradeId)}\\_%`, `pgherd\\_back\\_${String(upgradeId)}\\_%`],
    );
  });
}

/**
 * Ends the sessions that hold the upgrade's slots on `e` (a subscriber pgherd no longer knows, whose role
 * is dropped first so that it cannot come back) and drops the slots.
 */
export async function dropSlotsForce(e: Endpoint, upgradeId: number): Promise<void> {
  await onDb(e, 'postgres', async (c) => {
    await c.query(
      `SELECT pg_terminate_backend(active_pid, 10000) FROM pg_replication_slots
       WHERE active AND (slot_name LIKE $1 OR slot_name LIKE $2)`,
      [`pgherd\\_upgrade\\_${String(upgradeId)}\\_%`, `pgherd\\_back\\_${String(upgradeId)}\\_%`],
    );
  });
  await dropSlots(e, upgradeId);
}

/**
 * Drops subscription `sub` in `database` on `e` when it is there, without asking its publisher: the
 * other side may be gone, and its slot there is dropped with that side (or by `dropSlots`).
 */
export async function dropSubscriptionAlone(e: Endpoint, database: string, sub: string): Promise<void> {
  await onDb(e, database, async (c) => {
    if (!(await c.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [sub])).rowCount) return;
    await c.query(`ALTER SUBSCRIPTION ${sub} DISABLE`);
    await c.query(`ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE)`);
    await c.query(`DROP SUBSCRIPTION ${sub}`);
  });
}
