import { describe, expect, it } from 'vitest';
import type { RiskReading } from '@/lib/fleet/risks/read-risks';
import { countsDespiteAck, findRisks, type HerdInput, type MemberInput } from './find';
import { DEFAULT_THRESHOLDS, thresholdsOf, thresholdsSchema } from '@/lib/fleet/risks/thresholds';
import { nextSamples } from './judge';
import { trendOf } from './view';

const NOW = new Date('2026-11-28T12:00:00Z');
const reading = (over: Partial<RiskReading> = {}): RiskReading => ({
  freezeMaxAge: 200_000_000,
  multixactFreezeMaxAge: 400_000_000,
  dataChecksums: true,
  fsync: true,
  fullPageWrites: true,
  databases: [{ name: 'app', xidAge: 1000, mxidAge: 10 }],
  slots: [],
  sessions: [],
  certificateNotAfter: '2027-11-28T00:00:00.000Z',
  certificateSubject: 'db1',
  ...over,
});
const member = (over: Partial<MemberInput> = {}): MemberInput => ({
  instanceId: 1,
  label: 'db1:5432',
  role: 'primary',
  state: 'running',
  site: 'dc-east',
  zone: '',
  serverVersionNum: 170004,
  pgVersion: 17,
  reading: reading(),
  ...over,
});
const herd = (members: MemberInput[], over: Partial<HerdInput> = {}): HerdInput => ({
  herdId: 7,
  environmentId: 3,
  name: 'billing',
  controlDriver: 'pg_ctl',
  members,
  minor: null,
  ...over,
});
const two = [member(), member({ instanceId: 2, label: 'db2:5432', role: 'replica', site: 'dc-west' })];
const find = (h: HerdInput[], t = DEFAULT_THRESHOLDS) => findRisks(h, () => t, NOW);
const kinds = (h: HerdInput[]) => find(h).map((f) => f.kind);

