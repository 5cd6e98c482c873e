// The worst day, as the site-loss test and `npm run bench -- control-plane` both run it: the fleet's
// site (every primary's Postgres there, each postmaster and its children) and pgherd's own site A (every
// process lab.json places on it) SIGKILLed at the same moment; then a DBA on site B's console (pgherd's
// database through site B's HAProxy, the queue through the sentinels) fails over every herd whose
// primary was on the lost fleet site, trying again until site B answers. Measured from the kill: the
// operation accepted; every herd writable with its write name (asked of BIND) moved; and, as the
// baseline, Patroni naming a new primary of pgherd's own database.
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { sql } from 'drizzle-orm';
import { createDb, type Db } from '@/db/client';
import { lookup } from '@/lib/adapters/dns/rfc2136';
import { drFailoverAction } from '@/lib/actions/topology/dr-failover.action';
import { loadAccess } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import type { targetQueue } from '@/lib/engine/queue';
import { submitOperation } from '@/lib/engine/submit';
import { killSite } from '@/lib/lab/kill-site';
import { readLab, type LabInfo } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { descendants } from '@/lib/lab/proc';
import { waitFor } from './wait';

export interface SiteLoss {
  operationId: number;
  herdIds: number[];
  /** From the kill: the DR failover accepted on site B; every herd writable with its name moved; Patroni's new primary. */
  acceptedMs: number;
  writableMs: number;
  patroniMs: number;
  /** pgherd's database through site B (the caller ends its pool). */
  b: { db: Db; end: () => Promise<void> };
}

/** The write name's answer (a server's name), asked of the lab's BIND; undefined when it does not answer. */
export const writeAnswer = async (lab: LabInfo, herd: string): Promise<string | undefined> =>
  (
    await lookup(
      { host: lab.dns!.server, port: lab.dns!.port },
      lab.dns!.herds.find((h) => h.herd === herd)!.writeName,
      'CNAME',
      500,
    ).catch(() => [])
  )[0];

/** Whether a member's Patroni says it is the primary (GET /primary 200), asked with the lab's CA. */
export function patroniSaysPrimary(address: string, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(`https://${address}:8008/primary`, { ca, timeout: 500 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** SIGKILL, a process and everything it started: a machine lost. */
export function sigkillTree(pid: number) {
  for (const p of [pid, ...descendants(pid)])
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone already
    }
}

export async function loseSiteAndFleet(
  labFile: string,
  opts: { fleetSite: string; dbaId: number; queue: ReturnType<typeof targetQueue>; log?: (m: string) => void },
): Promise<SiteLoss> {
  const lab = readLab(labFile);
  const cp = lab.controlPlane;
  if (!cp || !lab.tls) throw new Error(`${labFile} has no control plane across sites`);
  const lost = lab.instances.filter((i) => i.site === opts.fleetSite);
  const postmasters = lab.processes.filter((p) => lost.some((i) => i.server === p.name));
  if (postmasters.length !== lost.length) throw new Error(`not every ${opts.fleetSite} member's Postgres is in ${labFile}`);
  const ca = readFileSync(lab.tls.caFile);

  opts.log?.(`losing ${opts.fleetSite} (${lost.map((i) => i.server).join(', ')}) and pgherd's site a together`);
  const killedAt = performance.now();
  for (const p of postmasters) sigkillTree(p.pid);
  killSite(labFile, 'a');

  const patroni = waitFor(
    "a surviving Patroni member to lead pgherd's database",
    async () =>
      (await Promise.all(cp.sites.slice(1).map((s) => patroniSaysPrimary(s.address, ca)))).some(Boolean)
        ? performance.now() - killedAt
        : undefined,
    120_000,
  );
  const b = createDb(cp.databaseUrls.b!, 4);
  try {
    const accepted = await waitFor(
      'the DR failover accepted on site B',
      async () => {
        try {
          // The herds whose primary was on the lost site, as the changelist's site facet lists them.
          const ids = (
            await b.db.execute<{ id: number }>(sql`
              SELECT h.id FROM herds h JOIN instances i ON i.herd_id = h.id AND i.role = 'primary' JOIN servers s ON s.id = i.server_id
              WHERE s.site = ${opts.fleetSite} ORDER BY h.id`)
          ).rows.map((r) => r.id);
          const access = await loadAccess(b.db, opts.dbaId);
          const plan = await planOperation(b.db, access, drFailoverAction, ids);
          const refused = plan.targets.filter((t) => t.refused);
          if (refused.length) throw new RefusedError(refused.map((t) => `${t.label}: ${t.refused ?? ''}`).join('; '));
          const made = await submitOperation(
            b.db,
            opts.queue,
            drFailoverAction,
            { herdIds: ids, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: randomBytes(8).toString('hex') },
            { id: opts.dbaId, username: access.username, access },
          );
          return { id: made.id, ms: performance.now() - killedAt, ids };
        } catch (err) {
          // Site B still failing over (its database, the queue): the DBA tries again. A refusal is an answer.
          if (err instanceof RefusedError) throw err;
          await new Promise((r) => setTimeout(r, 250));
          return undefined;
        }
      },
      90_000,
    );
    opts.log?.(`DR failover #${String(accepted.id)} accepted on site B`);
    const writable = await Promise.all(
      [...new Set(lost.map((i) => i.herd))].map((h) => {
        const survivors = lab.instances.filter((i) => i.herd === h && i.site !== opts.fleetSite);
        return waitFor(
          `${h} writable with its write name moved`,
          async () => {
            const now = await writeAnswer(lab, h);
            const to = survivors.find((i) => i.server === now);
            if (!to) return undefined;
            const ok = await query(to.dsn, 'CREATE TABLE IF NOT EXISTS after_loss (x int); INSERT INTO after_loss VALUES (1)').then(
              () => true,
              () => false,
            );
            return ok ? performance.now() - killedAt : undefined;
          },
          120_000,
        );
      }),
    );
    return {
      operationId: accepted.id,
      herdIds: accepted.ids,
      acceptedMs: accepted.ms,
      writableMs: Math.max(...writable),
      patroniMs: await patroni,
      b: { db: b.db, end: () => b.pool.end() },
    };
  } catch (err) {
    await b.pool.end();
    throw err;
  }
}

class RefusedError extends Error {}
