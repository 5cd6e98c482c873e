// The risks, found: from what the refresh last read of each member (lib/fleet/risks/read-risks.ts) and
// from the inventory (a herd's shape, its versions), against its environment's thresholds. Pure: the
// judge (judge.ts) loads what this reads and keeps what it finds.
import type { RiskReading } from '@/lib/fleet/risks/read-risks';
import { END_OF_LIFE } from '@/lib/features/upgrades/campaign';
import type { Thresholds } from '@/lib/fleet/risks/thresholds';
import { RISK_KINDS } from '@/lib/fleet/risks/kinds';

export { RISK_KINDS };
export type RiskKind = (typeof RISK_KINDS)[number];
export type Severity = 'warning' | 'critical';

/** What each kind is called, and whether a lower measure is the worse one (days left). */
export const KIND_INFO: Record<RiskKind, { label: string; lowerIsWorse: boolean }> = {
  xid_age: { label: 'Transaction ID age', lowerIsWorse: false },
  mxid_age: { label: 'Multixact ID age', lowerIsWorse: false },
  slot: { label: 'Replication slot', lowerIsWorse: false },
  long_transaction: { label: 'Long transaction', lowerIsWorse: false },
  certificate: { label: 'Certificate expiry', lowerIsWorse: true },
  single_member: { label: 'A herd of one', lowerIsWorse: false },
  one_site: { label: 'Replicas in one site', lowerIsWorse: false },
  no_dr_site: { label: 'No replica in another site', lowerIsWorse: false },
  checksums_off: { label: 'Data checksums off', lowerIsWorse: false },
  fsync_off: { label: 'fsync off', lowerIsWorse: false },
  full_page_writes_off: { label: 'full_page_writes off', lowerIsWorse: false },
  major_eol: { label: 'Major at end of life', lowerIsWorse: true },
  minor_behind: { label: 'Minor release behind', lowerIsWorse: false },
  disk_full_soon: { label: 'Disk full soon', lowerIsWorse: true },
  disk_low: { label: 'Disk space low', lowerIsWorse: true },
};

/** A filesystem as the agent last reported it, and its growth a day over the last week (null: not enough samples). */
export interface FsInput {
  freeBytes: number;
  totalBytes: number;
  growthPerDay: number | null;
}

export interface MemberInput {
  instanceId: number;
  /** host:port, as the inventory names it. */
  label: string;
  role: string;
  state: string;
  site: string;
  zone: string;
  serverVersionNum: number | null;
  pgVersion: number;
  reading: RiskReading | null;
  /** Its data directory's filesystem and pg_wal's, from its agent (null: no agent, or no recent report). */
  disk?: { data: FsInput; wal: FsInput | null } | null;
}

export interface HerdInput {
  herdId: number;
  environmentId: number;
  name: string;
  controlDriver: string;
  members: MemberInput[];
  /** Its pending maintenance: members behind the minor target, and the target (null: nothing newer known). */
  minor: { behind: number; target: string | null } | null;
  /** The sites its environment's members are in (a DR pair needs a replica in another of them). */
  environmentSites?: string[];
  /** Its PgBouncers' and Patroni REST APIs' certificates, as last read (lib/features/risks/certificates.ts). */
  endpointCertificates?: { endpoint: string; kind: string; instanceId: number | null; notAfter: string; subject: string | null }[];
}

export interface Finding {
  key: string;
  environmentId: number;
  herdId: number;
  instanceId: number | null;
  kind: RiskKind;
  subject: string;
  severity: Severity;
  measure: number;
  unit: string;
  detail: string;
  facts: Record<string, unknown>;
}

/** A name from a member as words: control characters and text-direction marks shown as '?' (a log, a terminal, a chat). */
export const printable = (v: string | null | undefined) =>
  (v ?? '?').replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, '?');

