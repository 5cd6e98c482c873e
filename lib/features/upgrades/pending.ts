// Pending maintenance (RDS's idea, for a self-managed fleet): the herds whose members run an older
// minor release than the target of their major. The target is PGHERD_MINOR_TARGETS' release for the
// major when it names one, else the newest release of the major installed on every member's host (as
// the agents report the builds). Each herd says what upgrading means, and what stands in its way.
import { withParams, type Queries } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { setting } from '@/lib/settings/settings';
import { newestOnEvery, versionNum, versionText } from '@/lib/actions/upgrade/minor.action';

export interface PendingHerd {
  herdId: number;
  herd: string;
  environmentId: number;
  environment: string;
  major: number;
  /** Each release its members run, with how many run it ("15.17 x3"). */
  runs: { version: string; members: number }[];
  /** The release it should run; null when nothing newer is known for its major. */
  target: string | null;
  /** Where the target comes from. */
  targetFrom: 'configured' | 'installed';
  members: number;
  /** Members on an older release than the target. */
  behind: number;
  /** What the rolling upgrade does, in words. */
  means: string;
  /** Why the upgrade would be refused now (a host without the build, a Patroni herd, a member down); null: it can be planned. */
  blocked: string | null;
}

/** PGHERD_MINOR_TARGETS ("15.18, 17.10"): a release per major; a malformed entry is an error the settings page shows. */
export function minorTargets(raw = setting('PGHERD_MINOR_TARGETS')): Map<number, number> {
  const out = new Map<number, number>();
  for (const part of raw
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean)) {
    const n = versionNum(part);
    if (n === null) throw new Error(`PGHERD_MINOR_TARGETS: ${JSON.stringify(part)} is not a release such as 15.18`);
    out.set(Math.floor(n / 10000), n);
  }
  return out;
}

type Row = {
  herd_id: number;
  herd: string;
  environment_id: number;
  environment: string;
  control_driver: string;
  members: { version: number | null; state: string; role: string; builds: number[] }[];
};

/**
 * Every herd of these environments (null: all) with members behind their target, herds by environment
 * and name; `all` lists the herds that are current too.
 */
export async function pendingMaintenance(
  db: Queries,
  environmentIds: number[] | null,
  opts: { all?: boolean } = {},
): Promise<PendingHerd[]> {
  const targets = minorTargets();
  const rows = await db.execute<Row>(withParams(sqlFile('lib/features/upgrades/pending-herds.sql'), [environmentIds]));
  const out: PendingHerd[] = [];
  for (const r of rows.rows) {
    const known = r.members.filter((m) => m.version !== null);
    if (!known.length) continue;
    const major = Math.floor(Math.min(...known.map((m) => m.version as number)) / 10000);
    const configured = targets.get(major);
    const newest = newestOnEvery(
      r.members.map((m) => m.builds),
      major,
    );
    const target = configured ?? newest;
    const behind = target === null ? 0 : known.filter((m) => (m.version as number) < target).length;
    if (!opts.all && !behind) continue;
    const counts = new Map<number, number>();
    for (const m of known) counts.set(m.version as number, (counts.get(m.version as number) ?? 0) + 1);
    const replicas = r.members.filter((m) => m.role === 'replica').length;
    const lacking = target === null ? 0 : r.members.filter((m) => !m.builds.includes(target)).length;
    const down = r.members.filter((m) => m.state !== 'running').length;
    const blocked =
      r.control_driver !== 'pg_ctl'
        ? r.control_driver === 'patroni'
          ? 'Patroni runs it: upgrade through Patroni'
          : `${r.control_driver}: upgrade the packages on its hosts`
        : target !== null && lacking
          ? `${lacking} of its hosts ${lacking === 1 ? 'has' : 'have'} no ${versionText(target)} build installed`
          : down
            ? `${down} member${down === 1 ? ' is' : 's are'} not running`
            : !replicas && behind
              ? 'no replica to switch over to'
              : known.length < r.members.length
                ? 'a member was never observed'
                : null;
    out.push({
      herdId: r.herd_id,
      herd: r.herd,
      environmentId: r.environment_id,
      environment: r.environment,
      major,
      runs: [...counts].sort(([a], [b]) => a - b).map(([v, n]) => ({ version: versionText(v), members: n })),
      target: target === null ? null : versionText(target),
      targetFrom: configured !== undefined ? 'configured' : 'installed',
      members: r.members.length,
      behind,
      means: !behind
        ? 'nothing: every member runs the target'
        : `${r.members.length} member${r.members.length === 1 ? '' : 's'} restarted on ${versionText(target as number)} one at a time (names drained, then back once streaming), 1 switchover with no acknowledged commit lost`,
      blocked: behind ? blocked : null,
    });
  }
  return out;
}
