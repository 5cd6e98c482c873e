// The demo's backups shown working from the start: once the console is ready, staging's herds that pgherd runs
// over SSH get their backups configured (pgBackRest on each member and on staging's backup host), a full backup
// each, and the first of them a restore drill onto a scratch server. A newcomer opening Recoverability sees
// "restorable" with an RTO and an RPO, not every herd "not configured". Run as operations through the worker,
// as a person would confirm them, requested by "demo".
import { and, eq } from 'drizzle-orm';
import { createDb, type Db } from '@/db/client';
import { environments, herds, servers } from '@/db/schema';
import { queuePrefix } from '@/lib/engine/queue';
import { configureBackupsAction } from '@/lib/actions/backups/configure-backups.action';
import { backupAction } from '@/lib/actions/backups/backup.action';
import { restoreDrillAction } from '@/lib/actions/backups/restore-drill.action';
import type { AnyAction } from '@/lib/engine/define-action';
import { openQueue, runOperation } from '@/lib/testing/operations';
import { useLabSettings, type LabInfo } from './lab';

const ENVIRONMENT = 'staging';

/** Configures, backs up and drills staging's pg_ctl herds; says what it did, or why it stopped, through `log`. */
export async function showBackups(lab: LabInfo, log: (m: string) => void): Promise<void> {
  const scratch = lab.backup?.scratch.find((s) => s.environment === ENVIRONMENT);
  if (!scratch || !lab.redis) return;
  // Planned here as the console plans them: with the lab's fleet credentials and backup passphrases.
  useLabSettings(lab);
  const { db, pool } = createDb(lab.database.url, 2);
  const q = openQueue(lab, queuePrefix());
  try {
    const run = async (action: AnyAction, herdIds: number[], params: Record<string, unknown>) => {
      const r = await runOperation(db, q.queue, action, { herdIds }, params, { username: 'demo', timeoutMs: 600_000 });
      const ok = r.targets.filter((t) => t.status === 'succeeded').map((t) => t.herdId as number);
      if (!ok.length) throw new Error(`${action.name} (operation ${String(r.op.id)}) succeeded on no herd`);
      return ok;
    };
    const ids = await sshHerds(db);
    const configured = await run(configureBackupsAction, ids, {});
    const backedUp = await run(backupAction, configured, { type: 'full' });
    const [server] = await db.select({ id: servers.id }).from(servers).where(eq(servers.hostname, scratch.server));
    if (!server) throw new Error(`the scratch server ${scratch.server} is not in the inventory`);
    await run(restoreDrillAction, backedUp.slice(0, 1), {
      serverId: String(server.id),
      dataDirectory: `${scratch.dataRoot}/demo-drill/data`,
      ...(scratch.tls ? { sslCertFile: scratch.tls.certFile, sslKeyFile: scratch.tls.keyFile } : {}),
    });
    log(`backups: ${ENVIRONMENT}'s ${String(configured.length)} herds back up to pgBackRest; a restore drill passed (Recoverability)`);
  } finally {
    await q.close();
    await pool.end();
  }
}

/** Staging's herds that pgherd runs over SSH (pg_ctl): the ones Configure backups sets up itself. */
async function sshHerds(db: Db): Promise<number[]> {
  const rows = await db
    .select({ id: herds.id })
    .from(herds)
    .innerJoin(environments, eq(environments.id, herds.environmentId))
    .where(and(eq(environments.name, ENVIRONMENT), eq(herds.controlDriver, 'pg_ctl')))
    .orderBy(herds.name);
  return rows.map((r) => r.id);
}
