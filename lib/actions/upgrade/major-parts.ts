// What the major upgrade's actions share: the target build, blue's primary and the open upgrade, green's
// logins and tools, blue's facts judged against the build, the copy's progress.
import { eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { majorUpgrades, postgresBuilds } from '@/db/schema';
import { type ActionDeps } from '@/lib/engine/define-action';
import type { StepContext } from '@/lib/engine/pipeline';
import { errorText } from '@/lib/engine/errors';
import { type HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { execNoted } from '@/lib/actions/steps/exec-noted';
import { versionText } from './minor.action';
import { copied, judge, readBlueFacts, type BlueFacts } from './blue-facts';
import { onDb, type Endpoint } from '@/lib/actions/steps/endpoint-db';
import { subscription, type SubName } from './replication';

export interface TargetBuild {
  serverId: number;
  binDir: string;
  versionNum: number;
  extensions: Record<string, string>;
}

/** The newest build of `major` (or the release `exact`) on a server, as its agent reports it. */
export async function targetBuild(db: Db, serverId: number, major: number, exact: number | null): Promise<TargetBuild | null> {
  const rows = await db.select().from(postgresBuilds).where(eq(postgresBuilds.serverId, serverId));
  const fit = rows
    .filter((b) => (exact !== null ? b.versionNum === exact : Math.floor(b.versionNum / 10000) === major))
    .sort((a, b) => b.versionNum - a.versionNum)[0];
  return fit ? { serverId, binDir: fit.binDir, versionNum: fit.versionNum, extensions: fit.extensions } : null;
}

/** The target: "17" (its newest build there) or "17.10". */
export const toVersionParam = z
  .string()
  .trim()
  .regex(/^\d{2,3}(\.\d{1,4})?$/, 'a major such as 17, or a release such as 17.10');

export function parseTarget(v: string): { major: number; exact: number | null } {
  const [maj = '0', min] = v.split('.');
  return { major: Number(maj), exact: min === undefined ? null : Number(maj) * 10000 + Number(min) };
}

export const primaryOf = (h: HerdRef): InstanceRef | Refusal => {
  const p = h.members.filter((m) => m.role === 'primary' && m.state === 'running');
  if (p.length !== 1)
    return refuse('topology', p.length ? `${h.label} has ${p.length} running primaries` : `${h.label} has no running primary`);
  return p[0] as InstanceRef;
};

export interface OpenUpgrade {
  id: number;
  status: string;
  blueHerdId: number | null;
  greenHerdId: number | null;
  databases: string[];
  toVersionNum: number;
  sequenceGap: number;
  operationId: number | null;
}

/** The herd's open upgrade (as blue or as green). */
export async function openUpgradeOf(db: Db, herdId: number): Promise<OpenUpgrade | null> {
  const [u] = await db
    .select()
    .from(majorUpgrades)
    .where(
      sql`(${majorUpgrades.blueHerdId} = ${herdId} OR ${majorUpgrades.greenHerdId} = ${herdId}) AND ${majorUpgrades.status} IN ('building', 'ready', 'cut-over')`,
    )
    .orderBy(sql`${majorUpgrades.id} DESC`)
    .limit(1);
  return u ?? null;
}

export interface Labelled extends Endpoint {
  label: string;
}

/** How a client tool on blue's host reaches blue as the bootstrap superuser: its first socket directory. */
export async function localLogin(blue: Labelled): Promise<string[]> {
  const socket = await onDb(
    blue,
    'postgres',
    async (c) => (await c.query<{ s: string }>("SELECT current_setting('unix_socket_directories') AS s")).rows[0]?.s ?? '',
  );
  return ['-h', socket.split(',')[0]?.trim() || '/tmp', '-p', String(blue.port), '-U', 'postgres'];
}

/**
 * Each sequence and its last value, read from the sequence itself: pg_sequences says null for one set
 * with is_called false (setval(s, n, false)), whose next value is n all the same.
 */
export const SEQUENCES = `SELECT format('%I.%I', schemaname, sequencename) AS s,
  (xpath('/row/last_value/text()', query_to_xml(format('SELECT last_value FROM %I.%I', schemaname, sequencename), false, true, '')))[1]::text AS v
  FROM pg_sequences WHERE schemaname <> 'pgherd'`;

/** The first of `dirs` on the host that has `tool`, or the error saying none has. */
export async function toolOn(deps: ActionDeps, t: { ssh: SshTarget }, ctx: StepContext, tool: string, dirs: string[]): Promise<string> {
  const r = await execNoted(
    deps,
    t,
    ctx,
    [
      'sh',
      '-c',
      'tool=$1; shift; for d; do if [ -x "$d/$tool" ]; then echo "$d/$tool"; exit 0; fi; done; exit 1',
      'pgherd-which',
      tool,
      ...dirs,
    ],
    20_000,
  );
  const found = r.stdout.trim();
  if (r.code !== 0 || !found) throw new Error(`no ${tool} on ${t.ssh.host} in ${dirs.join(', ')}`);
  return found;
}

export interface PrecheckPrepared {
  facts: Map<number, BlueFacts | string>;
  builds: Map<number, TargetBuild | null>;
}

export async function readFacts(herdList: HerdRef[]): Promise<Map<number, BlueFacts | string>> {
  const facts = new Map<number, BlueFacts | string>();
  for (const h of herdList) {
    const p = primaryOf(h);
    if (p instanceof Refusal) facts.set(h.id, p.reason);
    else facts.set(h.id, await readBlueFacts(p).catch((err: unknown) => `${p.label} could not be read: ${errorText(err)}`));
  }
  return facts;
}

export function precheckFacts(f: BlueFacts, build: TargetBuild) {
  const { blockers, warnings } = judge(f, build.extensions);
  return {
    blockers,
    warnings,
    facts: [
      { label: 'Target build', value: `${versionText(build.versionNum)} (${build.binDir})` },
      { label: 'Blue runs', value: versionText(f.serverVersionNum) },
      {
        label: 'Databases copied',
        value: copied(f)
          .map((d) => `${d.name} (${String(d.tables)} tables, ${String(d.sequences)} sequences)`)
          .join(', '),
      },
      { label: 'Blockers', value: blockers.length ? blockers.join('; ') : 'none' },
    ],
  };
}

/** Tables copied of all, and the bytes green's slowest subscription is behind blue. */
export async function progress(
  from: Endpoint,
  to: Endpoint,
  databases: string[],
  upgradeId: number,
  sub: SubName = subscription(upgradeId),
) {
  let tables = 0;
  let ready = 0;
  for (const [k, d] of databases.entries()) {
    const r = await onDb(
      to,
      d,
      async (c) =>
        (
          await c.query<{ n: number; r: number }>(
            `SELECT count(*)::int AS n, count(*) FILTER (WHERE srsubstate = 'r')::int AS r FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid WHERE s.subname = $1`,
            [sub(k)],
          )
        ).rows[0],
    );
    tables += r?.n ?? 0;
    ready += r?.r ?? 0;
  }
  const behind = await onDb(from, 'postgres', async (c) =>
    Number(
      (
        await c.query<{ b: string | null }>(
          `SELECT max(pg_current_wal_lsn() - coalesce(confirmed_flush_lsn, '0/0'))::text AS b FROM pg_replication_slots WHERE slot_name = ANY($1::text[])`,
          [databases.map((_, k) => sub(k))],
        )
      ).rows[0]?.b ?? 'NaN',
    ),
  );
  return { tables, ready, behind: Number.isFinite(behind) ? behind : Number.MAX_SAFE_INTEGER };
}

export const endpointOf = (m: InstanceRef): Labelled => ({
  host: m.host,
  port: m.port,
  serverEnvironment: m.serverEnvironment,
  label: m.label,
});
