// The digest: a plan goes stale when what it would do changes, never because an observation moved, nor
// because its words did.
import { describe, expect, it } from 'vitest';
import { drFailoverAction } from '@/lib/actions/topology/dr-failover.action';
import { restartAction } from '@/lib/actions/control/restart.action';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { newSwitchoverState, switchoverParams } from '@/lib/actions/drivers/switchover';
import { refreshDnsAction } from '@/lib/actions/topology/refresh-dns.action';
import { resizeAction } from '@/lib/actions/cloud/resize.action';
import { confirmedSteps } from '@/lib/engine/plan-identity';
import { Refusal } from '@/lib/fleet/refusal';
import { resizePrepared } from '@/lib/testing/cloud';
import {
  defineHerdAction,
  herdServers,
  unpinnedRefusal,
  type ActionDeps,
  type ActionStep,
  type AnyAction,
  type HerdAction,
  type InstanceAction,
} from '@/lib/engine/define-action';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import { herd, member } from '@/lib/testing/refs';
import { identityProblem } from '@/lib/fleet/identity';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { digestOf, typeToConfirm, type PlannedTarget } from '@/lib/engine/plan';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { asks, planSwitchoverOf } from '@/lib/actions/drivers';

/** The digest planOperation computes for one herd action on one herd. */
function herdDigest(action: HerdAction, h: HerdRef, params: Record<string, unknown> = {}) {
  const t = action.plan(h, { params });
  const target: Pick<PlannedTarget, 'instanceId' | 'herdId' | 'refused' | 'refusalCode' | 'does' | 'warns'> = {
    ...t,
    instanceId: null,
    herdId: h.id,
  };
  return { plan: t, digest: digestOf(action.name, h.members, params, [h], [target]) };
}

function instanceDigest(action: InstanceAction, t: InstanceRef, members: InstanceRef[]) {
  const p = action.plan(t, { members, params: {} });
  return digestOf(action.name, members, {}, [], [{ ...p, instanceId: t.id, herdId: t.herdId }]);
}

const base = () => [member(1, 'primary', { lsn: 5000 }), member(2, 'replica', { lsn: 4000 }), member(3, 'replica', { lsn: 3000 })];

