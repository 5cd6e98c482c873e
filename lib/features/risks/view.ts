// The risks as people and scripts read them: the Risks page, the dashboard's counts, GET /api/v1/risks,
// the metric. Always within the environments the reader may see (null: every one).
import { sql, type SQL } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { KIND_INFO, printable, RISK_KINDS, type RiskKind, type Severity } from './find';

export interface RiskFix {
  /** The action that fixes it (the confirmation page plans it); null: a person's work, said in `how`. */
  action: string | null;
  label: string;
  how: string;
  /** The confirmation page's address, for this finding's target (null: no action). */
  href: string | null;
}

export interface RiskTrend {
  /** worse, better or steady since the first measure of the last day (new: measured once). */
  direction: 'worse' | 'better' | 'steady' | 'new';
  /** The change a day at that pace (in the finding's unit); null when measured once. */
  perDay: number | null;
}

export interface RiskView {
  id: number;
  environmentId: number;
  environment: string;
  herdId: number | null;
  herd: string | null;
  instanceId: number | null;
  instance: string | null;
  kind: RiskKind;
  kindLabel: string;
  subject: string;
  severity: Severity;
  measure: number;
  unit: string;
  detail: string;
  facts: Record<string, unknown>;
  since: Date;
  seenAt: Date;
  trend: RiskTrend;
  fix: RiskFix;
  counted: boolean;
  acknowledged: { by: string; reason: string; until: Date; measure: number; step: number | null } | null;
}

export interface RiskFilters {
  environment?: number;
  herd?: number;
  severity?: Severity;
  kind?: RiskKind;
  /** Only those that count (not acknowledged), or only acknowledged ones. */
  counted?: boolean;
}

const DAY_MS = 86_400_000;

export function trendOf(kind: RiskKind, samples: [number, number][]): RiskTrend {
  const last = samples[samples.length - 1];
  if (!last || samples.length < 2) return { direction: 'new', perDay: null };
  const from = samples.find(([at]) => at >= last[0] - DAY_MS) ?? samples[0];
  if (!from || from[0] === last[0]) return { direction: 'new', perDay: null };
  const perDay = ((last[1] - from[1]) / (last[0] - from[0])) * DAY_MS;
  const worse = KIND_INFO[kind].lowerIsWorse ? -perDay : perDay;
  const still = Math.abs(last[1] - from[1]) <= Math.abs(from[1]) * 0.001;
  return { direction: still ? 'steady' : worse > 0 ? 'worse' : 'better', perDay };
}

/** A fact as words ('?' when it is not a plain value). */
const said = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '?');