const n = (x: number) => Math.round(x).toLocaleString('en-US');
const bytes = (b: number) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = b;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 10 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u] ?? 'B'}`;
};
const duration = (s: number) =>
  s >= 86_400
    ? `${(s / 86_400).toFixed(1)} days`
    : s >= 3600
      ? `${(s / 3600).toFixed(1)} h`
      : s >= 60
        ? `${Math.round(s / 60)} min`
        : `${Math.round(s)} s`;

const DAY_MS = 86_400_000;

/** Days to full at its growth, and its share free, for each filesystem (pg_wal's only where it is another). */
function diskFindings(m: MemberInput, t: Thresholds): Omit<Finding, 'key' | 'environmentId' | 'herdId' | 'instanceId'>[] {
  const d = m.disk;
  if (!d) return [];
  const sameFs = (a: FsInput, b: FsInput) => a.totalBytes === b.totalBytes && Math.abs(a.freeBytes - b.freeBytes) < 64 * 1024 * 1024;
  const fss: [string, FsInput][] = [['data', d.data], ...(d.wal && !sameFs(d.wal, d.data) ? [['wal', d.wal] as [string, FsInput]] : [])];
  const out: Omit<Finding, 'key' | 'environmentId' | 'herdId' | 'instanceId'>[] = [];
  for (const [which, fs] of fss) {
    const what = which === 'data' ? 'data directory' : 'WAL (pg_wal)';
    const pct = (fs.freeBytes / fs.totalBytes) * 100;
    const facts = { filesystem: which, freeBytes: fs.freeBytes, totalBytes: fs.totalBytes, growthPerDay: fs.growthPerDay };
    if (pct <= t.diskFreeWarningPercent)
      out.push({
        kind: 'disk_low',
        subject: which,
        severity: pct <= t.diskFreeCriticalPercent ? 'critical' : 'warning',
        measure: Math.floor(pct * 10) / 10,
        unit: 'percent free',
        detail: `the ${what} of ${m.label} has ${bytes(fs.freeBytes)} free of ${bytes(fs.totalBytes)} (${pct.toFixed(1)}%)`,
        facts,
      });
    if (fs.growthPerDay !== null && fs.growthPerDay > 0) {
      const days = fs.freeBytes / fs.growthPerDay;
      if (days <= t.diskDaysWarning)
        out.push({
          kind: 'disk_full_soon',
          subject: which,
          severity: days <= t.diskDaysCritical ? 'critical' : 'warning',
          measure: Math.floor(days * 10) / 10,
          unit: 'days',
          detail: `the ${what} of ${m.label} is full in ${days.toFixed(1)} days at the last week's growth (${bytes(fs.growthPerDay)} a day; ${bytes(fs.freeBytes)} free)`,
          facts: { ...facts, daysToFull: days },
        });
    }
  }
  return out;
}

