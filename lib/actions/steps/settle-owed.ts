// What targets owe clients and could not give back themselves (their worker killed, their lease lost,
// the pooler away when their cleanup ran): settled by every worker's reconcile once the target no
// longer runs and no one holds its herd. A major upgrade's fence (its old side made read-only) is given
// back unless the switch went through. Each is done as the herd is now, not as the target left it:
// the PgBouncer is pointed at the member that answers as the primary (when exactly one does and the
// entries point elsewhere), its paused entries resumed, the resume armed on its host disarmed.
import { eq } from 'drizzle-orm';
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { majorUpgrades, owedCleanups } from '@/db/schema';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { setReadOnly } from './endpoint-db';
import { openDoor } from './door';
import type { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { showDatabases } from '@/lib/adapters/pgbouncer/admin';
import type { ActionDeps } from '@/lib/engine/define-action';
import { errorText } from '@/lib/engine/errors';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';
import { observe } from '@/lib/fleet/observe';
import type { StepContext } from '@/lib/engine/pipeline';
import { poolerConsole } from '@/lib/fleet/pooler';
import { astrayFromPrimary, repointPooler, resumePooler } from './pooler-steps';
import { disarmResume } from './pooler-resume';

/** How long a worker holds an owed cleanup it is settling before another may try. */
const CLAIM_S = 120;

/** Takes up to `limit` owed cleanups that may be settled now (their target not running, their herd held by no one). */
async function claim(db: Db, limit: number) {
  const rows = await db.execute<{
    // int8: the driver gives it as text.
    id: string;
    herd_id: number;
    pooler_id: number | null;
    databases: string[];
    resume_token: string;
    kind: 'pooler-resume' | 'writes-fence';
    instance_id: string | null;
    upgrade_id: number | null;
  }>(withParams(sqlFile('lib/actions/steps/claim-owed-cleanups.sql'), [CLAIM_S, limit]));
  return rows.rows.map((r) => ({ ...r, id: Number(r.id), instance_id: r.instance_id === null ? null : Number(r.instance_id) }));
}

/** A record of what was done, for the owed row (no step to write it in: reconcile is no operation). */
function recorder(): StepContext & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    signal: new AbortController().signal,
    note: (r) => {
      if (r.stdout) lines.push(r.stdout);
    },
  };
}

/** Settles one owed PgBouncer resume as the herd is now. Returns what was done. */
async function settlePooler(
  db: Db,
  ssh: SshPool,
  row: { herd_id: number; pooler_id: number | null; databases: string[]; resume_token: string },
): Promise<string> {
  const [herd] = await loadHerdRefs(db, [row.herd_id]);
  const p = herd?.poolers.find((x) => x.id === row.pooler_id);
  if (!herd || !p) return 'the PgBouncer is no longer in the inventory: nothing to resume';
  const deps: ActionDeps = { db, ssh };
  const ctx = recorder();
  const done: string[] = [];
  const seen = await Promise.all(herd.members.map(async (m) => ({ m, o: await observe(m, 3000) })));
  const primaries = seen.filter(({ o }) => o.reachable && o.inRecovery === false).map(({ m }) => m);
  const entries = await showDatabases(poolerConsole(p));
  const paused = row.databases.filter((d) => entries.get(d)?.paused);
  const [primary] = primaries;
  if (primary && primaries.length === 1) {
    // Entries that point at a member that is no primary now (stopped, or a replica) follow the one
    // that is; one pointing at a primary that answers is left as it is, whoever that is.
    const answersAsPrimary = (host: string, port: number) =>
      seen.some(({ m, o }) => m.host === host && m.port === port && o.reachable && o.inRecovery === false);
    const astray = row.databases.filter((d) => {
      const e = entries.get(d);
      return e && (e.host !== primary.host || e.port !== primary.port) && !answersAsPrimary(e.host, e.port);
    });
    if (astray.length) done.push(await repointPooler(p, primary, deps, ctx));
  } else if (paused.length) {
    done.push(
      primaries.length
        ? `not re-pointed: ${primaries.map((m) => m.label).join(' and ')} answer as primary`
        : 'not re-pointed: no member answers as the primary',
    );
  }
  done.push(await resumePooler(p, ctx));
  done.push(await disarmResume(p, row.resume_token, deps, ctx));
  // Owed until its clients reach a primary through it.
  const astray = await astrayFromPrimary(p);
  if (astray) throw new Error(`${done.join('; ')}; but ${astray}: owed until it points at the herd's primary`);
  return done.join('; ');
}

/**
 * Settles a major upgrade's fence: the instance is made writable again when its herd is the one that
 * serves the upgrade as it stands now (blue until the cut-over, green after it), i.e. the switch that
 * fenced it did not go through; one the switch went past stays read-only, as it should.
 */
async function settleFence(db: Db, row: { instance_id: number | null; upgrade_id: number | null }): Promise<string> {
  if (row.instance_id === null || row.upgrade_id === null) return 'nothing to give back: its instance or upgrade is gone';
  const [u] = await db.select().from(majorUpgrades).where(eq(majorUpgrades.id, row.upgrade_id));
  const [t] = await loadInstanceRefs(db, [row.instance_id]);
  if (!u || !t) return 'nothing to give back: its instance or upgrade is gone';
  const serving = u.status === 'cut-over' ? u.greenHerdId : u.blueHerdId;
  if (u.status === 'cleaned' || t.herdId !== serving) return `the switch went through: ${t.label} stays read-only`;
  await setReadOnly(t, false);
  await openDoor(db, t.id, t);
  return `${t.label} takes writes again (the switch that fenced it did not go through)`;
}

/**
 * Settles what may be settled now; each failure is recorded on its row (shown on the herd and the
 * operation) and tried again at the next reconcile.
 */
export async function settleOwed(
  db: Db,
  ssh: SshPool,
  log: (e: string, f: object) => void = () => {},
  limit = 20,
): Promise<{ settled: number[]; failed: number[] }> {
  const settled: number[] = [];
  const failed: number[] = [];
  for (const row of await claim(db, limit)) {
    try {
      const how = row.kind === 'writes-fence' ? await settleFence(db, row) : await settlePooler(db, ssh, row);
      await db
        .update(owedCleanups)
        .set({ settledAt: new Date(), settledHow: `by a worker's reconcile: ${how}`, lastError: null, claimedUntil: null })
        .where(eq(owedCleanups.id, row.id));
      settled.push(row.id);
      log('owed.settled', { id: row.id, herdId: row.herd_id, how });
    } catch (err) {
      const error = errorText(err);
      await db.update(owedCleanups).set({ lastError: error, claimedUntil: null }).where(eq(owedCleanups.id, row.id));
      failed.push(row.id);
      log('owed.failed', { id: row.id, herdId: row.herd_id, error });
    }
  }
  return { settled, failed };
}
