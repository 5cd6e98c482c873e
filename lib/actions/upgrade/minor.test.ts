// The minor upgrade's plan on hand-made herds: what it refuses, in what order it moves members, and
// which build each member goes to.
import { describe, expect, it } from 'vitest';
import { herd, member } from '@/lib/testing/refs';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { checkDriver } from '@/lib/engine/define-action';
import { newestEverywhere, upgradeMinorAction, versionNum, versionText, type Build } from './minor.action';

const OLD = '/opt/pg/15.17/bin';
const NEW = '/usr/lib/postgresql/15/bin';
const b = (binDir: string, v: number): Build => ({ binDir, versionNum: v, versionText: `postgres (PostgreSQL) ${versionText(v)}` });
const on15_17 = (m: InstanceRef): InstanceRef => ({ ...m, serverVersionNum: 150017, binDir: OLD });
const members = () => [on15_17(member(1, 'primary')), on15_17(member(2, 'replica')), on15_17(member(3, 'replica'))];
const everywhere = (ms: InstanceRef[], builds: Build[]) => new Map(ms.map((m) => [m.serverId, builds]));
const plan = (ms: InstanceRef[], params: Record<string, unknown>, builds = everywhere(ms, [b(OLD, 150017), b(NEW, 150018)])) =>
  upgradeMinorAction.plan(herd(ms), { params, prepared: { builds } });

describe('upgrade-minor plan', () => {
  it('reads releases', () => {
    expect(versionNum('15.18')).toBe(150018);
    expect(versionNum('15')).toBeNull();
    expect(versionText(170010)).toBe('17.10');
  });

  it('goes to the newest release of the major that every host has, replicas first, then a switchover, then the old primary', () => {
    const p = plan(members(), {});
    expect(p.refused).toBeUndefined();
    const order = p.facts?.find((f) => f.label === 'In order')?.value ?? '';
    expect(order).toBe(
      'db-2.example.com:5432 onto 15.18; then db-3.example.com:5432 onto 15.18; then switch over to db-2.example.com:5432; then db-1.example.com:5432 onto 15.18',
    );
    expect(p.steps.join('\n')).toContain(`pg_ctl start on ${NEW}`);
    // Only where every host has it: one host without 15.18 makes 15.17 the newest everywhere.
    const ms = members();
    const builds = everywhere(ms, [b(OLD, 150017), b(NEW, 150018)]);
    builds.set(3, [b(OLD, 150017)]);
    expect(newestEverywhere(builds, [1, 2, 3], 15)).toBe(150017);
    expect(plan(ms, {}, builds).refused).toMatch(/every member runs 15\.17 already/);
    expect(plan(ms, { toVersion: '15.18' }, builds).refused).toMatch(/no 15\.18 build on db-3\.example\.com \(its agent reports 15\.17\)/);
  });

  it('refuses a major, a herd Patroni or packages run, a member down or never observed, a herd of one', () => {
    expect(plan(members(), { toVersion: '16.9' }).refused).toMatch(/another major .* blue\/green/);
    // A herd Patroni runs: its driver lacks the capability, and the engine refuses before any plan is made.
    expect(() => checkDriver(upgradeMinorAction, 'patroni')).toThrow(
      /Patroni runs this herd: pgherd does not restart its members on another build/,
    );
    expect(
      plan(
        members().map((m) => ({ ...m, controlDriver: 'pg_ctlcluster' })),
        {},
      ).refused,
    ).toMatch(/upgrade the package on each host/);
    const ms = members();
    ms[2] = { ...ms[2]!, state: 'stopped' };
    expect(plan(ms, {}).refused).toMatch(/db-3\.example\.com:5432 is stopped: start it/);
    const never = members();
    never[1] = { ...never[1]!, serverVersionNum: null };
    expect(plan(never, {}).refused).toMatch(/its version is not known yet/);
    expect(plan([on15_17(member(1, 'primary'))], {}).refused).toMatch(/no replica to switch over to/);
  });

  it('leaves members on the target as they are: an upgrade cut short is finished by running it again', () => {
    const ms = members();
    ms[1] = { ...ms[1]!, serverVersionNum: 150018, binDir: NEW };
    const p = plan(ms, {});
    const order = p.facts?.find((f) => f.label === 'In order')?.value ?? '';
    expect(order).not.toContain('db-2.example.com:5432 onto');
    expect(p.facts?.find((f) => f.label === 'db-2.example.com (replica)')?.value).toMatch(/runs 15\.18 already/);
  });
});