describe('findRisks', () => {
  it('finds nothing in a healthy herd of two across sites', () => {
    expect(find([herd(two)])).toEqual([]);
  });

  it('judges ages on the primary only, warning then critical', () => {
    const old = reading({ databases: [{ name: 'app', xidAge: 600_000_000, mxidAge: 1_300_000_000 }] });
    const f = find([herd([member({ reading: old }), member({ instanceId: 2, role: 'replica', site: 'dc-west', reading: old })])]);
    expect(f.map((x) => [x.kind, x.severity, x.instanceId])).toEqual([
      ['xid_age', 'warning', 1],
      ['mxid_age', 'critical', 1],
    ]);
    expect(f[0]!.detail).toContain('27.9% of the way to wraparound');
  });

  it('names an inactive slot however little it keeps, and an active one only past the bound or about to lose its WAL', () => {
    const slot = {
      name: 's',
      type: 'physical' as const,
      active: false,
      activePid: null,
      database: null,
      walStatus: 'reserved',
      safeWalSize: null,
      retained: 1024,
      behind: null,
      xminAge: null,
      catalogXminAge: null,
    };
    const find1 = (s: typeof slot) =>
      find([herd([member({ reading: reading({ slots: [s] }) }), two[1]!])]).filter((x) => x.kind === 'slot');
    expect(find1(slot).map((x) => x.severity)).toEqual(['warning']);
    expect(find1({ ...slot, active: true })).toEqual([]);
    expect(find1({ ...slot, active: true, walStatus: 'unreserved' }).map((x) => x.severity)).toEqual(['critical']);
    expect(find1({ ...slot, retained: 30 * 1024 ** 3 }).map((x) => x.severity)).toEqual(['critical']);
  });

  it('says a herd of one, and every member in the primary’s site, but not of RDS', () => {
    expect(kinds([herd([member()])])).toEqual(['single_member']);
    expect(kinds([herd([member(), member({ instanceId: 2, role: 'replica' })])])).toEqual(['one_site']);
    expect(kinds([herd([member()], { controlDriver: 'rds' })])).toEqual([]);
    // A zone counts before a site.
    expect(kinds([herd([member({ zone: 'a' }), member({ instanceId: 2, role: 'replica', zone: 'b' })])])).toEqual([]);
  });

  it("says a PgBouncer's or Patroni REST certificate near its end, on its herd", () => {
    const soon = new Date(NOW.getTime() + 5 * 86_400_000).toISOString();
    const later = new Date(NOW.getTime() + 90 * 86_400_000).toISOString();
    const f = find([
      herd(two, {
        endpointCertificates: [
          { endpoint: 'PgBouncer pool1:6432', kind: 'pgbouncer', instanceId: null, notAfter: soon, subject: 'pool1' },
          { endpoint: 'Patroni REST db2:8008', kind: 'patroni', instanceId: 2, notAfter: later, subject: null },
        ],
      }),
    ]);
    expect(f.map((x) => [x.kind, x.subject, x.severity, x.measure, x.instanceId])).toEqual([
      ['certificate', 'PgBouncer pool1:6432', 'critical', 5, null],
    ]);
    expect(f[0]!.detail).toMatch(/^the certificate of PgBouncer pool1:6432 \(pool1\) expires in 5\.0 days/);
  });

  it('says a herd with no replica in the other site of its environment, once, and not where there is none', () => {
    const zoned = [member({ zone: 'a' }), member({ instanceId: 2, role: 'replica', zone: 'b' })];
    const f = find([herd(zoned, { environmentSites: ['dc-east', 'dc-west'] })]);
    expect(f.map((x) => [x.kind, x.severity, x.detail])).toEqual([
      [
        'no_dr_site',
        'warning',
        "herd billing has no replica outside dc-east, its primary's site: a DR failover to dc-west has none to promote",
      ],
    ]);
    // The environment has one site: no DR side to want.
    expect(kinds([herd(zoned, { environmentSites: ['dc-east'] })])).toEqual([]);
    // A replica in the other site: none.
    expect(kinds([herd(two, { environmentSites: ['dc-east', 'dc-west'] })])).toEqual([]);
    // All in one zone: one_site says it, not both.
    expect(kinds([herd([member(), member({ instanceId: 2, role: 'replica' })], { environmentSites: ['dc-east', 'dc-west'] })])).toEqual([
      'one_site',
    ]);
  });

  it('says settings that lose data, and a major near or past its end of life', () => {
    const f = find([herd([member({ reading: reading({ fsync: false, dataChecksums: false }) }), two[1]!])]);
    expect(f.map((x) => [x.kind, x.severity])).toEqual([
      ['checksums_off', 'warning'],
      ['fsync_off', 'critical'],
    ]);
    const eol = find([herd(two.map((m) => ({ ...m, serverVersionNum: 140018 })))]);
    expect(eol.map((x) => [x.kind, x.severity, x.measure])).toEqual([['major_eol', 'critical', -17]]);
    const near = find([herd(two.map((m) => ({ ...m, serverVersionNum: 150010 })))], { ...DEFAULT_THRESHOLDS, eolWarningDays: 400 });
    expect(near.map((x) => [x.kind, x.severity])).toEqual([['major_eol', 'warning']]);
  });

  it('counts a certificate in days left, critical at the bound and once expired', () => {
    const at = (days: number) => new Date(NOW.getTime() + days * 86_400_000).toISOString();
    const c = (days: number) =>
      find([herd([member({ reading: reading({ certificateNotAfter: at(days) }) }), two[1]!])]).filter((x) => x.kind === 'certificate');
    expect(c(40)).toEqual([]);
    expect(c(20).map((x) => x.severity)).toEqual(['warning']);
    expect(c(5).map((x) => [x.severity, x.measure])).toEqual([['critical', 5]]);
    expect(c(-2)[0]!.detail).toMatch(/expired 2 days ago/);
  });

  it('a session is named by its pid and its start: a pid used again is another finding', () => {
    const s = {
      pid: 42,
      user: 'app',
      database: 'app',
      state: 'idle in transaction',
      application: '',
      client: null,
      xactSeconds: 7200,
      stateSeconds: 7000,
      xminAge: 5,
      query: 'UPDATE t',
      backendStart: '2026-11-28T10:00:00Z',
    };
    const f = find([herd([member({ reading: reading({ sessions: [s] }) }), two[1]!])]);
    expect(f.map((x) => [x.kind, x.subject, x.severity])).toEqual([['long_transaction', '42@2026-11-28T10:00:00Z', 'warning']]);
  });
});