describe('plan digest', () => {
  it('a DR failover plan does not go stale when the old primary is seen stopped, or when LSNs and lag move', () => {
    const before = herdDigest(drFailoverAction, herd(base()));
    const seenDead = base().map((m) => (m.id === 1 ? { ...m, state: 'stopped' } : { ...m, lsn: (m.lsn ?? 0) + 7, lagBytes: 123 }));
    const after = herdDigest(drFailoverAction, herd(seenDead));
    expect(after.plan.refused).toBeUndefined();
    // What the page shows did change (the old primary's state)...
    expect(after.plan.facts?.find((f) => f.label === 'Old primary')?.value).toContain('(stopped)');
    expect(before.plan.facts?.find((f) => f.label === 'Old primary')?.value).toContain('(running)');
    // ...what will happen did not.
    expect(after.digest).toBe(before.digest);
  });

  it('a DR failover plan without a named candidate does not go stale when the replicas swap places', () => {
    const before = herdDigest(drFailoverAction, herd(base()));
    const swapped = base().map((m) => (m.id === 3 ? { ...m, lsn: 4500 } : m));
    expect(herdDigest(drFailoverAction, herd(swapped)).digest).toBe(before.digest);
  });

  it('goes stale when where the commands go changes: a member re-addressed, moved, re-keyed, or another candidate named', () => {
    const before = herdDigest(drFailoverAction, herd(base())).digest;
    const moved = (over: Partial<InstanceRef>) =>
      herdDigest(drFailoverAction, herd(base().map((m) => (m.id === 2 ? { ...m, ...over } : m)))).digest;
    expect(moved({ host: '10.0.9.9' })).not.toBe(before);
    expect(moved({ port: 5433 })).not.toBe(before);
    expect(moved({ dataDirectory: '/srv/pg' })).not.toBe(before);
    expect(moved({ ssh: { host: '10.0.0.2', port: 22, username: 'postgres', hostKeyFingerprint: 'SHA256:other' } })).not.toBe(before);
    expect(moved({ environmentId: 2 })).not.toBe(before);
    expect(herdDigest(drFailoverAction, herd(base()), { candidateInstanceId: 3 }).digest).not.toBe(before);
  });

  it("goes stale when a member's Patroni REST address or its herd's Patroni scope changes, whatever the steps' words say", () => {
    // Only the identity, no targets: what is confirmed is structured data, not the sentences shown.
    const patroni = (over: Partial<InstanceRef> = {}) =>
      base().map((m) => ({ ...m, controlDriver: 'patroni', patroniUrl: `https://${m.host}:8008`, patroniScope: 'orders', ...over }));
    const before = digestOf('reload', patroni());
    expect(digestOf('reload', patroni())).toBe(before);
    expect(digestOf('reload', patroni({ patroniUrl: 'https://10.0.0.2:8443' }))).not.toBe(before);
    expect(digestOf('reload', patroni({ patroniScope: 'orders-2' }))).not.toBe(before);
  });

  it('goes stale when a switchover would promote another replica, or when it would now be refused', () => {
    const before = herdDigest(switchoverAction, herd(base()));
    expect(before.plan.steps.join('\n')).toContain('promote db-2.example.com:5432');
    const swapped = herdDigest(switchoverAction, herd(base().map((m) => (m.id === 3 ? { ...m, lsn: 4500 } : m))));
    expect(swapped.plan.steps.join('\n')).toContain('promote db-3.example.com:5432');
    expect(swapped.digest).not.toBe(before.digest);
    // The same candidate a little further behind (still within the limit): the same plan.
    expect(herdDigest(switchoverAction, herd(base().map((m) => (m.id === 2 ? { ...m, lsn: 3900 } : m)))).digest).toBe(before.digest);
    const lagging = herdDigest(switchoverAction, herd(base()), { candidateInstanceId: 2, maxLagBytes: 10 });
    expect(lagging.plan.refused).toMatch(/behind/);
    expect(lagging.digest).not.toBe(herdDigest(switchoverAction, herd(base()), { candidateInstanceId: 2, maxLagBytes: 10_000 }).digest);
  });

  it('goes stale when a restart target became the primary (its warning changes), not when its LSN moves', () => {
    const members = base();
    const before = instanceDigest(restartAction, members[1]!, members);
    const moved = members.map((m) => ({ ...m, lsn: (m.lsn ?? 0) + 100 }));
    expect(instanceDigest(restartAction, moved[1]!, moved)).toBe(before);
    const promoted = members.map((m) =>
      m.id === 2 ? { ...m, role: 'primary' as const } : m.id === 1 ? { ...m, role: 'replica' as const } : m,
    );
    expect(instanceDigest(restartAction, promoted[1]!, promoted)).not.toBe(before);
  });

  it('every action\u2019s plan is a function of the inventory only (no clock, no randomness)', () => {
    const h = herd(base());
    for (const a of [drFailoverAction, switchoverAction] as AnyAction[]) {
      expect(herdDigest(a as HerdAction, h).digest).toBe(herdDigest(a as HerdAction, h).digest);
    }
  });
});

