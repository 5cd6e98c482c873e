// Restores whose target ended without their cleanup (the worker running them was killed, or lost the
// herd's lease): the folder each claimed is stopped and removed by the next worker's reconcile, as the
// restore's own cleanup would have; a drill's is recorded as a failed drill (it never said its verdict).
// So are restored clusters kept for a herd since deleted from the inventory by hand (nothing tracks them
// any more). Then the EC2 instances launched for such targets are terminated. Pooler pauses are settled
// beside it (lib/actions/steps/settle-owed.ts).
import { sql } from 'drizzle-orm';
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import type { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { errorText } from '@/lib/engine/errors';
import { Refusal } from '@/lib/fleet/refusal';
import { terminateLaunched } from '@/lib/actions/steps/launch';
import { removeRestored } from '@/lib/actions/steps/restore-steps';

/** pg_try_advisory_xact_lock's first key for settling a restore claim (the second: the claim's id). */
const SETTLE_LOCK = 72_842_117;

/** Removes what restores that ended without their cleanup left on their servers; the claims settled. */
export async function settleRestoreClaims(
  db: Db,
  ssh: SshPool,
  log: (e: string, f: object) => void = () => {},
  limit = 10,
): Promise<number[]> {
  const rows = await db.execute<ClaimedFolder & { target_id: number; status: string }>(
    withParams(sqlFile('lib/actions/backups/unsettled-restore-claims.sql'), [limit]),
  );
  const settled: number[] = [];
  for (const c of rows.rows) {
    try {
      // One settler at a time per claim (every worker's reconcile settles them): the claim's lock is held
      // from before its folder is removed until the row says so, and the row is read again under it. Two
      // at once would each stop and remove the same folder, and one could settle the row while the other
      // was still removing.
      const done = await db.transaction(async (tx) => {
        const [lock] = (await tx.execute<{ ok: boolean }>(sql`SELECT pg_try_advisory_xact_lock(${SETTLE_LOCK}, ${c.id}::int) AS ok`)).rows;
        if (!lock?.ok) return false;
        const still = await tx.execute(sql`
          SELECT 1 FROM restore_claims r WHERE r.id = ${c.id}
            AND (r.settled_at IS NULL OR (r.kept_herd_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM herds h WHERE h.id = r.kept_herd_id)))`);
        if (!still.rows.length) return false;
        await removeClaimed(db, ssh, c);
        await tx.execute(
          withParams(sqlFile('lib/actions/backups/settle-restore-claim.sql'), [
            c.orphaned
              ? "removed by a worker's reconcile: the herd it was kept for was deleted from the inventory"
              : `removed by a worker's reconcile: its target ended ${c.status} without its cleanup`,
            c.id,
          ]),
        );
        // A drill cut short never said its verdict: it failed, and the scorecard says so (not the drill before).
        await tx.execute(sql`
          INSERT INTO restore_drills (herd_id, operation_id, started_at, ok, cause)
          SELECT t.herd_id, o.id, coalesce(o.started_at, t.created_at), false,
                 ${`the drill stopped before it ended (its target ended ${c.status} without its cleanup: the worker running it stopped)`}
          FROM operation_targets t JOIN operations o ON o.id = t.operation_id
          WHERE t.id = ${c.target_id} AND o.action = 'restore-drill' AND t.herd_id IS NOT NULL
          ON CONFLICT (operation_id, herd_id) DO NOTHING`);
        return true;
      });
      if (!done) continue;
      settled.push(c.id);
      log('restore_claim.removed', { id: c.id, targetId: c.target_id, folder: c.data_directory });
    } catch (err) {
      if (err instanceof Refusal) {
        // Not the restore's any more (claim-guard.ts): left as found, and settled so.
        log('restore_claim.left', { id: c.id, targetId: c.target_id, folder: c.data_directory, why: err.reason });
        continue;
      }
      await db.execute(sql`UPDATE restore_claims SET last_error = ${errorText(err)} WHERE id = ${c.id}`);
      log('restore_claim.failed', { id: c.id, targetId: c.target_id, error: errorText(err) });
    }
  }
  await settleLaunchedInstances(db, log, limit);
  return settled;
}

/** What a claim's row says of the folder it claimed and of its server: what removing it needs. */
type ClaimedFolder = {
  id: number;
  data_directory: string;
  pg_version: number;
  host: string;
  port: number;
  username: string;
  fingerprint: string | null;
  server_id: number;
  environment: string;
  orphaned: boolean;
  hostname: string;
  kept_herd_id: number | null;
};

/** Stops the restored cluster of claim `c` and removes its folder (refused, and left as found, when it is not the restore's any more). */
async function removeClaimed(db: Db, ssh: SshPool, c: ClaimedFolder): Promise<void> {
  const x = { note: () => {}, signal: AbortSignal.timeout(180_000) };
  const target = {
    host: c.host,
    port: c.port,
    username: c.username,
    hostKeyFingerprint: c.fingerprint,
    serverId: c.server_id,
    environment: c.environment,
  };
  await removeRestored(
    { db, ssh },
    x,
    { server: { ssh: target }, dataDirectory: c.data_directory, pgVersion: c.pg_version },
    {
      claimId: c.id,
      serverId: c.server_id,
      hostname: c.hostname,
      dataDirectory: c.data_directory,
      pgVersion: c.pg_version,
      ssh: target,
      // Its herd deleted by hand: an instance of any herd sitting there now adopted it.
      keptHerdId: c.orphaned ? null : c.kept_herd_id,
    },
  );
}

/**
 * Terminates the instances launched for targets that ended without their cleanup (and were not kept):
 * once what was laid down on them is removed (no open claim on their server), or when nothing was.
 */
export async function settleLaunchedInstances(db: Db, log: (e: string, f: object) => void = () => {}, limit = 10): Promise<number[]> {
  const rows = await db.execute<{ id: number; target_id: number; status: string; instance_id: string | null; orphaned: boolean }>(
    withParams(sqlFile('lib/actions/backups/unsettled-launched-instances.sql'), [limit]),
  );
  const done: number[] = [];
  for (const l of rows.rows) {
    try {
      await terminateLaunched(
        db,
        l.id,
        l.orphaned
          ? "terminated by a worker's reconcile: the herd it was kept for was deleted from the inventory"
          : `terminated by a worker's reconcile: its target ended ${l.status} without its cleanup`,
        AbortSignal.timeout(600_000),
      );
      done.push(l.id);
      log('launched_instance.terminated', { id: l.id, targetId: l.target_id, instanceId: l.instance_id });
    } catch (err) {
      if (err instanceof Refusal) {
        log('launched_instance.left', { id: l.id, targetId: l.target_id, instanceId: l.instance_id, why: err.reason });
        continue;
      }
      await db.execute(sql`UPDATE launched_instances SET last_error = ${errorText(err)} WHERE id = ${l.id}`);
      log('launched_instance.failed', { id: l.id, targetId: l.target_id, error: errorText(err) });
    }
  }
  return done;
}
