// Each action's decision on hand-made herds, with no lab: which candidate, which refusal (by its
// code), which warnings, and which steps, and that the steps the page lists are the steps the worker runs.
import type { BackupPrepared } from '@/lib/actions/steps/backup-steps';
import { appliedForm } from '@/lib/fleet/backups/policy';
import { restoreAction } from '@/lib/actions/backups/restore.action';
import { parseParams, scheduleProblems } from '@/lib/engine/define-action';
import { backupAction } from '@/lib/actions/backups/backup.action';
import { restoreDrillAction } from '@/lib/actions/backups/restore-drill.action';
import type { AppliedPolicy } from '@/lib/fleet/backups/tool';
import { patroniPauseAction, patroniResumeAction } from '@/lib/actions/drivers/patroni/pause.action';
import { describe, expect, it } from 'vitest';
import { herd, member } from '@/lib/testing/refs';
import { configureBackupsAction } from './backups/configure-backups.action';
import {
  checkDriver,
  defineAction,
  type ActionDeps,
  type AnyAction,
  type HerdAction,
  type InstanceAction,
} from '@/lib/engine/define-action';
import type { HerdRef, PoolerRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { planTarget } from '@/lib/engine/plan';
import { Refusal, refuse } from '@/lib/fleet/refusal';
import { actions } from '@/lib/actions/registry';
import { checkSshAction } from '@/lib/actions/control/check-ssh.action';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { DEFAULT_MAX_LAG_BYTES } from '@/lib/actions/drivers/switchover';
import { drFailoverAction } from '@/lib/actions/topology/dr-failover.action';
import { promoteAction } from '@/lib/actions/topology/promote.action';
import { rebuildAction } from '@/lib/actions/topology/rebuild.action';
import { refreshDnsAction } from '@/lib/actions/topology/refresh-dns.action';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { remasterAction } from '@/lib/actions/topology/remaster.action';
import { replaceHostKeyAction } from '@/lib/actions/control/replace-host-key.action';
import { restartAction } from '@/lib/actions/control/restart.action';
import { rdsDriver } from '@/lib/actions/drivers/rds';
import { startAction } from '@/lib/actions/control/start.action';
import { stopAction } from '@/lib/actions/control/stop.action';
import { resizeHerdAction } from '@/lib/actions/cloud/resize-herd.action';
import { powerOffAction, powerOnAction } from '@/lib/actions/cloud/power.action';
import { primariesOrMaybe } from '@/lib/fleet/herd-primary';
import { resizePrepared } from '@/lib/testing/cloud';
import { confirmedSteps } from '@/lib/engine/plan-identity';
import { wantedSettings } from '@/lib/fleet/settings/wanted';
import type { MemberSettings } from '@/lib/actions/parameters/apply-plan';
import { asks } from '@/lib/actions/drivers';
import { addReplicaAction } from '@/lib/actions/grow/add-replica.action';
import { declarationOf } from '@/lib/fleet/objects/declaration';
import type { ObjectsReading } from '@/lib/fleet/objects/read-objects';

/** Rotate credentials' preparation: a herd whose primary has the login's group and users. */
function rotatePrepared(h: HerdRef) {
  const { declaration } = declarationOf({
    environmentSet: null,
    herdSet: null,
    herdOverrides: 'rotate app users=app_a,app_b secret=aws:pgherd/{environment}/{herd}/app grace=1h',
  });
  const reading = objectsPrepared(h).get(h.id)!.reading;
  const role = (name: string) => ({
    ...reading.roles[0]!,
    name,
    superuser: false,
    createrole: false,
    replication: false,
    bypassrls: false,
    bootstrap: false,
  });
  return new Map([
    [h.id, { declaration, errors: [], reading: { ...reading, roles: [...reading.roles, role('app'), role('app_a'), role('app_b')] } }],
  ]);
}

/** Apply fleet objects' preparation: a herd that declares a role its primary lacks, and access rules. */
function objectsPrepared(h: HerdRef) {
  const inputs = {
    environmentSet: {
      id: 1,
      name: 'base',
      version: 1,
      declaration: 'role app login\nhba local all all trust\nhba host all all 0.0.0.0/0 trust\nhba host replication all 0.0.0.0/0 trust',
    },
    herdSet: null,
    herdOverrides: '',
  };
  const reading: ObjectsReading = {
    serverVersionNum: 160000,
    asked: { databases: [], extensions: [], logins: [] },
    passwords: null,
    roles: [
      {
        name: 'postgres',
        login: true,
        superuser: true,
        createdb: true,
        createrole: true,
        replication: true,
        bypassrls: true,
        inherit: true,
        connlimit: -1,
        validUntil: null,
        memberOf: [],
        bootstrap: true,
      },
    ],
    databases: [{ name: 'postgres', owner: 'postgres', encoding: 'UTF8', locale: 'C.UTF-8', connect: null }],
    extensions: {},
    available: {},
    hba: [],
    hbaFile: null,
    me: { user: 'pgherd', address: '10.0.0.9', ssl: true, database: 'postgres' },
    replication: [],
  };
  return new Map([
    [h.id, { decl: declarationOf(inputs), declared: true, ctx: { members: h.members.map((m) => m.host), poolers: [] }, reading }],
  ]);
}

// The steps are built, never run: nothing here touches a database or a host.
const deps = {} as ActionDeps;

const three = (over: Record<number, Partial<InstanceRef>> = {}) => [
  member(1, 'primary', { lsn: 5000, ...over[1] }),
  member(2, 'replica', { lsn: 4000, ...over[2] }),
  member(3, 'replica', { lsn: 4900, ...over[3] }),
];

const pooler: PoolerRef = {
  id: 7,
  herdId: 1,
  label: 'bouncer-1.example.com:6432',
  host: '10.0.0.9',
  port: 6432,
  adminUser: 'pgbouncer',
  configFile: '/etc/pgbouncer/pgbouncer.ini',
  databases: ['orders'],
  ssh: { host: '10.0.0.9', port: 22, username: 'postgres', hostKeyFingerprint: 'SHA256:bouncer' },
  serverEnvironmentId: 1,
  serverEnvironment: 'production',
};

const planHerd = (a: HerdAction, h: HerdRef, params: Record<string, unknown> = {}) => a.plan(h, { params });
const planOn = (a: InstanceAction, t: InstanceRef, members: InstanceRef[], params: Record<string, unknown> = {}) =>
  a.plan(t, { members, params });
const refusalOf = (fn: () => unknown): Refusal => {
  try {
    fn();
  } catch (err) {
    if (err instanceof Refusal) return err;
    throw err;
  }
  throw new Error('not refused');
};

describe('switchover', () => {
  it('chooses the most up-to-date running replica, or the one asked for', () => {
    const p = planHerd(switchoverAction, herd(three()));
    expect(p.refused).toBeUndefined();
    expect(p.facts?.find((f) => f.label === 'New primary')?.value).toBe('db-3.example.com:5432 (site dc-west)');
    const asked = planHerd(switchoverAction, herd(three()), { candidateInstanceId: '2' });
    expect(asked.facts?.find((f) => f.label === 'New primary')?.value).toContain('db-2.example.com:5432');
  });

  it('refuses, by code, a herd without one running primary, a candidate that is not a running replica, and too much lag', () => {
    const none = planHerd(switchoverAction, herd(three({ 1: { state: 'stopped' } })));
    expect(none).toMatchObject({ refusalCode: 'topology', refused: 'the herd has no running primary: use DR failover', steps: [] });
    expect(planHerd(switchoverAction, herd(three({ 2: { role: 'primary' } })))).toMatchObject({
      refusalCode: 'topology',
      refused: 'the herd has 2 running primaries',
    });
    expect(planHerd(switchoverAction, herd(three()), { candidateInstanceId: '1' }).refusalCode).toBe('topology');
    // Lag: refused, and the page still says what it would have done.
    const lagging = planHerd(switchoverAction, herd(three({ 2: { lsn: 0 }, 3: { lsn: 0 } })), { maxLagBytes: '100' });
    expect(lagging.refusalCode).toBe('lag');
    expect(lagging.steps.length).toBeGreaterThan(5);
    expect(
      refusalOf(() => switchoverAction.steps(herd(three({ 2: { lsn: 0 }, 3: { lsn: 0 } })), deps, { params: { maxLagBytes: '100' } })).code,
    ).toBe('lag');
    expect(DEFAULT_MAX_LAG_BYTES).toBe(16 * 1024 * 1024);
  });

  it('lists the switch in order: pause, clean stop with its undo, replay, promote, DNS, pooler, re-point, rejoin', () => {
    const p = planHerd(switchoverAction, herd(three(), { poolers: [pooler] }));
    const at = (text: string) => p.steps.findIndex((s) => s.includes(text));
    expect(at('pre-flight')).toBe(0);
    expect(p.steps[at('PAUSE orders on PgBouncer')]).toContain('RESUME always follows');
    expect(p.steps[at('stop db-1.example.com:5432 cleanly')]).toContain('started again as primary (once it is sent, never');
    expect(at('PAUSE')).toBeLessThan(at('stop db-1'));
    expect(at('stop db-1')).toBeLessThan(at('has replayed db-1.example.com:5432\u2019s shutdown checkpoint'));
    expect(at('promote db-3.example.com:5432 (pg_promote)')).toBeGreaterThan(at('shutdown checkpoint'));
    expect(p.steps[at('point orders.db.example.com')]).toContain('at db-3.example.com');
    expect(at('point PgBouncer bouncer-1.example.com:6432 at db-3.example.com:5432')).toBeGreaterThan(at('promote db-3'));
    expect(at('re-point db-2.example.com:5432 to db-3.example.com:5432')).toBeGreaterThan(0);
    expect(at('db-1.example.com:5432: pg_rewind from db-3.example.com:5432')).toBeGreaterThan(at('re-point db-2'));
    expect(p.warnings).toEqual([
      'production: production',
      'writes through PgBouncer wait during the switch (about a second); direct connections to the old primary are closed',
    ]);
    expect(planHerd(switchoverAction, herd(three())).warnings[1]).toContain('no PgBouncer');
  });
});

describe('DR failover', () => {
  it('starts from the inventory\u2019s primary, running or not, and says the candidate is chosen again when it runs', () => {
    const p = planHerd(drFailoverAction, herd(three({ 1: { state: 'unreachable' } })));
    expect(p.refused).toBeUndefined();
    expect(p.facts?.find((f) => f.label === 'Old primary')?.value).toBe('db-1.example.com:5432 (unreachable)');
    expect(p.facts?.find((f) => f.label === 'Candidate')?.value).toBe('db-3.example.com:5432 (site dc-west), chosen again when it runs');
    expect(p.facts?.find((f) => f.label === 'Possible data loss')?.value).toContain('100 bytes');
    expect(p.steps[1]).toMatch(/^fence db-1\.example\.com:5432: proven when its port refuses connections/);
  });

  it('refuses a herd with no primary, two primaries, or no running replica', () => {
    expect(planHerd(drFailoverAction, herd([member(2, 'replica'), member(3, 'replica')])).refusalCode).toBe('topology');
    expect(planHerd(drFailoverAction, herd(three({ 2: { role: 'primary' } }))).refused).toMatch(/2 primaries in the inventory/);
    expect(planHerd(drFailoverAction, herd(three({ 2: { state: 'stopped' }, 3: { state: 'stopped' } })))).toMatchObject({
      refusalCode: 'topology',
      refused: 'the herd has no running replica to fail over to',
    });
  });

  it('says so, and warns, when the operator vouches for the fence', () => {
    const p = planHerd(drFailoverAction, herd(three()), { fencedByOperator: true });
    expect(p.steps[1]).toContain('you confirm it is fenced');
    expect(p.warnings.at(-1)).toContain('the herd will have two primaries');
  });
});

describe('instance actions', () => {
  const [primary, r2, r3] = three() as [InstanceRef, InstanceRef, InstanceRef];
  const members = [primary, r2, r3];

  it('promote: refuses a primary and a herd that has a running one; lists the checks first', () => {
    expect(planOn(promoteAction, primary, members).refusalCode).toBe('not-applicable');
    expect(planOn(promoteAction, r2, members)).toMatchObject({
      refusalCode: 'topology',
      refused: expect.stringContaining('use switchover'),
    });
    const p = planOn(promoteAction, r2, [{ ...primary, state: 'stopped' }, r2, r3]);
    expect(p.refused).toBeUndefined();
    expect(p.steps[0]).toMatch(/^check that no other member of the herd answers as a primary/);
    expect(p.warnings).toContain('the herd\u2019s DNS name does not move with a promote');
  });

  it('rebuild: refuses the running primary, rebuilds a fenced old primary with pg_rewind and a needs-rebuild replica afresh', () => {
    expect(planOn(rebuildAction, primary, members).refusalCode).toBe('not-applicable');
    const fenced = planOn(rebuildAction, { ...primary, state: 'fenced' }, [
      { ...primary, state: 'fenced' },
      { ...r2, role: 'primary' },
      r3,
    ]);
    expect(fenced.steps.join('\n')).toContain('pg_rewind from db-2.example.com:5432');
    const fresh = planOn(rebuildAction, { ...r3, state: 'needs_rebuild' }, members);
    expect(fresh.steps.join('\n')).toContain('no pg_rewind: it is marked needs rebuild');
    expect(planOn(rebuildAction, r3, [{ ...primary, state: 'stopped' }, r2, r3]).refusalCode).toBe('topology');
  });

  it('remaster: refuses a primary, a loop and itself; says when it is cascading', () => {
    expect(planOn(remasterAction, primary, members).refusalCode).toBe('not-applicable');
    const chained = [primary, { ...r2, upstreamId: 3 }, r3];
    expect(planOn(remasterAction, r3, chained, { upstreamInstanceId: '2' })).toMatchObject({
      refusalCode: 'topology',
      refused: expect.stringContaining('that would be a loop'),
    });
    expect(planOn(remasterAction, r3, members, { upstreamInstanceId: '3' }).refused).toBe('a replica cannot stream from itself');
    expect(planOn(remasterAction, r3, members, { upstreamInstanceId: '2' }).steps.join('\n')).toContain(
      '(a replica: cascading replication)',
    );
    expect(planOn(remasterAction, r3, members).warnings).toEqual(['it streams from db-1.example.com:5432 already: it will reconnect']);
    expect(refusalOf(() => planOn(remasterAction, r3, members, { upstreamInstanceId: 'x' })).code).toBe('params');
  });

  it('start, restart: refuse a fenced instance; start says when the inventory has it running', () => {
    const fenced = { ...primary, state: 'fenced' };
    expect(planOn(startAction, fenced, members).refusalCode).toBe('not-applicable');
    expect(planOn(restartAction, fenced, members).refusalCode).toBe('not-applicable');
    expect(planOn(startAction, r2, members).warnings).toEqual(['the inventory says it is running already; start will only confirm that']);
    expect(planOn(restartAction, primary, members).warnings).toEqual([
      'production: production',
      'this is the herd\u2019s primary: clients lose their connections',
    ]);
  });

  it('stop and reload say which command runs where, and what they wait for', () => {
    expect(planOn(stopAction, r2, members).steps).toEqual([
      'pg_ctl stop -m fast on 10.0.0.2 (/var/lib/postgresql/15/main)',
      'wait until 10.0.0.2:5432 refuses connections',
      'record what it is now in the inventory',
    ]);
    expect(planOn(reloadAction, r2, members).steps[1]).toBe('pg_ctl reload on 10.0.0.2 (/var/lib/postgresql/15/main)');
  });

  it('check SSH pins on first contact, and replacing a key needs a new fingerprint', () => {
    const unpinned = { ...r2, ssh: { ...r2.ssh, hostKeyFingerprint: null } };
    expect(planOn(checkSshAction, unpinned, members).warnings).toEqual(['first contact: the key the host presents is trusted from now on']);
    expect(planOn(checkSshAction, r2, members).steps[0]).toContain('check that its host key is the pinned SHA256:key2');
    expect(planOn(replaceHostKeyAction, r2, members).refusalCode).toBe('params');
    const fp = `SHA256:${'a'.repeat(43)}`;
    expect(
      planOn(replaceHostKeyAction, { ...r2, ssh: { ...r2.ssh, hostKeyFingerprint: fp } }, members, { fingerprint: fp }).refusalCode,
    ).toBe('host-key');
    expect(planOn(replaceHostKeyAction, r2, members, { fingerprint: fp }).steps[1]).toBe(
      `pin ${fp} to db-2.example.com in place of SHA256:key2, only if the host presented it`,
    );
  });

  it('refresh DNS refuses a herd without records', () => {
    expect(planHerd(refreshDnsAction, herd(three(), { dns: [] })).refusalCode).toBe('not-applicable');
  });
});

describe('a confirmed plan', () => {
  it('is the same plan on a worker whose EC2 wait bound differs; not when what it does differs', () => {
    const h = herd(three());
    const r2 = h.members[1]!;
    const prepared = resizePrepared(h, h.members);
    const ctx = { members: h.members, params: {}, prepared };
    const planned = (env: string | undefined) => {
      const was = process.env.PGHERD_EC2_WAIT_SECONDS;
      if (env === undefined) delete process.env.PGHERD_EC2_WAIT_SECONDS;
      else process.env.PGHERD_EC2_WAIT_SECONDS = env;
      try {
        return powerOffAction.plan(r2, ctx);
      } finally {
        if (was === undefined) delete process.env.PGHERD_EC2_WAIT_SECONDS;
        else process.env.PGHERD_EC2_WAIT_SECONDS = was;
      }
    };
    const confirmed = confirmedSteps(planned(undefined));
    expect(confirmed.map((s) => s.says).join('\n')).toMatch(/\(at most 600 s\)/);
    process.env.PGHERD_EC2_WAIT_SECONDS = '5';
    try {
      // The words differ (at most 5 s), what it does does not: the worker's own bound is no argument.
      expect(confirmedSteps(planned('5')).map((s) => s.says)).not.toEqual(confirmed.map((s) => s.says));
      expect(() => powerOffAction.steps(r2, deps, ctx, confirmed)).not.toThrow();
      const otherHost = confirmed.map((s) => (s.does.kind === 'ec2.stop' ? { ...s, does: { ...s.does, instanceId: 'i-other' } } : s));
      expect(() => powerOffAction.steps(r2, deps, ctx, otherHost)).toThrow(
        /changed since it was confirmed: step \d+ was "stop i-0abc1 and wait until EC2 says stopped \(at most 600 s\)", now "stop i-0abc1 [^"]*" \(instanceId "i-other", now "i-0abc1"\)\. Nothing was run/,
      );
    } finally {
      delete process.env.PGHERD_EC2_WAIT_SECONDS;
    }
  });

  it('confirmed before steps carried what they do (words only), is compared by its words', () => {
    const h = herd(three());
    const r2 = h.members[1]!;
    const ctx = { members: h.members, params: {}, prepared: resizePrepared(h, h.members) };
    const words = powerOffAction.plan(r2, ctx).steps;
    expect(() => powerOffAction.steps(r2, deps, ctx, words)).not.toThrow();
    expect(() =>
      powerOffAction.steps(
        r2,
        deps,
        ctx,
        words.map((x) => x.replace(/^stop i-\w+/, 'stop i-other')),
      ),
    ).toThrow(/changed since it was confirmed: step \d+ was "stop i-other/);
  });
});

describe('power off', () => {
  it('warns of the herd\u2019s primary, not of a fenced old primary, which no client uses', () => {
    const h = herd(three());
    const [primary, r2, r3] = h.members as [InstanceRef, InstanceRef, InstanceRef];
    const planOf = (t: InstanceRef, members: InstanceRef[]) =>
      powerOffAction.plan(t, { members, params: {}, prepared: resizePrepared(h, h.members) });
    const PRIMARY = 'this is the herd\u2019s primary: clients lose their connections';
    expect(planOf(primary, h.members).warnings).toContain(PRIMARY);
    const fenced = { ...primary, state: 'fenced' };
    const after = [fenced, { ...r2, role: 'primary' as const }, r3];
    expect(planOf(fenced, after).refused).toBeUndefined();
    expect(planOf(fenced, after).warnings).not.toContain(PRIMARY);
    expect(planOf({ ...primary, state: 'needs_rebuild' }, after).warnings).not.toContain(PRIMARY);
  });
});

describe('power on', () => {
  const h = herd(three());
  const [primary, r2] = h.members as [InstanceRef, InstanceRef, InstanceRef];
  const planOf = (t: InstanceRef, members: InstanceRef[]) =>
    powerOnAction.plan(t, { members, params: {}, prepared: resizePrepared(h, h.members, 'stopped') });

  it('refuses what its host\u2019s boot would start as a second primary: fenced, to be rebuilt, a primary beside the running one', () => {
    const fenced = { ...primary, state: 'fenced' };
    expect(planOf(fenced, [fenced, { ...r2, role: 'primary' as const }])).toMatchObject({
      refusalCode: 'not-applicable',
      refused: expect.stringMatching(/is fenced after a failover: powered on, its host would start it as a primary/),
    });
    expect(planOf({ ...primary, state: 'needs_rebuild' }, h.members).refused).toMatch(/is to be rebuilt/);
    const stopped = { ...primary, state: 'stopped' };
    expect(planOf(stopped, [stopped, { ...r2, role: 'primary' as const }]).refusalCode).toBe('split-brain');
    // A replica, or the herd's only primary, is powered on; the first step looks for another primary.
    expect(planOf({ ...r2, state: 'stopped' }, h.members).refused).toBeUndefined();
    expect(planOf(stopped, [stopped, r2]).steps[0]).toMatch(
      /may boot as a primary: check that no other member of the herd is, or may be, one/,
    );
    expect(planOf({ ...r2, state: 'stopped' }, h.members).steps[0]).toMatch(/last answered as a replica: its host boots it as one/);
  });

  it('goes by what the instance last said, not by an edited role: an old primary called a replica, or a silent primary', () => {
    // The admin edited the stopped old primary into a replica; it last answered as a primary.
    const edited = { ...primary, role: 'replica' as const, state: 'stopped' };
    const promoted = { ...r2, role: 'primary' as const, observedRole: 'primary' as const };
    expect(planOf(edited, [edited, promoted])).toMatchObject({
      refusalCode: 'split-brain',
      refused: expect.stringMatching(/last answered as primary \(timeline 1\), so its host may boot it as a primary/),
    });
    // The herd's primary is silent (unreachable): it may still be the primary.
    expect(planOf(edited, [edited, { ...promoted, state: 'unreachable' }]).refusalCode).toBe('split-brain');
    // Never observed: it may be anything.
    const unknown = { ...r2, observedRole: null, state: 'stopped' };
    expect(planOf(unknown, [primary, unknown]).refusalCode).toBe('split-brain');
  });

  it('refuses an old primary while the primary promoted after it is powered off too; powers on the newer one', () => {
    // The primary powered off, a replica promoted (timeline 2), then powered off as well.
    const old = { ...primary, state: 'stopped', observedRole: 'primary' as const, timeline: 1 };
    const newer = { ...r2, role: 'primary' as const, observedRole: 'primary' as const, state: 'stopped', timeline: 2 };
    expect(planOf(old, [old, newer, h.members[2]!])).toMatchObject({
      refusalCode: 'split-brain',
      refused: expect.stringMatching(/\(stopped, last a primary on timeline 2\) is or may be the herd's primary/),
    });
    expect(planOf(newer, [old, newer, h.members[2]!]).refused).toBeUndefined();
    // Which one is newer cannot be told: neither is powered on by pgherd.
    const twin = { ...newer, timeline: 1 };
    expect(planOf(old, [old, twin]).refusalCode).toBe('split-brain');
    expect(planOf({ ...twin }, [old, twin]).refusalCode).toBe('split-brain');
    expect(planOf(old, [old, { ...newer, timeline: null }]).refusalCode).toBe('split-brain');
  });
});

describe('primariesOrMaybe: who is, or may be, the primary', () => {
  const [primary, r2, r3] = three() as [InstanceRef, InstanceRef, InstanceRef];
  const up = (inRecovery: boolean) => ({ reachable: true, inRecovery });
  const silent = { reachable: false, error: 'timeout' };
  const labels = (seen: Parameters<typeof primariesOrMaybe>[0]) => primariesOrMaybe(seen).map((f) => f.m.label);

  it('counts a primary that answers, and a silent member that may boot or be one; not a stopped host or a last-known replica', () => {
    expect(
      labels([
        { m: primary, o: up(false), ec2: 'running' },
        { m: r2, o: up(true), ec2: 'running' },
      ]),
    ).toEqual([primary.label]);
    // Silent: SIGSTOP, a partition, or a host still booting (a power on that gave up its wait).
    expect(labels([{ m: primary, o: silent, ec2: 'running' }])).toEqual([primary.label]);
    expect(labels([{ m: primary, o: silent, ec2: 'pending' }])).toEqual([primary.label]);
    expect(labels([{ m: primary, o: silent, ec2: null }])).toEqual([primary.label]);
    expect(labels([{ m: { ...r3, state: 'fenced' }, o: silent, ec2: 'running' }])).toEqual([r3.label]);
    // A host that is off cannot answer as anything; a member that last said it was a replica boots as one.
    expect(
      labels([
        { m: primary, o: silent, ec2: 'stopped' },
        { m: r2, o: silent, ec2: 'pending' },
      ]),
    ).toEqual([]);
    // A stopped host whose Postgres last said primary, on a timeline no older than the target's: it boots as the primary.
    const stoppedPrimary = { ...r2, observedRole: 'primary' as const, timeline: 2 };
    expect(primariesOrMaybe([{ m: stoppedPrimary, o: silent, ec2: 'stopped' }], { ...primary, timeline: 1 })[0]!.why).toMatch(
      /host is stopped, and it last answered as the primary \(timeline 2; .*: timeline 1\)/,
    );
    expect(primariesOrMaybe([{ m: { ...stoppedPrimary, timeline: 1 }, o: silent, ec2: 'stopped' }], { ...primary, timeline: 2 })).toEqual(
      [],
    );
    expect(primariesOrMaybe([{ m: primary, o: silent, ec2: 'pending' }])[0]!.why).toMatch(
      /last answered as primary and its host is pending in EC2, so it may be a primary/,
    );
  });
});

describe('resize a herd', () => {
  const h = herd(three());
  const [primary, r2, r3] = h.members as [InstanceRef, InstanceRef, InstanceRef];
  /** The herd's plan with these members already on the target type. */
  const planWith = (already: InstanceRef[], params: Record<string, unknown> = { instanceType: 'm6i.xlarge' }) => {
    const prepared = resizePrepared(h, h.members);
    for (const m of already) {
      const c = prepared.byServer.get(m.serverId)!;
      if (c.ranking?.ok) c.ranking = { ...c.ranking, current: c.ranking.target };
    }
    return resizeHerdAction.plan(h, { params, prepared });
  };
  const order = (p: ReturnType<typeof planWith>) => p.facts?.find((f) => f.label === 'In order')?.value;

  it('resizes the replicas one at a time, then switches over, then the old primary; each part finished before the next', () => {
    const p = planWith([]);
    expect(order(p)).toBe(`resize ${r2.label}; then resize ${r3.label}; then switch over to ${r3.label}; then resize ${primary.label}`);
    const steps = resizeHerdAction.steps(h, deps, { params: { instanceType: 'm6i.xlarge' }, prepared: resizePrepared(h, h.members) });
    // The first step of each part after the first settles the parts before it (names back, instance checked).
    expect(steps.filter((s) => s.settles).map((s) => s.name)).toEqual([
      `${r3.hostname}: check the EC2 instance and the hooks`,
      'switchover: pre-flight',
      `${primary.hostname}: check the EC2 instance and the hooks`,
      'the herd resized',
    ]);
    expect(p.cost).toEqual({ nowPerHour: expect.any(Number), afterPerHour: expect.any(Number) });
  });

  it('resizes no member already on the type: a replica on it is finished, a primary on it means no switchover', () => {
    expect(order(planWith([r2]))).toBe(
      `finish ${r2.label} (already m6i.xlarge); then resize ${r3.label}; then switch over to ${r3.label}; then resize ${primary.label}`,
    );
    const noSwitch = planWith([primary], { instanceType: 'm6i.xlarge', switchBack: true });
    expect(order(noSwitch)).toBe(`resize ${r2.label}; then resize ${r3.label}`);
    expect(noSwitch.steps.some((s) => /pg_promote/.test(s))).toBe(false);
    // All on it (a run cut short in its last member): each replica's resize finished, nothing stopped.
    const all = planWith([primary, r2, r3]);
    expect(all.refused).toBeUndefined();
    expect(order(all)).toBe(`finish ${r2.label} (already m6i.xlarge); then finish ${r3.label} (already m6i.xlarge)`);
    expect(all.steps.filter((s) => /EC2: stop|pg_promote|stop Postgres/.test(s))).toEqual([]);
    expect(all.steps.filter((s) => /wait until Postgres answers/.test(s))).toHaveLength(2);
    expect(all.cost).toEqual({ nowPerHour: expect.any(Number), afterPerHour: expect.any(Number) });
    expect(all.cost!.nowPerHour).toBe(all.cost!.afterPerHour);
  });

  it('refuses a herd with a stopped member or no replica, and a candidate that is not a replica', () => {
    expect(
      resizeHerdAction.plan(herd([primary, { ...r2, state: 'stopped' }, r3]), {
        params: { instanceType: 'm6i.xlarge' },
        prepared: resizePrepared(h, h.members),
      }).refused,
    ).toMatch(/is stopped: start it; or take it out of the herd\. A herd resize resizes every member/);
    // A switchover cut short before its promote: no running primary, and the way back said.
    const noPrimary = herd([{ ...primary, state: 'stopped' }, r2, r3]);
    expect(
      resizeHerdAction.plan(noPrimary, { params: { instanceType: 'm6i.xlarge' }, prepared: resizePrepared(noPrimary, noPrimary.members) })
        .refused,
    ).toBe(`the herd has no running primary; its primary is ${primary.label} (stopped): start it, then run the herd resize again`);
    // Down on the type asked for already (a run cut short after its type changed): finished, started.
    const cut = herd([primary, { ...r2, state: 'stopped' }, r3]);
    const prepared = resizePrepared(cut, cut.members);
    const c = prepared.byServer.get(r2.serverId)!;
    if (c.ranking?.ok) c.ranking = { ...c.ranking, current: c.ranking.target };
    const finished = resizeHerdAction.plan(cut, { params: { instanceType: 'm6i.xlarge' }, prepared });
    expect(finished.refused).toBeUndefined();
    expect(finished.facts?.find((f) => f.label === 'In order')?.value).toMatch(
      new RegExp(`^finish ${r2.label} \\(already m6i\\.xlarge\\); then resize `),
    );
    expect(
      resizeHerdAction.plan(herd([primary]), { params: { instanceType: 'm6i.xlarge' }, prepared: resizePrepared(h, h.members) }).refused,
    ).toMatch(/no replica to switch over to/);
    expect(planWith([], { instanceType: 'm6i.xlarge', candidateInstanceId: primary.id }).refused).toMatch(/is not a replica/);
  });
});

/** What the backup actions read before planning: the environment's posix policy (its backup host pinned), applied. */
function backupPrepared(h: HerdRef): BackupPrepared {
  const repoHost = {
    hostname: 'backup.example.com',
    ssh: { host: '10.0.9.1', port: 22, username: 'postgres', hostKeyFingerprint: `SHA256:${'c'.repeat(43)}`, serverId: 99 },
  };
  const policy: AppliedPolicy = {
    tool: 'pgbackrest',
    repoKind: 'posix',
    repoHost,
    repoPath: '/var/lib/pgbackrest',
    s3: null,
    retentionFull: 2,
    compressType: 'zst',
    encrypt: false,
    fromStandby: true,
    archiveTimeoutSeconds: 60,
  };
  return {
    policies: new Map([
      [
        h.id,
        {
          policyId: 1,
          scope: 'environment',
          policy,
          repoServer: { id: 99, hostname: repoHost.hostname, environmentId: h.environmentId, environment: h.environment, approval: null },
        },
      ],
    ]),
    setups: new Map([[h.id, { herdId: h.id, stanza: 'prod-billing', applied: appliedForm(policy), appliedAt: new Date() }]]),
  };
}

/** An empty server of the herd's environment, pinned: where a restore or a drill may go. */
const scratchServer = (h: HerdRef) => ({
  id: 7,
  hostname: 'scratch-1.example.com',
  address: '10.0.9.7',
  environmentId: h.environmentId,
  environment: h.environment,
  approval: null,
  instances: 0,
  ssh: { host: '10.0.9.7', port: 22, username: 'postgres', hostKeyFingerprint: `SHA256:${'d'.repeat(43)}`, serverId: 7 },
});

/** A launch like a member, as planLaunch gives it: m6i.large in eu-west-1a, priced. */
const launchFixture = (h: HerdRef, like: string) => ({
  template: {
    like: 'i-0source',
    region: 'eu-west-1',
    imageId: 'ami-0123',
    subnetId: 'subnet-0abc',
    vpcId: 'vpc-0abc',
    account: '123456789012',
    availabilityZone: 'eu-west-1a',
    securityGroupIds: ['sg-0db'],
    keyName: 'fleet',
    instanceProfileArn: null,
    architecture: 'x86_64',
    tags: {},
  },
  instanceType: 'm6i.large',
  vcpus: 2,
  memoryGiB: 8,
  perHour: 0.107,
  priceSource: 'shipped price file, 2026-11-20',
  environmentId: h.environmentId,
  environment: h.environment,
  like: { hostname: like, site: 'dc-east', sshUser: 'postgres', sshPort: 22 },
});

/** What Apply settings reads for each member: a group asking shared_buffers 1GB and work_mem 8MB of a herd on the defaults. */
function settingsPrepared(h: HerdRef): Map<number, MemberSettings> {
  const catalog = new Map([
    [
      'shared_buffers',
      {
        name: 'shared_buffers',
        vartype: 'integer',
        unit: '8kB',
        context: 'postmaster',
        minVal: '16',
        maxVal: '1073741823',
        enumVals: null,
        bootVal: '16384',
      },
    ],
    [
      'work_mem',
      {
        name: 'work_mem',
        vartype: 'integer',
        unit: 'kB',
        context: 'user',
        minVal: '64',
        maxVal: '2147483647',
        enumVals: null,
        bootVal: '4096',
      },
    ],
    [
      'max_connections',
      {
        name: 'max_connections',
        vartype: 'integer',
        unit: null,
        context: 'postmaster',
        minVal: '1',
        maxVal: '262143',
        enumVals: null,
        bootVal: '100',
      },
    ],
  ]);
  const wanted = wantedSettings({
    environmentGroup: { id: 1, name: 'oltp', version: 2, settings: "shared_buffers = '1GB'\nwork_mem = '8MB'" },
    herdGroup: null,
    herdOverrides: '',
    instanceGroup: null,
    host: { memoryMb: 8192, cpus: 2 },
  });
  const running = { shared_buffers: { v: '16384' }, work_mem: { v: '4096' }, max_connections: { v: '100' } };
  return new Map(h.members.map((m) => [m.id, { wanted, running, catalog }]));
}

describe('an action is its plan', () => {
  const h = herd(three(), { poolers: [pooler] });
  const [primary, r2, r3] = h.members as [InstanceRef, InstanceRef, InstanceRef];
  // Restart on a member RDS runs: RDS reboots it (a read replica, Multi-AZ, with failover).
  const rdsRestart = () => {
    // A read replica RDS runs, Multi-AZ: rebooted with failover.
    const t3 = { ...r3, controlDriver: 'rds', rds: { region: 'eu-west-1', identifier: 'orders-3' } };
    const live = {
      identifier: 'orders-3',
      region: 'eu-west-1',
      account: '123456789012',
      vpcId: 'vpc-0abc',
      instanceClass: 'db.m6i.large',
      engine: 'postgres',
      engineVersion: '15.8',
      status: 'available',
      endpoint: { address: t3.host, port: t3.port },
      availabilityZone: 'eu-west-1a',
      multiAz: true,
      allocatedStorageGiB: 100,
      storageType: 'gp3',
      parameterGroup: 'default.postgres15',
      sourceIdentifier: 'orders-1',
      replicaIdentifiers: [],
      pendingClass: null,
      tags: {},
    };
    const prepared = new Map([
      [
        rdsDriver,
        {
          ...resizePrepared(h, r3),
          rds: new Map([[r3.serverId, { region: 'eu-west-1', identifier: 'orders-3', live, ranking: null, identity: null }]]),
        },
      ],
    ]);
    const params = { failover: true };
    return {
      words: restartAction.plan(t3, { members: h.members, params, prepared }).steps,
      steps: restartAction.steps(t3, deps, { members: h.members, params, prepared }),
    };
  };
  const cases: { a: AnyAction; run: () => { words: string[]; steps: { name: string; defer?: unknown }[] } }[] = actions.map((a) => ({
    a,
    run: () => {
      if (a.on === 'herd' && a.name === 'resize-herd') {
        const params = { instanceType: 'm6i.xlarge', switchBack: true };
        const prepared = resizePrepared(h, h.members);
        return { words: a.plan(h, { params, prepared }).steps, steps: a.steps(h, deps, { params, prepared }) };
      }
      if (a.on === 'herd' && a.name === 'apply-settings') {
        // shared_buffers (a restart: the replicas, then a switchover) and work_mem (a reload) on every member.
        const prepared = { members: settingsPrepared(h), where: new Map() };
        return { words: a.plan(h, { params: {}, prepared }).steps, steps: a.steps(h, deps, { params: {}, prepared }) };
      }
      if (a.on === 'herd' && a.name === 'rotate-credentials') {
        // One login, its two users and group on the primary, its secret in AWS Secrets Manager.
        const prepared = rotatePrepared(h);
        return { words: a.plan(h, { params: {}, prepared }).steps, steps: a.steps(h, deps, { params: {}, prepared }) };
      }
      if (a.on === 'herd' && a.name === 'rotate-pgherd-credentials') {
        // The environment's one herd; its password file and SSH key its own.
        const secrets = {
          environment: h.environment,
          user: 'pgherd',
          passwordFile: '/run/pgherd/pw',
          passwordWhyNot: null,
          keyFile: '/run/pgherd/key',
          keyWhyNot: null,
          authorizedKeys: '.ssh/authorized_keys',
        };
        const prepared = { environments: new Map([[h.environment, { herdIds: [h.id], missing: [], secrets }]]) };
        return { words: a.plan(h, { params: {}, prepared }).steps, steps: a.steps(h, deps, { params: {}, prepared }) };
      }
      if (a.on === 'herd' && a.name === 'apply-objects') {
        // A role to create, and pg_hba written on every member.
        const prepared = objectsPrepared(h);
        return { words: a.plan(h, { params: {}, prepared }).steps, steps: a.steps(h, deps, { params: {}, prepared }) };
      }
      if (a.on === 'herd' && a.name.startsWith('patroni-')) {
        // Patroni's maintenance mode: a herd Patroni runs, its members with REST addresses.
        const ph = herd(h.members.map((m) => ({ ...m, controlDriver: 'patroni', patroniUrl: `https://${m.host}:8008` })));
        return { words: a.plan(ph, { params: {} }).steps, steps: a.steps(ph, deps, { params: {} }) };
      }
      if (a.on === 'herd' && (a.name === 'backup' || a.name === 'configure-backups')) {
        const prepared = { ...backupPrepared(h), stanzaHolders: new Map<string, number>() };
        return { words: a.plan(h, { params: {}, prepared }).steps, steps: a.steps(h, deps, { params: {}, prepared }) };
      }
      if (a.on === 'herd' && (a.name === 'restore' || a.name === 'restore-drill' || a.name === 'add-replica')) {
        // The restore onto a new EC2 instance (its launch step and termination), the drill onto a server.
        const launch = launchFixture(h, 'db-1');
        if (a.name === 'add-replica') {
          // A new EC2 instance seeded from the repository, then the herd's read names.
          const prepared = {
            ...backupPrepared(h),
            server: null,
            launch: new Map([[h.id, launch]]),
            lastFull: new Map([[h.id, 10_000_000]]),
          };
          const params = { instanceType: 'm6i.large', dataDirectory: '/var/lib/postgresql/replicas/orders-4/data' };
          return { words: a.plan(h, { params, prepared }).steps, steps: a.steps(h, deps, { params, prepared }) };
        }
        const prepared = {
          ...backupPrepared(h),
          server: a.name === 'restore' ? null : scratchServer(h),
          launch: a.name === 'restore' ? launch : null,
          launches: new Map(),
          operationAt: new Map(),
          takenNames: new Set<string>(),
          estimates: new Map([[h.id, { bytes: 10_000_000_000, bytesPerSecond: 100_000_000, drills: 3 }]]),
        };
        const params =
          a.name === 'restore'
            ? { name: 'billing-restored', target: 'latest', instanceType: 'm6i.large', dataDirectory: '/var/lib/postgresql/15/restored' }
            : { serverId: 7, dataDirectory: '/var/lib/postgresql/15/drill' };
        return { words: a.plan(h, { params, prepared }).steps, steps: a.steps(h, deps, { params, prepared }) };
      }
      if (a.on === 'herd' && a.name === 'tear-down-restored') {
        // What its restore laid down: a claim for each member.
        const claims = h.members.map((m, k) => ({
          id: k + 1,
          serverId: m.serverId,
          hostname: m.label,
          dataDirectory: m.dataDirectory,
          pgVersion: m.pgVersion,
          ssh: m.ssh,
          adopted: null,
        }));
        const prepared = new Map([
          [
            h.id,
            {
              restoredFrom: 1,
              restoredTo: 'latest',
              expiresAt: null,
              claims,
              launched: [{ id: 1, instanceId: 'i-0abc', instanceType: 'm6i.large' }],
              launchedLeft: [],
            },
          ],
        ]);
        return { words: a.plan(h, { params: {}, prepared }).steps, steps: a.steps(h, deps, { params: {}, prepared }) };
      }
      if (a.on === 'herd' && a.name === 'upgrade-in-place') {
        // Every member's host has a 17.12 build; the herd is backed up through its policy.
        const builds = new Map(
          h.members.map((m) => [
            m.serverId,
            [{ binDir: '/usr/lib/postgresql/17/bin', versionNum: 170012, versionText: 'postgres (PostgreSQL) 17.12' }],
          ]),
        );
        const prepared = { builds, held: new Map(), backups: backupPrepared(h) };
        const params = { toVersion: '17' };
        return { words: a.plan(h, { params, prepared }).steps, steps: a.steps(h, deps, { params, prepared }) };
      }
      if (a.on === 'herd' && a.name.startsWith('upgrade-') && a.name !== 'upgrade-minor') {
        // A clean herd on 15.18, a 17.10 build on an empty server, and for the switches an upgrade ready
        // (cut over, for the roll back and the clean up).
        const facts = {
          walLevel: 'logical',
          freeSlots: 5,
          freeSenders: 5,
          serverVersionNum: 150018,
          databases: [
            {
              name: 'postgres',
              tables: 2,
              noIdentity: [],
              regColumns: [],
              largeObjects: 0,
              sequences: 1,
              extensions: [{ name: 'plpgsql', version: '1.0' }],
              encoding: 'UTF8',
              collate: 'C.UTF-8',
              ctype: 'C.UTF-8',
            },
          ],
        };
        const build = { serverId: 20, binDir: '/opt/pg/17.10/bin', versionNum: 170010, extensions: { plpgsql: '1.0' } };
        const green = herd([{ ...member(9, 'primary'), herdId: 2, herd: 'orders-17' }], {
          id: 2,
          name: 'orders-17',
          label: 'production/orders-17',
        });
        const status = a.name === 'upgrade-cutover' ? 'ready' : 'cut-over';
        const open = {
          id: 1,
          status,
          blueHerdId: h.id,
          greenHerdId: 2,
          databases: ['postgres'],
          toVersionNum: 170010,
          sequenceGap: 1000,
          operationId: null,
        };
        const server = {
          id: 20,
          hostname: 'db-20.example.com',
          address: '10.0.0.20',
          environmentId: h.environmentId,
          environment: h.environment,
          approval: null,
          ssh: { host: '10.0.0.20', port: 22, username: 'postgres', hostKeyFingerprint: 'SHA256:key20' },
          instances: 0,
        };
        const prepared = {
          facts: new Map([[h.id, facts]]),
          builds: new Map([[h.id, build]]),
          open: new Map([[h.id, a.name === 'upgrade-major' ? null : open]]),
          buildEnded: new Map([[h.id, true]]),
          sides: new Map([[h.id, { blue: h, green }]]),
          greenLost: new Map<number, string>(),
          server,
          taken: new Set<string>(),
        };
        const params =
          a.name === 'upgrade-major'
            ? {
                toVersion: '17',
                serverId: 20,
                dataDirectory: '/var/lib/postgresql/17/main',
                sslCertFile: '/etc/ssl/db-20.pem',
                sslKeyFile: '/etc/ssl/db-20.key',
              }
            : a.name === 'upgrade-precheck'
              ? { toVersion: '17' }
              : a.name === 'upgrade-cutover'
                ? { fewerReplicas: true }
                : {};
        return { words: a.plan(h, { params, prepared }).steps, steps: a.steps(h, deps, { params, prepared }) };
      }
      if (a.on === 'herd' && a.name === 'upgrade-minor') {
        // Every member's host has 15.17 and 15.18; the herd runs 15.17.
        const older = h.members.map((m) => ({ ...m, serverVersionNum: 150017, binDir: '/opt/pg/15.17/bin' }));
        const hh = { ...h, members: older };
        const builds = new Map(
          older.map((m) => [
            m.serverId,
            [
              { binDir: '/opt/pg/15.17/bin', versionNum: 150017, versionText: 'postgres (PostgreSQL) 15.17' },
              { binDir: '/usr/lib/postgresql/15/bin', versionNum: 150018, versionText: 'postgres (PostgreSQL) 15.18' },
            ],
          ]),
        );
        const prepared = { builds };
        return { words: a.plan(hh, { params: {}, prepared }).steps, steps: a.steps(hh, deps, { params: {}, prepared }) };
      }
      if (a.on === 'herd' && a.name === 'vacuum-freeze') {
        const p0 = h.members.find((m) => m.role === 'primary')!;
        const tables = [{ name: 'public.t', xidAge: 6e8, mxidAge: 0, bytes: 8192 }];
        const prepared = new Map([[h.id, { primary: p0.label, databases: [{ name: 'app', xidAge: 6e8, mxidAge: 10, tables, more: 0 }] }]]);
        return { words: a.plan(h, { params: {}, prepared }).steps, steps: a.steps(h, deps, { params: {}, prepared }) };
      }
      if (a.on === 'herd') return { words: a.plan(h, { params: {} }).steps, steps: a.steps(h, deps, { params: {} }) };
      const t = a.name === 'promote' ? r2 : a.name === 'rebuild' || a.name === 'remaster' ? r3 : primary;
      const members = a.name === 'promote' ? [{ ...primary, state: 'stopped' }, r2, r3] : h.members;
      if (a.name === 'power-off' || a.name === 'power-on') {
        const prepared = resizePrepared(h, r3, a.name === 'power-on' ? 'stopped' : 'running');
        return {
          words: a.plan(r3, { members: h.members, params: {}, prepared }).steps,
          steps: a.steps(r3, deps, { members: h.members, params: {}, prepared }),
        };
      }
      if (a.name === 'replace' || a.name === 'spot-evacuate') {
        // A replica replaced (its successor like it, seeded from the repository), and on a notice the primary evacuated (switched over first).
        const t = { ...(a.name === 'replace' ? r3 : primary), cloud: { region: 'eu-west-1', instanceId: 'i-0r3' } };
        const launch = launchFixture(h, t.hostname);
        const prepared = {
          herds: new Map([[h.id, h]]),
          add: { ...backupPrepared(h), server: null, launch: new Map(), lastFull: new Map([[h.id, 10_000_000]]) },
          retire: { herds: new Map([[h.id, h]]), hosts: new Map([[t.id, { launchedRowId: 3, neighbours: 0 }]]), needs: new Map() },
          launch: new Map([[t.id, { plan: launch, like: t, avoided: null }]]),
        };
        const params = { dataDirectory: '/var/lib/postgresql/replicas/orders-5/data', host: 'terminate' };
        return {
          words: a.plan(t, { members: h.members, params, prepared }).steps,
          steps: a.steps(t, deps, { members: h.members, params, prepared }),
        };
      }
      if (a.name === 'retire') {
        const prepared = { herds: new Map([[h.id, h]]), hosts: new Map([[r3.id, { launchedRowId: 1, neighbours: 0 }]]), needs: new Map() };
        const params = { host: 'terminate' };
        const t3 = { ...r3, cloud: { region: 'eu-west-1', instanceId: 'i-0abc' } };
        return {
          words: a.plan(t3, { members: h.members, params, prepared }).steps,
          steps: a.steps(t3, deps, { members: h.members, params, prepared }),
        };
      }
      if (a.name === 'resize') {
        const params = { instanceType: 'm6i.xlarge' };
        const prepared = resizePrepared(h, r3);
        return {
          words: a.plan(r3, { members: h.members, params, prepared }).steps,
          steps: a.steps(r3, deps, { members: h.members, params, prepared }),
        };
      }
      if (a.name === 'drop-slot' || a.name === 'end-session') {
        const start = '2026-11-28T10:00:00.000000+00:00';
        const reading =
          a.name === 'drop-slot'
            ? {
                slot: { name: 'old', type: 'physical', active: false, activePid: null, database: null, retained: 1 },
                usedBy: [],
                silent: [],
              }
            : {
                pid: 42,
                user: 'app',
                database: 'app',
                client: null,
                application: 'psql',
                state: 'idle in transaction',
                xactSeconds: 7200,
                query: 'UPDATE t',
                backendStart: start,
                superuser: false,
                clientBackend: true,
                own: false,
              };
        const prepared = new Map([[primary.id, reading]]);
        const params = a.name === 'drop-slot' ? { slot: 'old' } : { session: `42@${start}` };
        return {
          words: a.plan(primary, { members, params, prepared }).steps,
          steps: a.steps(primary, deps, { members, params, prepared }),
        };
      }
      if (a.name === 'rotate-certificate') {
        process.env.PGHERD_CERT_AUTHORITIES = JSON.stringify({
          [t.serverEnvironment]: { certFile: '/etc/pgherd/ca.pem', keyFile: '/etc/pgherd/ca.key' },
        });
        const prepared = new Map([
          [t.id, { ssl: true, certFile: '/var/lib/postgresql/server.crt', keyFile: '/var/lib/postgresql/server.key' }],
        ]);
        try {
          return {
            words: a.plan(t, { members, params: {}, prepared }).steps,
            steps: a.steps(t, deps, { members, params: {}, prepared }),
          };
        } finally {
          delete process.env.PGHERD_CERT_AUTHORITIES;
        }
      }
      if (a.name === 'grow-volume') {
        const volume = { volumeId: 'vol-0abc12345', sizeGiB: 100, type: 'gp3', state: 'in-use', instanceId: 'i-0abc', device: '/dev/sdf' };
        const mount = { device: '/dev/xvdf', fsType: 'xfs', mountPoint: '/var/lib/postgresql' };
        const target = {
          server: { provider: 'aws', region: 'eu-west-1', instanceId: 'i-0abc' },
          reading: { total: 100 * 1024 ** 3, free: 3 * 1024 ** 3, mount, readAt: new Date('2026-11-28T10:00:00Z') },
          volume,
          attached: [volume],
          modification: null,
        };
        const prepared = { targets: new Map([[t.id, target]]), aws: null };
        const params = { sizeGiB: 150 };
        return {
          words: a.plan(t, { members, params, prepared }).steps,
          steps: a.steps(t, deps, { members, params, prepared }),
        };
      }
      const params = a.name === 'replace-host-key' ? { fingerprint: `SHA256:${'b'.repeat(43)}` } : {};
      return { words: a.plan(t, { members, params }).steps, steps: a.steps(t, deps, { members, params }) };
    },
  }));

  // Add replica on a herd RDS runs: its driver plans it, a new read replica of its source.
  const rdsAddReplica = () => {
    const rh = herd(
      h.members.map((m, k) => ({ ...m, controlDriver: 'rds', rds: { region: 'eu-west-1', identifier: `orders-${String(k + 1)}` } })),
    );
    const params = { instanceClass: 'db.m6i.large', availabilityZone: 'eu-west-1b', market: 'on-demand', seed: 'auto' };
    const prepared = { makers: new Map() };
    return { words: addReplicaAction.plan(rh, { params, prepared }).steps, steps: addReplicaAction.steps(rh, deps, { params, prepared }) };
  };
  // Cases beyond one per action: the same action on another driver.
  cases.push({ a: restartAction, run: rdsRestart }, { a: addReplicaAction, run: rdsAddReplica });

  it.each(cases.map((c) => [c.a.name, c] as const))(
    '%s: the page lists one line per step the worker runs, cleanups included in their step\u2019s line',
    (_, c) => {
      const { words, steps } = c.run();
      expect(words.length).toBeGreaterThan(0);
      expect(steps).toHaveLength(words.length);
      for (const s of steps) expect(s.name).not.toBe('');
    },
  );

  it("Patroni's pause and resume are only for a herd Patroni runs, with a member's REST address", () => {
    for (const a of [patroniPauseAction, patroniResumeAction]) {
      // The engine asks the herd's driver first: pg_ctl's lacks `pause`, and says why.
      expect(() => checkDriver(a, 'pg_ctl')).toThrow(/nothing fails it over on its own, so there is no automatic failover to pause/);
      expect(() => checkDriver(a, 'patroni')).not.toThrow();
      const bare = herd(h.members.map((m) => ({ ...m, controlDriver: 'patroni' })));
      expect(a.plan(bare, { params: {} }).refused).toMatch(/no member has a Patroni REST address/);
    }
  });

  it('a switchover and a DR failover on a herd Patroni runs ask Patroni, and say what pgherd checks afterwards', () => {
    const ph = herd(
      h.members.map((m) => ({ ...m, controlDriver: 'patroni', patroniUrl: `https://${m.host}:8008` })),
      { poolers: [pooler] },
    );
    const sw = switchoverAction.plan(ph, { params: { candidateInstanceId: r2.id } });
    expect(sw.refused).toBeUndefined();
    const fact = (facts: { label: string; value: string }[] | undefined, label: string) => facts?.find((f) => f.label === label)?.value;
    expect(fact(sw.facts, 'Patroni will be asked')).toBe(`POST /switchover {leader: ${primary.label}, candidate: ${r2.label}}`);
    expect(fact(sw.facts, 'pgherd checks afterwards')).toMatch(
      /names .* the leader, it accepts writes, every other member streams from it/,
    );
    // Nothing of pg_ctl's: no stop, no promote, no rewind by pgherd; PgBouncer paused and resumed around Patroni's switch.
    expect(sw.steps.join('\n')).not.toMatch(/pg_ctl|pg_promote|pg_rewind/);
    expect(sw.steps[0]).toMatch(/^pre-flight: Patroni takes pgherd's credentials/);
    expect(sw.steps.some((s) => s.startsWith('PAUSE'))).toBe(true);
    const dr = drFailoverAction.plan(ph, { params: {} });
    expect(fact(dr.facts, 'Patroni will be asked')).toMatch(/^POST \/failover \{candidate: the replica with the most WAL\}/);
    expect(drFailoverAction.plan(ph, { params: { fencedByOperator: true } }).refused).toMatch(/Patroni.s leader key is the fence/);
    // A scheduled switchover: Patroni's, 30 seconds to 7 days ahead; elsewhere a rule schedules it.
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    expect(switchoverAction.plan(ph, { params: { scheduledAt: at(3_600_000) } }).steps).toEqual([
      expect.stringMatching(/^pre-flight/),
      expect.stringMatching(/^ask Patroni to switch over at .* \(POST \/switchover with scheduled_at\)$/),
    ]);
    expect(switchoverAction.plan(ph, { params: { scheduledAt: at(10_000) } }).refused).toMatch(/between 30 seconds and 7 days from now/);
    expect(switchoverAction.plan(ph, { params: { scheduledAt: at(8 * 86_400_000) } }).refused).toMatch(/between 30 seconds and 7 days/);
    expect(switchoverAction.plan(h, { params: { scheduledAt: at(3_600_000) } }).refused).toMatch(/schedule it with a rule/);
  });

  it('a refusal thrown while planning refuses the target; a TypeError is a bug and fails the plan', () => {
    const servers = [{ name: 'db-1', ssh: { hostKeyFingerprint: 'SHA256:x' } }];
    const refusing = defineAction({
      name: 't1',
      control: asks(null),
      label: 'T',
      permission: 'operator',
      dangerous: false,
      plan: () => {
        throw refuse('topology', 'no');
      },
    });
    expect(planTarget(servers, refusing, () => refusing.plan(primary, { members: [], params: {} }))).toMatchObject({
      refused: 'no',
      refusalCode: 'topology',
    });
    const broken = defineAction({
      name: 't2',
      control: asks(null),
      label: 'T',
      permission: 'operator',
      dangerous: false,
      plan: (t) => ({
        steps: [{ name: 'x', does: { kind: 'x' }, says: (t as unknown as { nope: { x: string } }).nope.x, run: async () => {} }],
      }),
    });
    expect(() => planTarget(servers, broken, () => broken.plan(primary, { members: [], params: {} }))).toThrow(TypeError);
    // A server without a pinned key refuses before the action is asked.
    expect(
      planTarget([{ name: 'db-1', ssh: { hostKeyFingerprint: null } }], broken, () => broken.plan(primary, { members: [], params: {} })),
    ).toMatchObject({ refusalCode: 'unpinned-host-key' });
  });
});

describe('configure backups: one stanza a herd', () => {
  // production + eu-orders and production-eu + orders both make the stanza production-eu-orders.
  const h = herd(three(), { name: 'eu-orders', label: 'production/eu-orders' });
  const plan = (holders: [string, number][]) =>
    configureBackupsAction.plan(h, { params: {}, prepared: { ...backupPrepared(h), stanzaHolders: new Map(holders) } });

  it('refuses a stanza another herd\u2019s backups use, naming neither that herd nor its environment', () => {
    const refused = plan([['production-eu-orders', 42]]).refused;
    expect(refused).toBe("stanza production-eu-orders is another herd's already: rename this herd to configure its backups");
  });

  it('takes a stanza no herd uses, or its own', () => {
    expect(plan([]).refused).toBeUndefined();
    expect(plan([['production-eu-orders', h.id]]).refused).toBeUndefined();
  });
});

describe('restore to a new herd', () => {
  const h = herd(three());
  const server = scratchServer(h);
  const base = { name: 'billing-restored', target: 'latest', serverId: 7, dataDirectory: '/var/lib/postgresql/15/restored' };
  const prepared = (over: object = {}) => ({
    ...backupPrepared(h),
    server,
    operationAt: new Map(),
    takenNames: new Set<string>(),
    estimates: new Map([[h.id, { bytes: 10_000_000_000, bytesPerSecond: 100_000_000, drills: 3 }]]),
    ...over,
  });
  const fact = (p: { facts?: { label: string; value: string }[] }, label: string) => p.facts?.find((f) => f.label === label)?.value;

  it('predicts its duration from the herd\u2019s last drills, and says when it cannot', () => {
    expect(fact(restoreAction.plan(h, { params: base, prepared: prepared() }), 'Expected duration')).toMatch(/^about 100 s for /);
    const none = prepared({ estimates: new Map([[h.id, { bytes: 10_000_000_000, bytesPerSecond: null, drills: 0 }]]) });
    expect(fact(restoreAction.plan(h, { params: base, prepared: none }), 'Expected duration')).toMatch(
      /^unknown: no restore drill of this herd has passed yet/,
    );
  });

  it('a drill says what it restores: the latest backup, or one that ended by the time asked for', () => {
    const drill = (params: object) =>
      restoreDrillAction.plan(h, {
        params: { serverId: 7, dataDirectory: '/var/lib/postgresql/15/drill', ...params },
        prepared: { ...prepared(), launch: null, launches: new Map() },
      });
    expect(fact(drill({}), 'Restores')).toMatch(/the latest backup and the archive$/);
    expect(fact(drill({ target: 'time', time: '2026-11-25T21:00:00Z' }), 'Restores')).toMatch(
      /a backup that ended by .*2026-11-25.*, and the archive up to then$/,
    );
  });

  it('refuses another environment\u2019s server, a server of the inventory, a name taken, a target without its value', () => {
    const refused = (params: object, over: object = {}) =>
      restoreAction.plan(h, { params: { ...base, ...params }, prepared: prepared(over) }).refused;
    // Another environment's server is not named, nor its environment: the same answer as an id that is none.
    const foreign = refused({}, { server: { ...server, environmentId: h.environmentId + 1, environment: 'staging' } });
    expect(foreign).toBe('server 7 is not a server of this environment');
    expect(refused({}, { server: null })).toBe(foreign);
    expect(refused({}, { server: { ...server, instances: 2 } })).toMatch(/holds 2 instance\(s\) of pgherd's inventory/);
    expect(refused({}, { takenNames: new Set([`${h.environmentId}/billing-restored`]) })).toMatch(
      /has a herd named billing-restored already/,
    );
    expect(refused({ target: 'time' })).toMatch(/target time needs a time/);
    expect(refused({ target: 'before-operation', operationId: 9 })).toMatch(/operation #9 never ran a step on this herd/);
  });

  it('refuses bad input with a clear error', () => {
    // Where parameters come in (the page, the form, the API): a 400 saying which and why, nothing planned.
    for (const [params, message] of [
      [{ dataDirectory: '/var/lib/../etc' }, /^dataDirectory: an absolute path/],
      [{ dataDirectory: 'relative/dir' }, /^dataDirectory: an absolute path/],
      [{ dataDirectory: '/data/a b' }, /^dataDirectory: an absolute path/],
      [{ name: 'Bad Name!' }, /^name: the new herd/],
      [{ port: '80' }, /^port: 1024 to 65535/],
      [{ port: '1e4' }, /^port: a whole number/],
      [{ lsn: 'zz' }, /^lsn: a WAL position/],
      [{ time: 'yesterday' }, /^time: an ISO 8601 date and time/],
      [{ time: '1' }, /^time: an ISO 8601/],
      [{ time: 'March 7' }, /^time: an ISO 8601/],
      [{ time: '12/11/2026' }, /^time: an ISO 8601/],
      [{ time: '2026-02-30T00:00:00Z' }, /^time: an ISO 8601/],
      [{ time: '2026-11-25 22:00:00' }, /^time: an ISO 8601/],
      [{ time: '9999-12-31T00:00:00Z' }, /^time: an ISO 8601/],
      [{ target: 'whenever' }, /^target: /],
      [{ serverId: 'x' }, /^serverId: /],
      [{ extra: 1 }, /Unrecognized key/],
    ] as const)
      expect(() => parseParams(restoreAction, { ...base, ...params })).toThrow(message);
    // Written in full with its zone, it is read as written.
    for (const time of ['2026-11-25T21:00:00Z', '2026-11-25 22:00:00.5+01:00', '2026-11-25T21:00+0000'])
      expect(parseParams(restoreAction, { ...base, target: 'time', time })).toMatchObject({ time });
  });
});

describe('backups on schedules', () => {
  it('a rule may take backups and run drills; a restore is a person\u2019s decision', () => {
    expect(scheduleProblems(backupAction, { type: 'full' })).toEqual([]);
    expect(scheduleProblems(restoreDrillAction, {})).toEqual([]);
    expect(scheduleProblems(restoreAction, {})).toEqual([
      { path: 'action', message: 'Restore to a new herd cannot be scheduled: a person decides it at the moment, on the console' },
    ]);
  });
});

describe('Replace member and Evacuate', () => {
  const h = herd(three({ 2: { upstreamId: 1 }, 3: { upstreamId: 1 } }));
  const [, r2, r3] = h.members as [InstanceRef, InstanceRef, InstanceRef];
  // The first replica found streaming from the primary: the seed's default choice.
  const t = { ...r2, cloud: { region: 'eu-west-1', instanceId: 'i-0r2' } };
  const prepared = {
    herds: new Map([[h.id, h]]),
    // No backups: a successor is seeded from a replica.
    add: { policies: new Map(), setups: new Map(), server: null, launch: new Map(), lastFull: new Map() },
    retire: { herds: new Map([[h.id, h]]), hosts: new Map([[t.id, { launchedRowId: 3, neighbours: 0 }]]), needs: new Map() },
    launch: new Map([[t.id, { plan: launchFixture(h, t.hostname), like: t, avoided: null }]]),
  };
  const seededFrom = (a: InstanceAction) => {
    const p = a.plan(t, { members: h.members, params: { dataDirectory: '/var/lib/postgresql/r/data' }, prepared });
    expect(p.refused).toBeUndefined();
    return p.facts?.find((f) => f.label === 'Seeded from')?.value ?? '';
  };

  it('Evacuate never seeds the successor from the member EC2 is taking back', () => {
    const evacuate = actions.find((a): a is InstanceAction => a.name === 'spot-evacuate')!;
    expect(seededFrom(evacuate)).toMatch(new RegExp(`^${r3.label}, a replica`));
  });

  it('Replace member may seed from the member it replaces, which stays up until the successor streams', () => {
    const replace = actions.find((a): a is InstanceAction => a.name === 'replace')!;
    expect(seededFrom(replace)).toMatch(new RegExp(`^${r2.label}, a replica`));
  });
});

describe('Retire and Evacuate with what points at the member', () => {
  const readName = {
    id: 2,
    name: 'orders-ro.db.example.com',
    type: 'A' as const,
    zone: 'db.example.com',
    provider: 'rfc2136' as const,
    ttl: 30,
    match: 'role' as const,
    matchRole: 'replica' as const,
    matchInstanceId: null,
  };
  const pinnedTo = (id: number) => ({
    ...readName,
    id: 3,
    name: 'orders-3.db.example.com',
    type: 'CNAME' as const,
    match: 'instance' as const,
    matchRole: null,
    matchInstanceId: id,
  });
  const base = herd(three({ 2: { upstreamId: 1 }, 3: { upstreamId: 1 } }));
  const h = { ...base, dns: [...base.dns, readName, pinnedTo(3)] };
  const [p1, , m3] = h.members as [InstanceRef, InstanceRef, InstanceRef];
  const primary = { ...p1, cloud: { region: 'eu-west-1', instanceId: 'i-0p1' } };
  const r3 = { ...m3, cloud: { region: 'eu-west-1', instanceId: 'i-0r3' } };
  const retirePrepared = (t: InstanceRef) => ({
    herds: new Map([[h.id, h]]),
    hosts: new Map([[t.id, { launchedRowId: 3, neighbours: 0 }]]),
    needs: new Map(),
  });
  const evacuatePrepared = (t: InstanceRef) => ({
    herds: new Map([[h.id, h]]),
    add: { policies: new Map(), setups: new Map(), server: null, launch: new Map(), lastFull: new Map() },
    retire: retirePrepared(t),
    launch: new Map([[t.id, { plan: launchFixture(h, t.hostname), like: t, avoided: null }]]),
  });
  const retire = actions.find((a): a is InstanceAction => a.name === 'retire')!;
  const evacuate = actions.find((a): a is InstanceAction => a.name === 'spot-evacuate')!;
  const params = { dataDirectory: '/var/lib/postgresql/r/data' };

  it('Retire refuses a member another replica streams from, and one a name is pinned to', () => {
    const cascading = h.members.map((m) => (m.id === 2 ? { ...m, upstreamId: 3 } : m));
    expect(retire.plan(r3, { members: cascading, params: {}, prepared: retirePrepared(r3) }).refused).toMatch(
      /streams from .*: re-point it at the primary first/,
    );
    expect(retire.plan(r3, { members: h.members, params: {}, prepared: retirePrepared(r3) }).refused).toMatch(
      /orders-3\.db\.example\.com is pinned to/,
    );
  });

  it('Evacuate drains the names pinned to the member first, never refusing for them', () => {
    const p = evacuate.plan(r3, { members: h.members, params, prepared: evacuatePrepared(r3) });
    expect(p.refused).toBeUndefined();
    expect(p.steps[0]).toMatch(/^point orders-ro\.db\.example\.com away from/);
    expect(p.steps[1]).toMatch(/^point orders-3\.db\.example\.com away from/);
  });

  it('Evacuate of a primary: the switchover moves the write name only, the read names never take the old host back', () => {
    const p = evacuate.plan(primary, { members: h.members, params, prepared: evacuatePrepared(primary) });
    expect(p.refused).toBeUndefined();
    const names = evacuate.steps(primary, deps, { members: h.members, params, prepared: evacuatePrepared(primary) }).map((s) => s.name);
    expect(names.filter((n) => n.startsWith('switchover: DNS'))).toEqual(['switchover: DNS: orders.db.example.com']);
    expect(names).toContain('successor: DNS: orders-ro.db.example.com');
  });
});
