// The DR scorecard: each herd of an environment with its last DR drill (its outcome and figures), and
// what needs a look: herds never drilled, whose last drill failed or lost a commit, whose last drill is
// older than PGHERD_DR_DRILL_MAX_AGE_DAYS (default 31), and herds that cannot be drilled (no member
// outside the primary's site).
import { withParams, type Queries } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { setting } from '@/lib/settings/settings';

export const drillMaxAgeDays = () => setting('PGHERD_DR_DRILL_MAX_AGE_DAYS');

export type DrillVerdict = 'ok' | 'never' | 'failed' | 'stale' | 'no-dr-member';

export interface ScorecardRow {
  herdId: number;
  herd: string;
  environment: string;
  /** The sites its members are in; a drill needs two. */
  sites: string[];
  verdict: DrillVerdict;
  /** Why, in words. */
  note: string;
  last: {
    operationId: number;
    status: string;
    finishedAt: string;
    candidate: string | null;
    candidateSite: string | null;
    firstWriteMs: number | null;
    longestGapMs: number | null;
    acknowledged: number | null;
    lost: number | null;
  } | null;
}

/** The scorecard of one environment (null: every environment), herds by name. */
export async function drScorecard(db: Queries, environmentId: number | null, now = new Date()): Promise<ScorecardRow[]> {
  const rows = await db.execute<{
    herd_id: number;
    herd: string;
    environment: string;
    sites: string[];
    primary_site: string | null;
    primaries: number;
    dr_running: number;
    dr_any: number;
    op_id: number | null;
    op_status: string | null;
    finished_at: Date | null;
    candidate_label: string | null;
    candidate_site: string | null;
    first_write_ms: number | null;
    longest_gap_ms: number | null;
    acknowledged: number | null;
    lost: number | null;
  }>(withParams(sqlFile('lib/features/dr/scorecard.sql'), [environmentId]));
  const maxAgeMs = drillMaxAgeDays() * 86_400_000;
  return rows.rows.map((r) => {
    const last =
      r.op_id === null
        ? null
        : {
            operationId: r.op_id,
            status: r.op_status ?? '?',
            finishedAt: new Date(r.finished_at ?? 0).toISOString(),
            candidate: r.candidate_label,
            candidateSite: r.candidate_site,
            firstWriteMs: r.first_write_ms,
            longestGapMs: r.longest_gap_ms,
            acknowledged: r.acknowledged,
            lost: r.lost,
          };
    let verdict: DrillVerdict = 'ok';
    let note = '';
    // As the drill would plan it now: one running primary with a site, a running replica in another.
    const cannot =
      r.primaries !== 1
        ? r.primaries
          ? `${String(r.primaries)} running primaries`
          : 'no running primary'
        : !r.primary_site
          ? 'its primary has no site'
          : r.dr_any === 0
            ? `no member outside the primary's site (${r.primary_site})`
            : r.dr_running === 0
              ? `no running replica outside the primary's site (${r.primary_site})`
              : null;
    if (cannot) {
      verdict = 'no-dr-member';
      note = `${cannot}: it cannot be drilled now`;
    } else if (!last) {
      verdict = 'never';
      note = 'never drilled';
    } else if (last.status !== 'succeeded' || (last.lost ?? 0) > 0) {
      verdict = 'failed';
      note = (last.lost ?? 0) > 0 ? `its last drill lost ${String(last.lost)} acknowledged commits` : `its last drill ${last.status}`;
    } else if (now.getTime() - new Date(last.finishedAt).getTime() > maxAgeMs) {
      verdict = 'stale';
      note = `its last drill is older than ${String(drillMaxAgeDays())} days`;
    }
    return { herdId: r.herd_id, herd: r.herd, environment: r.environment, sites: r.sites, verdict, note, last };
  });
}