describe('a plan is what it does, not its words', () => {
  const deps = {} as ActionDeps;

  /** The switchover with every sentence of its plan said otherwise (steps, cleanups, warnings), and nothing else changed. */
  const reworded = defineHerdAction({
    name: switchoverAction.name,
    control: asks(null),
    label: switchoverAction.label,
    permission: 'admin',
    dangerous: true,
    params: { schema: switchoverParams, fields: [] },
    state: newSwitchoverState,
    plan: (h, { params }) => {
      const p = planSwitchoverOf(h, params);
      if (p instanceof Refusal) return p;
      const say = <S>(x: ActionStep<S>): ActionStep<S> => ({
        ...x,
        says: `in other words: ${x.says.toUpperCase()}`,
        ...(x.always ? { always: say(x.always) } : {}),
      });
      return {
        ...p,
        steps: p.steps.map(say),
        warnings: p.warnings?.map((w) => (typeof w === 'string' ? `${w}!` : { ...w, says: `${w.says}!` })),
      };
    },
  });

  it('a step said in other words is the same plan: the same digest, and a confirmed plan runs', () => {
    const h = herd(base());
    const words = herdDigest(reworded, h);
    const plain = herdDigest(switchoverAction, h);
    expect(words.plan.steps).toHaveLength(plain.plan.steps.length);
    expect(words.plan.steps.every((x, k) => x !== plain.plan.steps[k])).toBe(true);
    expect(words.plan.warnings).not.toEqual(plain.plan.warnings);
    expect(words.digest).toBe(plain.digest);
    // Confirmed in the old words, run with the new ones: nothing it does changed, so it runs.
    expect(() => switchoverAction.steps(h, deps, { params: {} }, confirmedSteps(words.plan))).not.toThrow();
  });

  it('another instance type is another plan, and what changed names the step and the argument', () => {
    const h = herd(base());
    const r2 = h.members[1]!;
    const ctxOf = (target: string) => {
      const prepared = resizePrepared(h, h.members);
      for (const [id, c] of prepared.byServer)
        if (c?.ranking?.ok) prepared.byServer.set(id, { ...c, ranking: { ...c.ranking, target: { ...c.ranking.target, name: target } } });
      return { members: h.members, params: { instanceType: 'm6i.xlarge' }, prepared };
    };
    const digest = (target: string) => {
      const p = resizeAction.plan(r2, ctxOf(target));
      expect(p.refused).toBeUndefined();
      return { plan: p, digest: digestOf(resizeAction.name, h.members, {}, [], [{ ...p, instanceId: r2.id, herdId: r2.herdId }]) };
    };
    const confirmed = digest('m6i.xlarge');
    expect(digest('m6i.xlarge').digest).toBe(confirmed.digest);
    expect(digest('m6i.2xlarge').digest).not.toBe(confirmed.digest);
    expect(() => resizeAction.steps(r2, deps, ctxOf('m6i.2xlarge'), confirmedSteps(confirmed.plan))).toThrow(
      /changed since it was confirmed: step \d+ was "set the type to m6i\.xlarge[^"]*", now "set the type to m6i\.2xlarge[^"]*" \(types \["m6i\.xlarge"\], now \["m6i\.2xlarge"\]\)/,
    );
  });

  it('another address is another plan, and what changed names the member', () => {
    const members = base();
    const moved = members.map((m) => (m.id === 2 ? { ...m, host: '10.0.9.9', ssh: { ...m.ssh, host: '10.0.9.9' } } : m));
    const confirmed = restartAction.plan(members[1]!, { members, params: {} });
    expect(instanceDigest(restartAction, moved[1]!, moved)).not.toBe(instanceDigest(restartAction, members[1]!, members));
    expect(() => restartAction.steps(moved[1]!, deps, { members: moved, params: {} }, confirmedSteps(confirmed))).toThrow(
      /step 2 was "pg_ctl restart -m fast on 10\.0\.0\.2 [^"]*", now "pg_ctl restart -m fast on 10\.0\.9\.9 [^"]*" \(instance \{"host":"10\.0\.0\.2","id":2,"port":5432\}, now \{"host":"10\.0\.9\.9","id":2,"port":5432\}; sshHost "10\.0\.0\.2", now "10\.0\.9\.9"\)/,
    );
  });

  it('another DNS target is another plan, though no member moved: the record step names where it pointed', () => {
    const h = herd(base());
    // Member 2 is the primary now (a failover outside pgherd): refresh DNS would point the write name elsewhere.
    const swapped = herd(
      base().map((m) => (m.id === 1 ? { ...m, role: 'replica' as const } : m.id === 2 ? { ...m, role: 'primary' as const } : m)),
    );
    const confirmed = herdDigest(refreshDnsAction, h);
    const now = herdDigest(refreshDnsAction, swapped);
    expect(now.plan.steps).toEqual(confirmed.plan.steps.map((x) => x.replace('db-1.example.com', 'db-2.example.com')));
    expect(now.digest).not.toBe(confirmed.digest);
    expect(() => refreshDnsAction.steps(swapped, deps, { params: {} }, confirmedSteps(confirmed.plan))).toThrow(
      /step 2 was "point orders\.db\.example\.com [^"]*", now "point orders\.db\.example\.com [^"]*" \(to \[\{"address":"10\.0\.0\.1","hostname":"db-1\.example\.com","id":1\}\], now \[\{"address":"10\.0\.0\.2","hostname":"db-2\.example\.com","id":2\}\]\)/,
    );
  });
});