function memberFindings(h: HerdInput, m: MemberInput, t: Thresholds, now: Date): Finding[] {
  const out: Finding[] = [];
  const base = { environmentId: h.environmentId, herdId: h.herdId, instanceId: m.instanceId };
  const add = (f: Omit<Finding, 'key' | 'environmentId' | 'herdId' | 'instanceId'>) =>
    out.push({ ...base, key: `${f.kind}:${String(m.instanceId)}:${f.subject}`, ...f });
  for (const f of diskFindings(m, t)) add(f);
  const r = m.reading;
  if (!r) return out;
  // Ages: the primary's (a replica's are the primary's, replayed).
  if (m.role === 'primary')
    for (const d of r.databases) {
      for (const [kind, age, warn, crit, max] of [
        ['xid_age', d.xidAge, t.xidAgeWarning, t.xidAgeCritical, r.freezeMaxAge],
        ['mxid_age', d.mxidAge, t.mxidAgeWarning, t.mxidAgeCritical, r.multixactFreezeMaxAge],
      ] as const) {
        if (age < warn) continue;
        add({
          kind,
          subject: d.name,
          severity: age >= crit ? 'critical' : 'warning',
          measure: age,
          unit: kind === 'xid_age' ? 'transactions' : 'multixacts',
          detail: `database ${printable(d.name)} on ${m.label}: ${kind === 'xid_age' ? 'age(datfrozenxid)' : 'mxid_age(datminmxid)'} ${n(age)}, ${((age / 2 ** 31) * 100).toFixed(1)}% of the way to wraparound (autovacuum forces a freeze from ${n(max)})`,
          facts: { database: d.name, age, freezeMaxAge: max, allowConn: d.allowConn ?? true },
        });
      }
    }
  for (const s of r.slots) {
    const lost = s.walStatus === 'unreserved' || s.walStatus === 'lost';
    const retained = s.retained ?? 0;
    const behind = s.type === 'logical' && (s.behind ?? 0) >= t.logicalBehindWarningBytes;
    if (s.active && !lost && retained < t.slotRetainedWarningBytes && !behind) continue;
    const why = [
      s.active ? null : 'inactive',
      s.retained !== null ? `keeps ${bytes(retained)} of WAL` : 'keeps no WAL yet',
      s.walStatus && s.walStatus !== 'reserved' ? `wal_status ${s.walStatus}` : null,
      s.safeWalSize !== null ? `${bytes(s.safeWalSize)} before it loses its WAL` : null,
      s.type === 'logical' && s.behind !== null ? `its consumer ${bytes(s.behind)} behind` : null,
      s.xminAge ? `holds back vacuum by ${n(s.xminAge)} transactions` : null,
    ].filter(Boolean);
    add({
      kind: 'slot',
      subject: s.name,
      severity: lost || retained >= t.slotRetainedCriticalBytes ? 'critical' : 'warning',
      measure: retained,
      unit: 'bytes',
      detail: `${s.type} slot ${printable(s.name)} on ${m.label}: ${why.join(', ')}`,
      facts: { ...s },
    });
  }
  for (const s of r.sessions) {
    if (s.xactSeconds < t.transactionWarningSeconds) continue;
    const idle = s.state?.startsWith('idle in transaction') ?? false;
    add({
      // The pid and the backend's start name this session and no other (a pid is used again).
      kind: 'long_transaction',
      subject: `${String(s.pid)}@${s.backendStart}`,
      severity: s.xactSeconds >= t.transactionCriticalSeconds ? 'critical' : 'warning',
      measure: s.xactSeconds,
      unit: 'seconds',
      detail: `session ${String(s.pid)} of ${printable(s.user)} on ${printable(s.database)} (${m.label}): a transaction open ${duration(s.xactSeconds)}${idle ? `, idle in it for ${duration(s.stateSeconds ?? 0)}` : ''}${s.xminAge ? `, holding back vacuum by ${n(s.xminAge)} transactions` : ''}`,
      facts: { ...s, idle },
    });
  }
  if (r.certificateNotAfter) {
    const days = (Date.parse(r.certificateNotAfter) - now.getTime()) / DAY_MS;
    if (days <= t.certificateWarningDays)
      add({
        kind: 'certificate',
        subject: 'postgres',
        severity: days <= t.certificateCriticalDays ? 'critical' : 'warning',
        measure: Math.floor(days * 10) / 10,
        unit: 'days',
        detail: `the server certificate of ${m.label}${r.certificateSubject ? ` (${printable(r.certificateSubject)})` : ''} ${days < 0 ? `expired ${Math.ceil(-days)} days ago` : `expires in ${days.toFixed(1)} days`}, on ${r.certificateNotAfter.slice(0, 10)}`,
        facts: { notAfter: r.certificateNotAfter, subject: r.certificateSubject },
      });
  }
  if (!r.dataChecksums)
    add({
      kind: 'checksums_off',
      subject: '',
      severity: 'warning',
      measure: 1,
      unit: '',
      detail: `${m.label} runs without data checksums: a corrupted page is read as good`,
      facts: {},
    });
  if (!r.fsync)
    add({
      kind: 'fsync_off',
      subject: '',
      severity: 'critical',
      measure: 1,
      unit: '',
      detail: `${m.label} runs with fsync off: a crash can corrupt it`,
      facts: {},
    });
  if (!r.fullPageWrites)
    add({
      kind: 'full_page_writes_off',
      subject: '',
      severity: 'critical',
      measure: 1,
      unit: '',
      detail: `${m.label} runs with full_page_writes off: a crash can leave torn pages`,
      facts: {},
    });
  return out;
}