const planHref = (action: string, ids: number[], params: Record<string, string> = {}) =>
  `/operations/new?action=${encodeURIComponent(action)}&ids=${ids.join(',')}${Object.entries(params)
    .map(([k, v]) => `&p.${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('')}&from=risks`;

/** Each kind's fix: the action (with the finding's target and parameters), or what a person does. */
/**
 * The size Grow data volume is offered with: half again what the filesystem is, or what holds sixty days
 * of its growth beyond what it uses now, whichever is more (a whole GiB, at least one more).
 */
export function suggestedGiB(facts: Record<string, unknown>): number {
  const GiB = 1024 ** 3;
  const total = Number(facts.totalBytes) || 0;
  const free = Number(facts.freeBytes) || 0;
  const growth = Number(facts.growthPerDay) || 0;
  const want = Math.max(total * 1.5, total - free + growth * 60);
  return Math.max(Math.ceil(want / GiB), Math.ceil(total / GiB) + 1);
}

export function fixOf(r: {
  kind: RiskKind;
  herdId: number | null;
  instanceId: number | null;
  subject: string;
  facts: Record<string, unknown>;
}): RiskFix {
  const herd = r.herdId === null ? [] : [r.herdId];
  const none = (label: string, how: string): RiskFix => ({ action: null, label, how, href: null });
  // A name no form takes (control characters): said, not linked.
  if (printable(r.subject) !== r.subject)
    return none('Fix it by hand', `its name has control characters or text-direction marks: ${printable(r.subject)}`);
  switch (r.kind) {
    case 'xid_age':
    case 'mxid_age':
      if (r.facts.allowConn === false)
        return none(
          'Let autovacuum freeze it',
          `${r.subject} takes no connection: autovacuum freezes it; find what holds it back (a long transaction, a slot)`,
        );
      return {
        action: 'vacuum-freeze',
        label: 'Vacuum freeze',
        how: `VACUUM (FREEZE) of the oldest tables of ${said(r.facts.database ?? r.subject)}; then look for what held vacuum back (a long transaction, a slot)`,
        href: planHref('vacuum-freeze', herd, { database: r.subject }),
      };
    case 'slot':
      return r.facts.active
        ? none(
            'Find its consumer',
            `the slot is in use: its consumer (pid ${said(r.facts.activePid)}) is behind; make it catch up, or drop the slot once it is stopped`,
          )
        : {
            action: 'drop-slot',
            label: 'Drop the slot',
            how: 'refused while any replica of the herd names it, or does not answer',
            href: r.instanceId === null ? null : planHref('drop-slot', [r.instanceId], { slot: r.subject }),
          };
    case 'long_transaction':
      return {
        action: 'end-session',
        label: 'End the session',
        how: 'pg_terminate_backend, only if it is still that session',
        href: r.instanceId === null ? null : planHref('end-session', [r.instanceId], { session: r.subject }),
      };
    case 'certificate':
      if (r.facts.endpoint !== undefined || r.instanceId === null)
        return none(
          'Renew the certificate',
          "issue a new one from the environment's CA, put it in place and reload (PgBouncer) or restart (Patroni)",
        );
      return {
        action: 'rotate-certificate',
        label: 'Rotate the certificate',
        how: "a new one from the environment's CA (the key made on the host), put in place and reloaded",
        href: planHref('rotate-certificate', [r.instanceId]),
      };
    case 'single_member':
    case 'one_site':
      return {
        action: 'add-replica',
        label: 'Add a replica',
        how: 'a replica in another zone or site',
        href: planHref('add-replica', herd),
      };
    case 'no_dr_site':
      return {
        action: 'add-replica',
        label: 'Add a replica',
        how: `a replica in ${Array.isArray(r.facts.others) ? r.facts.others.map(said).join(' or ') : 'another site'}, the DR side`,
        href: planHref('add-replica', herd),
      };
    case 'checksums_off':
      return none('Enable checksums', 'pg_checksums --enable on a stopped replica, then switch over to it and do the others');
    case 'fsync_off':
    case 'full_page_writes_off':
      return {
        action: 'apply-settings',
        label: 'Apply settings',
        how: 'set it on in the parameter group, then apply it',
        href: planHref('apply-settings', herd),
      };
    case 'disk_full_soon':
    case 'disk_low':
      if (r.facts.filesystem !== 'data' || r.instanceId === null)
        return none(
          'Grow the volume',
          'grow the WAL volume by hand (EC2 ModifyVolume, then its filesystem), or find what fills it (a slot keeping WAL, an archive that fails)',
        );
      return {
        action: 'grow-volume',
        label: 'Grow the volume',
        how: 'EBS ModifyVolume, then the filesystem on the host (Postgres keeps running); or find what fills it (a slot keeping WAL, a table bloating)',
        href: planHref('grow-volume', [r.instanceId], { sizeGiB: String(suggestedGiB(r.facts)) }),
      };
    case 'major_eol':
      return {
        action: 'upgrade-major',
        label: 'Upgrade the major',
        how: 'a blue/green major upgrade',
        href: planHref('upgrade-precheck', herd),
      };
    case 'minor_behind':
      return { action: 'upgrade-minor', label: 'Minor upgrade', how: 'a rolling minor upgrade', href: planHref('upgrade-minor', herd) };
  }
}

type Row = {
  id: string | number;
  environment_id: number;
  environment: string;
  herd_id: number | null;
  herd: string | null;
  instance_id: string | number | null;
  instance: string | null;
  kind: RiskKind;
  subject: string;
  severity: Severity;
  measure: number;
  unit: string;
  detail: string;
  facts: Record<string, unknown>;
  since: Date;
  seen_at: Date;
  samples: [number, number][];
  counted: boolean;
  ack_by: string | null;
  ack_reason: string | null;
  ack_until: Date | null;
  ack_measure: number | null;
  ack_step: number | null;
};

const scope = (environmentIds: number[] | null): SQL =>
  environmentIds === null ? sql`true` : sql`r.environment_id = ANY(${sql.param(environmentIds)}::int[])`;

function where(environmentIds: number[] | null, f: RiskFilters): SQL {
  const parts = [scope(environmentIds)];
  if (f.environment !== undefined) parts.push(sql`r.environment_id = ${f.environment}`);
  if (f.herd !== undefined) parts.push(sql`r.herd_id = ${f.herd}`);
  if (f.severity) parts.push(sql`r.severity = ${f.severity}`);
  if (f.kind) parts.push(sql`r.kind = ${f.kind}`);
  if (f.counted !== undefined) parts.push(sql`r.counted = ${f.counted}`);
  return sql.join(parts, sql` AND `);
}

/** The risks, critical first, then by environment, herd and kind. */
export async function listRisks(db: Queries, environmentIds: number[] | null, f: RiskFilters = {}, limit = 1000): Promise<RiskView[]> {
  if (environmentIds !== null && !environmentIds.length) return [];
  const r = await db.execute<Row>(sql`
    SELECT r.id, r.environment_id, e.name AS environment, r.herd_id, h.name AS herd, r.instance_id,
      CASE WHEN i.id IS NULL THEN NULL ELSE coalesce(nullif(s.hostname, ''), s.address) || ':' || i.port END AS instance,
      r.kind, r.subject, r.severity, r.measure, r.unit, r.detail, r.facts, r.since, r.seen_at, r.samples, r.counted,
      r.ack_by, r.ack_reason, r.ack_until, r.ack_measure, r.ack_step
    FROM risks r JOIN environments e ON e.id = r.environment_id
    LEFT JOIN herds h ON h.id = r.herd_id
    LEFT JOIN instances i ON i.id = r.instance_id LEFT JOIN servers s ON s.id = i.server_id
    WHERE ${where(environmentIds, f)}
    ORDER BY r.severity = 'critical' DESC, e.name, h.name, r.kind, r.subject LIMIT ${limit}`);
  return r.rows.map((x) => {
    const instanceId = x.instance_id === null ? null : Number(x.instance_id);
    return {
      id: Number(x.id),
      environmentId: x.environment_id,
      environment: x.environment,
      herdId: x.herd_id,
      herd: x.herd,
      instanceId,
      instance: x.instance,
      kind: x.kind,
      kindLabel: (KIND_INFO as Partial<Record<string, { label: string }>>)[x.kind]?.label ?? x.kind,
      subject: x.subject,
      severity: x.severity,
      measure: x.measure,
      unit: x.unit,
      detail: x.detail,
      facts: x.facts,
      since: new Date(x.since),
      seenAt: new Date(x.seen_at),
      trend: trendOf(x.kind, x.samples),
      fix: fixOf({ kind: x.kind, herdId: x.herd_id, instanceId, subject: x.subject, facts: x.facts }),
      counted: x.counted,
      acknowledged:
        x.ack_until && x.ack_by
          ? { by: x.ack_by, reason: x.ack_reason ?? '', until: new Date(x.ack_until), measure: x.ack_measure ?? 0, step: x.ack_step }
          : null,
    };
  });
}

export interface RiskCount {
  environmentId: number;
  environment: string;
  kind: RiskKind;
  severity: Severity;
  /** Those that count (not acknowledged). */
  count: number;
  acknowledged: number;
}

/** How many risks of each kind and severity each environment has (the dashboard, the metric, the herds facet). */
export async function riskCounts(db: Queries, environmentIds: number[] | null): Promise<RiskCount[]> {
  if (environmentIds !== null && !environmentIds.length) return [];
  const r = await db.execute<{
    environment_id: number;
    environment: string;
    kind: RiskKind;
    severity: Severity;
    n: number;
    acked: number;
  }>(sql`
    SELECT r.environment_id, e.name AS environment, r.kind, r.severity,
      count(*) FILTER (WHERE r.counted)::int AS n, count(*) FILTER (WHERE NOT r.counted)::int AS acked
    FROM risks r JOIN environments e ON e.id = r.environment_id
    WHERE ${scope(environmentIds)}
    GROUP BY r.environment_id, e.name, r.kind, r.severity ORDER BY e.name, r.kind, r.severity`);
  return r.rows.map((x) => ({
    environmentId: x.environment_id,
    environment: x.environment,
    kind: x.kind,
    severity: x.severity,
    count: x.n,
    acknowledged: x.acked,
  }));
}

export const isRiskKind = (k: string): k is RiskKind => (RISK_KINDS as readonly string[]).includes(k);
