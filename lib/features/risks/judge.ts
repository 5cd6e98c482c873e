// The risks judge (a worker chore, every PGHERD_RISKS_JUDGE_MS): every risk found now from the last
// readings and the inventory (find.ts), kept in `risks` by its key. A finding new (or turned critical) is
// told to the webhooks as risk.raised, one gone as risk.cleared, in the same transaction as the rows
// (the outbox). Each finding keeps its last measures (at most one an hour, and the last): its trend.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { RiskReading } from '@/lib/fleet/risks/read-risks';
import { setting } from '@/lib/settings/settings';
import { pendingMaintenance } from '@/lib/features/upgrades/pending';
import { countsDespiteAck, findRisks, type Finding, type HerdInput, type Severity } from './find';
import { ignoredKinds, thresholdsOf, type Thresholds } from '@/lib/fleet/risks/thresholds';

export interface JudgeSummary {
  found: number;
  raised: number;
  cleared: number;
  ms: number;
}

type MemberRow = {
  id: string | number;
  herd_id: number;
  environment_id: number;
  herd: string;
  control_driver: string;
  role: string;
  state: string;
  site: string;
  zone: string;
  server_version_num: number | null;
  pg_version: number;
  label: string;
  reading: RiskReading | null;
};

/** A reading older than this many read intervals is not judged (its instance stopped answering: fleet health says so). */
const STALE_READS = 5;
const HOUR_MS = 3_600_000;
/** A week of hourly measures, and the last. */
const MAX_SAMPLES = 7 * 24 + 1;

/** What the judge reads: every herd with its members and their last readings, and each environment's thresholds. */
export async function loadRiskInputs(
  db: Db,
): Promise<{ herds: HerdInput[]; thresholds: Map<number, Thresholds>; ignored: Map<number, Set<string>> }> {
  const staleMs = STALE_READS * setting('PGHERD_RISKS_READ_MS');
  const rows = await db.execute<MemberRow>(sql`
    SELECT i.id, i.herd_id, h.environment_id, h.name AS herd, h.control_driver, i.role, i.state, i.site, i.zone,
      i.server_version_num, i.pg_version, coalesce(nullif(s.hostname, ''), s.address) || ':' || i.port AS label,
      r.reading
    FROM instances i JOIN herds h ON h.id = i.herd_id JOIN servers s ON s.id = i.server_id
    LEFT JOIN risk_readings r ON r.instance_id = i.id AND r.read_at > now() - ${staleMs} * interval '1 millisecond'
    ORDER BY i.herd_id, i.id`);
  const minor = new Map((await pendingMaintenance(db, null)).map((p) => [p.herdId, { behind: p.behind, target: p.target }]));
  const herds = new Map<number, HerdInput>();
  for (const r of rows.rows) {
    let h = herds.get(r.herd_id);
    if (!h)
      herds.set(
        r.herd_id,
        (h = {
          herdId: r.herd_id,
          environmentId: r.environment_id,
          name: r.herd,
          controlDriver: r.control_driver,
          members: [],
          minor: minor.get(r.herd_id) ?? null,
        }),
      );
    h.members.push({
      instanceId: Number(r.id),
      label: r.label,
      role: r.role,
      state: r.state,
      site: r.site,
      zone: r.zone,
      serverVersionNum: r.server_version_num,
      pgVersion: r.pg_version,
      reading: r.reading,
    });
  }
  // The certificates of their PgBouncers and Patroni REST APIs, as last read.
  const certs = await db.execute<{
    herd_id: number;
    kind: string;
    instance_id: string | null;
    endpoint: string;
    not_after: string;
    subject: string | null;
  }>(sql`
    SELECT herd_id, kind, instance_id, endpoint, not_after::text, subject FROM tls_readings WHERE not_after IS NOT NULL ORDER BY key`);
  for (const c of certs.rows) {
    const h = herds.get(c.herd_id);
    if (h)
      (h.endpointCertificates ??= []).push({
        endpoint: c.endpoint,
        kind: c.kind,
        instanceId: c.instance_id === null ? null : Number(c.instance_id),
        notAfter: new Date(c.not_after).toISOString(),
        subject: c.subject,
      });
  }
  // The sites each environment's members are in: a DR pair's other side.
  const sitesOf = new Map<number, Set<string>>();
  for (const h of herds.values())
    for (const m of h.members) if (m.site) sitesOf.set(h.environmentId, (sitesOf.get(h.environmentId) ?? new Set()).add(m.site));
  for (const h of herds.values()) h.environmentSites = [...(sitesOf.get(h.environmentId) ?? [])].sort();
  // Each member's filesystems as its agent last said (within the hour), and their growth a day over the
  // last week of hourly samples (three at least: two hours of history).
  const disks = await db.execute<{
    id: string | number;
    data_free: string | number;
    data_total: string | number;
    wal_free: string | number | null;
    wal_total: string | number | null;
    data_growth: string | number | null;
    wal_growth: string | number | null;
  }>(sql`
    SELECT d.instance_id AS id, d.data_free, d.data_total, d.wal_free, d.wal_total,
      CASE WHEN g.n >= 3 THEN g.data_growth END AS data_growth, CASE WHEN g.n >= 3 THEN g.wal_growth END AS wal_growth
    FROM disk_readings d
    LEFT JOIN LATERAL (SELECT count(*) AS n, regr_slope(s.data_used, extract(epoch FROM s.hour)) * 86400 AS data_growth,
        regr_slope(s.wal_used, extract(epoch FROM s.hour)) * 86400 AS wal_growth
      FROM disk_samples s WHERE s.instance_id = d.instance_id AND s.hour > now() - interval '7 days') g ON true
    WHERE d.read_at > now() - interval '1 hour'`);
  const diskOf = new Map(
    disks.rows.map((d) => [
      Number(d.id),
      {
        data: {
          freeBytes: Number(d.data_free),
          totalBytes: Number(d.data_total),
          growthPerDay: d.data_growth === null ? null : Number(d.data_growth),
        },
        wal:
          d.wal_free === null || d.wal_total === null
            ? null
            : {
                freeBytes: Number(d.wal_free),
                totalBytes: Number(d.wal_total),
                growthPerDay: d.wal_growth === null ? null : Number(d.wal_growth),
              },
      },
    ]),
  );
  for (const h of herds.values()) for (const m of h.members) m.disk = diskOf.get(m.instanceId) ?? null;
  const envs = await db.execute<{ id: number; t: Record<string, unknown> }>(sql`SELECT id, risk_thresholds AS t FROM environments`);
  return {
    herds: [...herds.values()],
    thresholds: new Map(envs.rows.map((e) => [e.id, thresholdsOf(e.t)])),
    ignored: new Map(envs.rows.map((e) => [e.id, ignoredKinds(e.t)])),
  };
}