describe('identity', () => {
  const want = { systemIdentifier: '7300000000000000001', timeline: 2 };
  it('accepts a member on the herd\u2019s system identifier and timeline', () => {
    expect(identityProblem({ label: 'a' }, { reachable: true, systemIdentifier: '7300000000000000001', timeline: 2 }, want)).toBeNull();
  });
  it('refuses another cluster, a diverged member and one left behind, saying which', () => {
    expect(identityProblem({ label: 'a' }, { reachable: true, systemIdentifier: '7399999999999999999', timeline: 2 }, want)).toMatch(
      /reports system identifier 7399999999999999999, the herd's is 7300000000000000001/,
    );
    expect(identityProblem({ label: 'a' }, { reachable: true, systemIdentifier: '7300000000000000001', timeline: 3 }, want)).toMatch(
      /ahead of the herd's 2: it was promoted somewhere else/,
    );
    expect(identityProblem({ label: 'a' }, { reachable: true, systemIdentifier: '7300000000000000001', timeline: 1 }, want)).toMatch(
      /behind the herd's 2: it did not follow an earlier failover/,
    );
  });
});

describe('what must be typed to confirm (docs/security.md states this rule)', () => {
  const t = (environment: string, refused?: string) =>
    ({
      instanceId: 1,
      label: 'x',
      herdId: 1,
      herd: 'h',
      environment,
      environmentId: 1,
      site: '',
      steps: [],
      does: [],
      warnings: [],
      warns: [],
      refused,
    }) as PlannedTarget;
  it('is the count above 10 targets or across environments, the name for production, the count for a dangerous action on several', () => {
    expect(
      typeToConfirm(
        reloadAction,
        Array.from({ length: 11 }, () => t('staging')),
      ),
    ).toBe('11');
    expect(typeToConfirm(reloadAction, [t('staging'), t('dev')])).toBe('2');
    expect(typeToConfirm(reloadAction, [t('production')])).toBe('production');
    expect(typeToConfirm(reloadAction, [t('prod-eu'), t('prod-eu')])).toBe('prod-eu');
    expect(typeToConfirm(restartAction, [t('staging'), t('staging')])).toBe('2');
    expect(typeToConfirm(restartAction, [t('staging')])).toBeNull();
    expect(typeToConfirm(reloadAction, [t('staging'), t('staging')])).toBeNull();
    // Refused targets do not count.
    expect(typeToConfirm(reloadAction, [t('production', 'refused'), t('staging')])).toBeNull();
  });
});

describe('unpinnedRefusal', () => {
  const pinned = { hostKeyFingerprint: 'SHA256:x' };
  const none = { hostKeyFingerprint: null };
  it('refuses every action but those that pin the key while a server it touches has none, naming each server once', () => {
    expect(unpinnedRefusal({}, [{ name: 'a', ssh: pinned }])).toBeUndefined();
    expect(
      unpinnedRefusal({}, [
        { name: 'a', ssh: none },
        { name: 'b', ssh: pinned },
        { name: 'a', ssh: none },
        { name: 'c', ssh: none },
      ]),
    ).toMatchObject({
      code: 'unpinned-host-key',
      reason:
        'no SSH host key is pinned for a, c: pgherd has not verified these servers, and changes nothing there (over SSH or SQL) until an admin runs Check SSH (pin the host key)',
    });
    expect(unpinnedRefusal({ pinsHostKey: true }, [{ name: 'a', ssh: none }])).toBeUndefined();
  });
  it("counts a herd's PgBouncer servers with its members", () => {
    const h = { members: [{ hostname: 'db1', ssh: pinned }], poolers: [{ label: 'bouncer1:6432', ssh: none }] };
    expect(unpinnedRefusal({}, herdServers(h))?.reason).toMatch(/^no SSH host key is pinned for bouncer1: /);
  });
});