describe('acknowledgements', () => {
  const ack = { until: new Date(NOW.getTime() + 3_600_000), measure: 100, step: 50, severity: 'warning' as const };
  it('hold until the expiry, the step or a warning turned critical', () => {
    expect(countsDespiteAck({ kind: 'slot', severity: 'warning', measure: 149 }, ack, NOW)).toBe(false);
    expect(countsDespiteAck({ kind: 'slot', severity: 'warning', measure: 150 }, ack, NOW)).toBe(true);
    expect(countsDespiteAck({ kind: 'slot', severity: 'critical', measure: 100 }, ack, NOW)).toBe(true);
    expect(countsDespiteAck({ kind: 'slot', severity: 'warning', measure: 100 }, { ...ack, until: NOW }, NOW)).toBe(true);
    expect(countsDespiteAck({ kind: 'slot', severity: 'warning', measure: 1e12 }, { ...ack, step: null }, NOW)).toBe(false);
  });
  it('count days left the other way', () => {
    expect(countsDespiteAck({ kind: 'certificate', severity: 'warning', measure: 60 }, ack, NOW)).toBe(false);
    expect(countsDespiteAck({ kind: 'certificate', severity: 'warning', measure: 50 }, ack, NOW)).toBe(true);
  });
});

describe('thresholds', () => {
  it('take what an environment sets over the defaults, and refuse what cannot hold', () => {
    expect(thresholdsOf({ xidAgeWarning: 10, nonsense: 3, slotRetainedWarningBytes: -1 })).toEqual({
      ...DEFAULT_THRESHOLDS,
      xidAgeWarning: 10,
    });
    expect(thresholdsSchema.safeParse({ xidAgeWarning: 10 }).success).toBe(true);
    expect(thresholdsSchema.safeParse({ xidAgeCritical: 10 }).success).toBe(false);
    expect(thresholdsSchema.safeParse({ certificateCriticalDays: 60 }).success).toBe(false);
    expect(thresholdsSchema.safeParse({ bogus: 1 }).success).toBe(false);
  });
});

describe('samples and trend', () => {
  it('keeps one measure an hour and the last, and reads the last day', () => {
    const h = 3_600_000;
    let s: [number, number][] = [];
    for (let i = 0; i <= 12; i++) s = nextSamples(s, i * 600_000, i);
    expect(s.map(([at]) => at / 600_000)).toEqual([0, 6, 12]);
    expect(trendOf('slot', s)).toEqual({ direction: 'worse', perDay: (24 * 12) / 2 });
    expect(
      trendOf('certificate', [
        [0, 10],
        [h, 9],
      ]).direction,
    ).toBe('worse');
    expect(trendOf('slot', [[0, 10]]).direction).toBe('new');
  });
});

describe('fixes', () => {
  it('send template0 to autovacuum and a name with control characters to a person, never to a form', async () => {
    const { fixOf } = await import('./view');
    const base = { herdId: 3, instanceId: 9, facts: {} };
    expect(fixOf({ ...base, kind: 'xid_age', subject: 'app', facts: { allowConn: true } }).action).toBe('vacuum-freeze');
    expect(fixOf({ ...base, kind: 'xid_age', subject: 'template0', facts: { allowConn: false } })).toMatchObject({
      action: null,
      href: null,
    });
    expect(fixOf({ ...base, kind: 'slot', subject: 'bad\u001b[31m', facts: {} })).toMatchObject({ action: null, href: null });
  });
});