type KeptRow = {
  id: string | number;
  key: string;
  severity: Severity;
  samples: [number, number][];
  ack_until: Date | null;
  ack_measure: number | null;
  ack_step: number | null;
  ack_severity: Severity | null;
};

/** The measures kept: one an hour, and the last (replacing a last one less than an hour after the one before it). */
export function nextSamples(samples: [number, number][], at: number, measure: number): [number, number][] {
  const out = [...samples];
  const before = out[out.length - 2];
  const last = out[out.length - 1];
  // The last one stands for "now" until it is an hour past the one before it; then it stays, and the next is "now".
  if (before && last && last[0] - before[0] < HOUR_MS) out[out.length - 1] = [at, measure];
  else out.push([at, measure]);
  return out.slice(-MAX_SAMPLES);
}

/** Words for the webhook: the finding and where. */
const told = (f: Finding) => `${f.severity}: ${f.detail}`;

/** Keeps what `findings` says of the fleet (every finding of every herd: a key missing is cleared). */
export async function keepFindings(db: Db, findings: Finding[], now = new Date()): Promise<{ raised: number; cleared: number }> {
  return db.transaction(async (tx) => {
    // One judge at a time (two workers' passes would raise the same finding twice).
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext('pgherd.risks.judge'))`);
    const kept = new Map(
      (
        await tx.execute<KeptRow>(sql`
          SELECT id, key, severity, samples, ack_until, ack_measure, ack_step, ack_severity FROM risks`)
      ).rows.map((r) => [r.key, r]),
    );
    const at = now.getTime();
    const rows = findings.map((f) => {
      const k = kept.get(f.key);
      const acked = k?.ack_until && k.ack_measure !== null;
      const counted = !acked
        ? true
        : countsDespiteAck(
            f,
            {
              until: new Date(k.ack_until as Date),
              measure: k.ack_measure as number,
              step: k.ack_step,
              severity: k.ack_severity ?? 'warning',
            },
            now,
          );
      return {
        ...f,
        samples: nextSamples(k?.samples ?? [], at, f.measure),
        counted,
        isNew: !k,
        escalated: k?.severity === 'warning' && f.severity === 'critical',
      };
    });
    // Those kept, updated; the new ones inserted (an upsert of every finding would take a sequence value
    // from risks_id_seq each pass, and ids are for people and scripts to name a finding by).
    const kinds = sql`x(key text, "environmentId" int, "herdId" int, "instanceId" bigint, kind text, subject text, severity text,
      measure float8, unit text, detail text, facts jsonb, samples jsonb, counted boolean)`;
    const old = rows.filter((r) => !r.isNew);
    const fresh = rows.filter((r) => r.isNew);
    if (old.length)
      await tx.execute(sql`
        UPDATE risks r SET environment_id = x."environmentId", herd_id = x."herdId", severity = x.severity, measure = x.measure,
          unit = x.unit, detail = x.detail, facts = x.facts, samples = x.samples, counted = x.counted, seen_at = now()
        FROM jsonb_to_recordset(${JSON.stringify(old)}::jsonb) AS ${kinds}
        WHERE r.key = x.key`);
    if (fresh.length)
      await tx.execute(sql`
        INSERT INTO risks (key, environment_id, herd_id, instance_id, kind, subject, severity, measure, unit, detail, facts, samples, counted, since, seen_at)
        SELECT x.key, x."environmentId", x."herdId", x."instanceId", x.kind, x.subject, x.severity, x.measure, x.unit, x.detail,
          x.facts, x.samples, x.counted, now(), now()
        FROM jsonb_to_recordset(${JSON.stringify(fresh)}::jsonb) AS ${kinds}
        WHERE EXISTS (SELECT 1 FROM herds h WHERE h.id = x."herdId")
          AND (x."instanceId" IS NULL OR EXISTS (SELECT 1 FROM instances i WHERE i.id = x."instanceId"))
        ON CONFLICT (key) DO NOTHING`);
    const found = new Set(findings.map((f) => f.key));
    const gone = [...kept.values()].filter((k) => !found.has(k.key)).map((k) => Number(k.id));
    const clearedRows = gone.length
      ? (
          await tx.execute<{ herd_id: number | null; detail: string; severity: string }>(sql`
            DELETE FROM risks WHERE id = ANY(${sql.param(gone)}::bigint[]) RETURNING herd_id, detail, severity`)
        ).rows
      : [];
    const raised = rows.filter((r) => r.isNew || r.escalated);
    const events = [
      ...raised.map((f) => ({ kind: 'risk.raised', herdId: f.herdId, detail: told(f) })),
      ...clearedRows.map((c) => ({ kind: 'risk.cleared', herdId: c.herd_id, detail: `no longer found (was ${c.severity}): ${c.detail}` })),
    ];
    if (events.length)
      await tx.execute(sql`
        INSERT INTO notification_events (kind, herd_id, detail)
        SELECT x.kind, x."herdId", x.detail FROM jsonb_to_recordset(${JSON.stringify(events)}::jsonb) AS x(kind text, "herdId" int, detail text)`);
    return { raised: raised.length, cleared: clearedRows.length };
  });
}

/** One pass of the judge. */
export async function judgeRisks(db: Db, now = new Date()): Promise<JudgeSummary> {
  const t0 = performance.now();
  // A week and a day of disk samples is what the growth reads (disk_samples_hour_idx).
  await db.execute(sql`DELETE FROM disk_samples WHERE hour < now() - interval '8 days'`);
  const { herds, thresholds, ignored } = await loadRiskInputs(db);
  const findings = findRisks(herds, (id) => thresholds.get(id) ?? thresholdsOf(null), now).filter(
    (f) => !ignored.get(f.environmentId)?.has(f.kind),
  );
  const r = await keepFindings(db, findings, now);
  return { found: findings.length, ...r, ms: performance.now() - t0 };
}