function herdFindings(h: HerdInput, t: Thresholds, now: Date): Finding[] {
  const out: Finding[] = [];
  const add = (f: Omit<Finding, 'key' | 'environmentId' | 'herdId' | 'instanceId'>) =>
    out.push({
      key: `${f.kind}:h${String(h.herdId)}:${f.subject}`,
      environmentId: h.environmentId,
      herdId: h.herdId,
      instanceId: null,
      ...f,
    });
  const primary = h.members.find((m) => m.role === 'primary');
  // RDS keeps its standby itself; a herd being built or torn down has no shape yet.
  if (h.controlDriver !== 'rds' && primary) {
    if (h.members.length === 1)
      add({
        kind: 'single_member',
        subject: '',
        severity: 'warning',
        measure: 1,
        unit: 'members',
        detail: `herd ${h.name} has one member, ${primary.label}: losing it loses the herd`,
        facts: {},
      });
    else {
      const place = (m: MemberInput) => m.zone || m.site;
      const where = place(primary);
      if (where && h.members.every((m) => place(m) === where))
        add({
          kind: 'one_site',
          subject: '',
          severity: 'warning',
          measure: h.members.length,
          unit: 'members',
          detail: `every member of herd ${h.name} is in ${where}, the primary's ${primary.zone ? 'zone' : 'site'}: losing it loses the herd`,
          facts: { where },
        });
      else {
        // Spread over zones but not sites: a DR failover (to another site) has no replica to promote,
        // where the environment has another site to fail over to.
        const others = (h.environmentSites ?? []).filter((s) => s && s !== primary.site);
        if (primary.site && others.length && h.members.every((m) => m.site === primary.site))
          add({
            kind: 'no_dr_site',
            subject: '',
            severity: 'warning',
            measure: 0,
            unit: 'replicas in another site',
            detail: `herd ${h.name} has no replica outside ${primary.site}, its primary's site: a DR failover to ${others.join(' or ')} has none to promote`,
            facts: { site: primary.site, others },
          });
      }
    }
  }
  for (const c of h.endpointCertificates ?? []) {
    const days = (Date.parse(c.notAfter) - now.getTime()) / DAY_MS;
    if (days > t.certificateWarningDays) continue;
    add({
      kind: 'certificate',
      subject: c.endpoint,
      severity: days <= t.certificateCriticalDays ? 'critical' : 'warning',
      measure: Math.floor(days * 10) / 10,
      unit: 'days',
      detail: `the certificate of ${printable(c.endpoint)}${c.subject ? ` (${printable(c.subject)})` : ''} ${days < 0 ? `expired ${Math.ceil(-days)} days ago` : `expires in ${days.toFixed(1)} days`}, on ${c.notAfter.slice(0, 10)}`,
      facts: { notAfter: c.notAfter, subject: c.subject, endpoint: c.endpoint, of: c.kind, memberId: c.instanceId },
    });
  }
  const majors = [...new Set(h.members.map((m) => (m.serverVersionNum ? Math.floor(m.serverVersionNum / 10000) : m.pgVersion)))];
  for (const major of majors) {
    const eol = END_OF_LIFE[major];
    if (!eol) continue;
    const days = Math.floor((Date.parse(eol) - now.getTime()) / DAY_MS);
    if (days > t.eolWarningDays) continue;
    add({
      kind: 'major_eol',
      subject: String(major),
      severity: days < 0 ? 'critical' : 'warning',
      measure: days,
      unit: 'days',
      detail: `herd ${h.name} runs PostgreSQL ${String(major)}, ${days < 0 ? `past its end of life since ${eol} (no more fixes, security ones included)` : `at its end of life on ${eol}, in ${String(days)} days`}`,
      facts: { major, endOfLife: eol },
    });
  }
  if (h.minor && h.minor.behind > 0 && h.minor.target)
    add({
      kind: 'minor_behind',
      subject: h.minor.target,
      severity: 'warning',
      measure: h.minor.behind,
      unit: 'members',
      detail: `${String(h.minor.behind)} member${h.minor.behind === 1 ? '' : 's'} of herd ${h.name} run a minor release older than ${h.minor.target}`,
      facts: { target: h.minor.target },
    });
  return out;
}

/** Every finding of these herds, each herd against its environment's thresholds. */
export function findRisks(herds: HerdInput[], thresholdsOf: (environmentId: number) => Thresholds, now = new Date()): Finding[] {
  return herds.flatMap((h) => {
    const t = thresholdsOf(h.environmentId);
    return [...h.members.flatMap((m) => memberFindings(h, m, t, now)), ...herdFindings(h, t, now)];
  });
}

/**
 * Whether an acknowledged finding counts again: its acknowledgement expired, its measure went past the
 * step it was given (worse by at least that much), or it turned critical from a warning.
 */
export function countsDespiteAck(
  f: { kind: string; severity: Severity; measure: number },
  ack: { until: Date; measure: number; step: number | null; severity: Severity },
  now = new Date(),
): boolean {
  if (ack.until.getTime() <= now.getTime()) return true;
  if (ack.severity === 'warning' && f.severity === 'critical') return true;
  if (ack.step === null) return false;
  const lower = (KIND_INFO as Partial<Record<string, { lowerIsWorse: boolean }>>)[f.kind]?.lowerIsWorse ?? false;
  return lower ? f.measure <= ack.measure - ack.step : f.measure >= ack.measure + ack.step;
}
