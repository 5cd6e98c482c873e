// Power off and power on of a member pgherd runs with pg_ctl, through its EC2 host: Postgres stopped cleanly first, then EC2 stop; EC2
// start, then Postgres up (started over SSH if the host does not start it) and, for a replica,
// streaming again. Every wait bounded. The building block schedules use to park dev fleets at night.
// A primary is warned about, as stop warns (clients lose their connections), not refused.
import { eq } from 'drizzle-orm';
import { servers } from '@/db/schema';
import { ec2Client } from '@/lib/adapters/aws/config';
import { awsErrorText } from '@/lib/adapters/aws/errors';
import { recheckIdentity } from '@/lib/fleet/cloud/identity';
import {
  describeInstancesById,
  isCapacityOrTypeRefusal,
  setInstanceType,
  startInstance,
  stopInstance,
  waitBounds,
} from '@/lib/adapters/aws/ec2';
import { commonWarnings, type ActionDeps, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { recordTargets } from '@/lib/fleet/dns-records';
import type { DnsRecordRef, HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, waitObserved } from '@/lib/fleet/observe';
import { mayComeUpAsPrimary, observeOthers, primariesOrMaybe, type OtherSeen } from '@/lib/fleet/herd-primary';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { postgresUpStep, refreshStep, sshControlStep } from '@/lib/actions/steps/control-steps';
import { execNoted } from '@/lib/actions/steps/exec-noted';
import { driverFor, STATUS_NOT_RUNNING } from '@/lib/fleet/drivers';
import { errorText } from '@/lib/engine/errors';
import { refreshInstance } from '@/lib/fleet/record-observation';
import { recordType, type CloudTarget, type ResizePrepared } from '@/lib/actions/drivers/cloud-prepare';
import { DEFAULT_MAX_LAG_SECONDS, drainTargets, namesBack, recordsAt, waitOutTtlStep, withBacks } from '@/lib/actions/steps/drain-steps';
import { dnsSteps, recordArg } from '@/lib/actions/steps/dns-steps';
import type { PowerState } from '../driver';

const STREAMING_TIMEOUT_MS = 300_000;

/** The target's EC2 host, or why it cannot be powered off or on. */
function cloudOf(t: InstanceRef, p: ResizePrepared, wanted: 'running' | 'stopped'): CloudTarget | Refusal {
  const c = p.byServer.get(t.serverId);
  if (!c)
    return refuse(
      'cloud',
      `${t.hostname} has no EC2 identity: run EC2 discovery, or give the server its cloud provider (aws), region and instance id`,
    );
  if (c.neighbours.length)
    return refuse('not-applicable', `${t.hostname} also runs ${c.neighbours.join(', ')}: this powers the whole host`);
  if (!c.live) return refuse('cloud', `EC2 does not know ${c.instanceId} in ${c.region} (terminated, or another account)`);
  if (c.identity) return refuse('cloud', c.identity);
  if (c.live.state !== wanted)
    return refuse('not-applicable', `${c.instanceId} is ${c.live.state}: power ${wanted === 'running' ? 'off' : 'on'} needs it ${wanted}`);
  return c;
}

const instanceFact = (c: CloudTarget) => ({
  label: 'EC2 instance',
  value: `${c.instanceId} (${c.live?.instanceType ?? '?'}) in ${c.live?.availabilityZone ?? '?'}`,
});

/** The herd's other members as they answer now, each with its host's EC2 state (one describe a region). */
async function seenWithHosts(t: InstanceRef, members: InstanceRef[]): Promise<OtherSeen[]> {
  const others = members.filter((m) => m.id !== t.id);
  const regions = new Map<string, string[]>();
  for (const m of others) if (m.cloud) regions.set(m.cloud.region, [...(regions.get(m.cloud.region) ?? []), m.cloud.instanceId]);
  const [observed, described] = await Promise.all([
    observeOthers(t, members),
    Promise.all([...regions].map(([region, ids]) => describeInstancesById(ec2Client(region), region, [...new Set(ids)]))),
  ]);
  const state = new Map(described.flat().map((i) => [i.instanceId, i.state]));
  return observed.map(({ m, o }) => ({ m, o, ec2: m.cloud ? (state.get(m.cloud.instanceId) ?? null) : null }));
}

async function recordState(deps: ActionDeps, t: InstanceRef, state: string) {
  await deps.db.update(servers).set({ cloudState: state, cloudSeenAt: new Date() }).where(eq(servers.id, t.serverId));
}

/** What the steps of an EC2 power off or on share: the member, its EC2 host, the bounds of each wait. */
interface Ec2Power {
  t: InstanceRef;
  c: CloudTarget;
  bounds: ReturnType<typeof waitBounds>;
  ec2: () => ReturnType<typeof ec2Client>;
}

/** EC2's power off of `t`'s host: Postgres stopped cleanly, its names drained first, then EC2 stop. */
export function planEc2PowerOff(t: InstanceRef, members: InstanceRef[], prepared: ResizePrepared): ActionPlan<PowerState> | Refusal {
  const c = cloudOf(t, prepared, 'running');
  if (!('instanceId' in c)) return c;
  const z: Ec2Power = { t, c, bounds: waitBounds(), ec2: () => ec2Client(c.region) };
  // Its DNS names go to another member first, as a resize's drain (power on puts them back); a name
  // with nowhere else to go (a primary's write name) stays, and the plan warns.
  const herd = prepared.herds.get(t.herdId);
  const at = herd ? recordsAt(herd, members, t) : [];
  const drained = at.filter((rec) => typeof drainTargets(rec, members, t) !== 'string');
  const stuck = at.filter((rec) => !drained.includes(rec));
  const steps: ActionStep<PowerState>[] = [
    checkInstanceStep(z),
    ...(herd && drained.length ? drainSteps(t, herd, members, drained) : []),
    sshControlStep<PowerState>(t, 'stop', 'stop Postgres', (s) => (s.wasUp ? false : 'Postgres was not running')),
    ec2StopStep(z),
    refreshStep(t),
  ];
  return {
    steps,
    before: { state: 'running' },
    warnings: [
      ...commonWarnings(t),
      // A name left on a host going down is part of what powering it off does to its clients.
      ...stuck.map((rec) => ({
        says: `${rec.name} has no other member to point at: it keeps answering ${t.hostname}, which will be down`,
        does: { kind: 'warn.dns-left-on-host', record: recordArg(rec), host: t.hostname },
      })),
    ],
    facts: [instanceFact(c), { label: 'DNS drained', value: drained.length ? drained.map((d) => d.name).join(', ') : 'none' }],
  };
}

/** Still running and ours, and whether Postgres runs (asked of its host when it does not answer): else nothing is changed. */
function checkInstanceStep({ t, c, ec2 }: Ec2Power): ActionStep<PowerState> {
  return {
    name: 'check the EC2 instance',
    does: { kind: 'ec2.check-running', instanceId: c.instanceId, region: c.region, instance: memberArg(t) },
    says: `check that ${c.instanceId} still runs, and whether Postgres answers`,
    timeoutMs: 30_000,
    run: async (x) => {
      const [now] = await describeInstancesById(ec2(), c.region, [c.instanceId]);
      if (now?.state !== 'running') throw refuse('cloud', `${c.instanceId} is now ${now?.state ?? 'unknown to EC2'}; nothing was changed`);
      const notOurs = await recheckIdentity(x.deps.db, t.serverId, c.region, c.instanceId);
      if (notOurs) throw refuse('cloud', `${notOurs}; nothing was changed`);
      const o = await observe(t);
      if (o.reachable) {
        // What it says of itself now is what its host will boot it as: recorded before it is stopped
        // (a promote done outside pgherd since the refresher last looked makes power on check the herd).
        await refreshInstance(x.deps.db, t.id, t, o);
        x.state.wasUp = true;
        return void x.note({
          stdout: `${c.instanceId}: running; Postgres answers as a ${o.inRecovery ? 'replica' : 'primary'} (timeline ${o.timeline ?? '?'})`,
        });
      }
      // Silent is not down (a hung or overloaded postmaster): the host is asked whether it runs.
      const st = await execNoted(x.deps, t, x, driverFor(t.controlDriver).status(t), 30_000).catch((err: unknown) => {
        throw new Error(
          `Postgres does not answer and ${t.ssh.host} could not be asked whether it runs (${errorText(err)}): nothing was changed`,
        );
      });
      x.state.wasUp = st.code !== STATUS_NOT_RUNNING;
      x.note({
        stdout: `${c.instanceId}: running; Postgres does not answer, and ${t.controlDriver} status says ${x.state.wasUp ? `it runs (exit ${st.code ?? 'by a signal'}): it is stopped cleanly first` : 'no server runs'}`,
      });
    },
  };
}

/**
 * Its DNS names pointed at another member, each carrying the step that puts it back, then their longest
 * TTL waited out.
 */
function drainSteps(t: InstanceRef, herd: HerdRef, members: InstanceRef[], drained: DnsRecordRef[]): ActionStep<PowerState>[] {
  const ttl = Math.max(0, ...drained.map((d) => d.ttl));
  // A power off that stops short of the host (a hung Postgres the clean stop could not stop, say)
  // puts each name back, once the instance answers and, a replica, streams; never after EC2's stop.
  const backSteps = dnsSteps<PowerState>(
    herd,
    () => members,
    (rec) => recordTargets(rec, members),
    (rec) => `${rec.name} back to ${t.hostname} if the host was not stopped and it still serves`,
    (rec) => drained.includes(rec),
    { name: (rec) => `DNS back: ${rec.name}` },
  );
  return [
    ...withBacks(
      dnsSteps<PowerState>(
        herd,
        () => members,
        (rec) => drainTargets(rec, members, t),
        (rec) => `drain ${rec.name}: point it at another member`,
        (rec) => drained.includes(rec),
        { targetsOf: (rec, ms) => drainTargets(rec, ms, t), name: (rec) => `DNS drain: ${rec.name}` },
      ),
      backSteps,
      t,
      DEFAULT_MAX_LAG_SECONDS,
      (st) => (st.hostStopped ? 'the host was stopped: the name stays drained until power on' : null),
      'note',
    ),
    waitOutTtlStep<PowerState>(ttl, t.hostname),
  ];
}

/** EC2 stop, its identity asked again at the last moment; the inventory says stopped. */
function ec2StopStep({ t, c, bounds, ec2 }: Ec2Power): ActionStep<PowerState> {
  return {
    name: 'EC2: stop',
    does: { kind: 'ec2.stop', instanceId: c.instanceId, region: c.region },
    says: `stop ${c.instanceId} and wait until EC2 says stopped (at most ${bounds.maxWaitSeconds} s)`,
    timeoutMs: (bounds.maxWaitSeconds + 30) * 1000,
    run: async (x) => {
      // Asked again at the last moment: the row may have been edited, or the instance moved, since the check.
      const notOurs = await recheckIdentity(x.deps.db, t.serverId, c.region, c.instanceId);
      if (notOurs) throw refuse('cloud', `${notOurs}; the instance was not stopped`);
      x.state.hostStopped = true;
      await stopInstance(ec2(), c.instanceId, { ...bounds, signal: x.signal });
      await recordState(x.deps, t, 'stopped');
      x.deps.outcome?.(`${c.instanceId} stopped`);
    },
  };
}

/** EC2's power on of `t`'s host: EC2 start, then Postgres up (started over SSH if the host does not) and streaming, its names back. */
export function planEc2PowerOn(t: InstanceRef, members: InstanceRef[], prepared: ResizePrepared): ActionPlan<unknown> | Refusal {
  // Whether it may boot as a primary goes by what it last said of itself (the action refused a second primary).
  const mayBePrimary = mayComeUpAsPrimary(t);
  const c = cloudOf(t, prepared, 'stopped');
  if (!('instanceId' in c)) return c;
  const z: Ec2Power = { t, c, bounds: waitBounds(), ec2: () => ec2Client(c.region) };
  const back = c.recordedType && c.live && c.recordedType !== c.live.instanceType ? c.recordedType : null;
  const herd = prepared.herds.get(t.herdId);
  // The names that answer it once it runs again, pointed at it at the end.
  const { names, steps: namesBackSteps } = namesBack(herd, members, t, (rec) => `point ${rec.name} at it again`);
  const steps: ActionStep[] = [
    noOtherPrimaryStep(t, members, mayBePrimary),
    ec2StartStep(z, back),
    postgresUpStep(t),
    ...(t.role === 'replica' ? [waitStreamingStep(t)] : []),
    // Its DNS names back on it (a resize that could not start it again left them drained, say).
    ...namesBackSteps,
    refreshStep(t),
  ];
  return {
    steps,
    before: { state: 'stopped' },
    warnings: commonWarnings(t),
    facts: [
      instanceFact(c),
      ...(back
        ? [
            {
              label: 'Type',
              value: `${c.live?.instanceType ?? '?'} in EC2, ${back} in the inventory (a resize cut short): ${back} again if EC2 has no capacity for ${c.live?.instanceType ?? '?'}`,
            },
          ]
        : []),
      { label: 'DNS names', value: names.length ? names.map((n) => n.name).join(', ') : 'none point at it' },
    ],
  };
}

/** A member that may boot as a primary is started only when no other member is, or may be, one. */
function noOtherPrimaryStep(t: InstanceRef, members: InstanceRef[], mayBePrimary: boolean): ActionStep {
  return {
    name: 'no other primary',
    does: { kind: 'pg.check-no-other-primary', instance: memberArg(t), mayBePrimary },
    says: mayBePrimary
      ? `${t.label} may boot as a primary: check that no other member of the herd is, or may be, one (a member that does not answer counts unless its host is stopped or it last said it was a replica)`
      : `${t.label} last answered as a replica: its host boots it as one`,
    timeoutMs: 30_000,
    run: async (x) => {
      if (!mayBePrimary) {
        x.note({ stdout: `${t.label} last answered as a replica` });
        return;
      }
      const seen = await seenWithHosts(t, members);
      const found = primariesOrMaybe(seen, t);
      if (found.length)
        throw refuse(
          'split-brain',
          `${found.map((f) => f.why).join('; ')}. ${t.label} may boot as a primary beside it: nothing was started`,
        );
      x.note({
        stdout:
          seen
            .map(
              ({ m, o, ec2 }) =>
                `${m.label}: ${o.reachable ? (o.inRecovery ? 'replica' : 'primary') : 'no answer'}${ec2 ? `, host ${ec2}` : ''}`,
            )
            .join('\n') || 'no other member',
      });
    },
  };
}

/** EC2 start, its identity asked again first; `back`: the type last recorded, tried once when EC2 has no capacity for the one it has. */
function ec2StartStep({ t, c, bounds, ec2 }: Ec2Power, back: string | null): ActionStep {
  return {
    name: 'EC2: start',
    does: { kind: 'ec2.start', instanceId: c.instanceId, region: c.region, type: c.live?.instanceType ?? null, elseType: back },
    says: `start ${c.instanceId} and wait until EC2 says running (at most ${bounds.maxWaitSeconds} s)${back ? `; when EC2 has no capacity for ${c.live?.instanceType ?? '?'}, ${back} (the type last recorded) again` : ''}`,
    timeoutMs: (bounds.maxWaitSeconds + 30) * 1000 * (back ? 2 : 1),
    run: async (x) => {
      const notOurs = await recheckIdentity(x.deps.db, t.serverId, c.region, c.instanceId);
      if (notOurs) throw refuse('cloud', `${notOurs}; the instance was not started`);
      try {
        await startInstance(ec2(), c.instanceId, { ...bounds, signal: x.signal });
        x.note({ stdout: `${c.instanceId}: running as ${c.live?.instanceType ?? '?'}` });
      } catch (err) {
        // A resize cut short after the type changed leaves the host stopped on a type EC2 may have
        // no capacity for: the type the inventory last recorded (the one it ran as) is tried once.
        if (!back || !isCapacityOrTypeRefusal(err)) throw err;
        await setInstanceType(ec2(), c.instanceId, back);
        await startInstance(ec2(), c.instanceId, { ...bounds, signal: x.signal });
        x.note({
          stdout: `${c.live?.instanceType ?? '?'}: ${awsErrorText(err)}\n${c.instanceId}: running as ${back} (the type last recorded) again`,
        });
        x.deps.outcome?.(`running as ${back} again (${c.live?.instanceType ?? '?'} had no capacity)`);
      }
      // The type and state EC2 has now, into the inventory (a type changed since is audited).
      const [now] = await describeInstancesById(ec2(), c.region, [c.instanceId]);
      if (now) await recordType(x.deps, t, now);
      else await recordState(x.deps, t, 'running');
    },
  };
}

/** A replica powered on: waits until it streams from its upstream again. */
function waitStreamingStep(t: InstanceRef): ActionStep {
  return {
    name: 'streaming',
    does: { kind: 'pg.wait-streaming', instance: memberArg(t) },
    says: 'wait until it streams from its upstream again',
    timeoutMs: STREAMING_TIMEOUT_MS + 10_000,
    run: async (x) => {
      const o = await waitObserved(t, 'streaming', (v) => v.reachable && v.walReceiver?.status === 'streaming', {
        timeoutMs: STREAMING_TIMEOUT_MS,
        signal: x.signal,
      });
      x.note({ stdout: `streaming from ${o.walReceiver?.senderHost ?? '?'}:${o.walReceiver?.senderPort ?? '?'}` });
    },
  };
}
