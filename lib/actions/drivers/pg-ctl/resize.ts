// pg_ctl's resize: a replica's EC2 instance, its clients moved off first and nothing left stopped on a failure.
// Its DNS names are moved to another member and their TTL waited out (the drain); the pre-resize hook;
// a clean Postgres stop; EC2 stop, the new type, EC2 start, each wait bounded; when EC2 has no capacity
// for the type (or cannot run it), the next fallback, and when none is left, the original type again;
// Postgres up and streaming; the post-resize hook; the type recorded; the DNS names back. Cleanups are
// registered before the steps they undo: a failure anywhere still starts the instance, and puts the DNS
// names back. A primary is refused, with the way: resize its herd.
import { eq } from 'drizzle-orm';
import { instances, servers } from '@/db/schema';
import { ec2Client } from '@/lib/adapters/aws/config';
import { awsErrorText } from '@/lib/adapters/aws/errors';
import {
  describeInstancesById,
  isCapacityOrTypeRefusal,
  setInstanceType,
  startInstance,
  stopInstance,
  waitBounds,
  waitSettled,
} from '@/lib/adapters/aws/ec2';
import { recheckIdentity } from '@/lib/fleet/cloud/identity';
import { HOURS_PER_MONTH, priceLine, signedDollars } from '@/lib/fleet/cloud/prices';
import type { TypeChoice } from '@/lib/fleet/cloud/rank';
import { commonWarnings, type ActionDeps, type ActionPlan, type ActionStep, type InstancePlanContext } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import { checkHook, runHook, type HookConfig } from '@/lib/actions/steps/host-hooks';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, waitObserved, type Observed } from '@/lib/fleet/observe';
import { errorText } from '@/lib/engine/errors';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { postgresUpStep, refreshStep, sshControlStep } from '@/lib/actions/steps/control-steps';
import { recordType, type CloudTarget, type ResizePrepared } from '@/lib/actions/drivers/cloud-prepare';
import { DEFAULT_MAX_LAG_SECONDS, namesBack, replicaDrain, streamingStep } from '@/lib/actions/steps/drain-steps';

import { onlyToFinish, type ResizeParams, type ResizeState } from '../resize';

/** How long Postgres may take to answer after its host starts, and to stream again. */
const UP_TIMEOUT_MS = 120_000;

const typeLine = (c: TypeChoice) => `${c.name}: ${c.vcpus} vCPU, ${c.memoryGiB} GiB, ${priceLine(c.perHour)}`;
/**
 * One replica's resize, as the instance action plans it and as a herd resize plans each member: the
 * steps, the facts, the cost now and after; or why it is refused.
 */
/** What the steps of one replica's EC2 resize share: the replica, its instance as EC2 and the ranking have it, the bounds. */
interface Ec2Resize {
  t: InstanceRef;
  c: CloudTarget;
  live: NonNullable<CloudTarget['live']>;
  r: Extract<NonNullable<CloudTarget['ranking']>, { ok: true }>;
  bounds: ReturnType<typeof waitBounds>;
  ec2: () => ReturnType<typeof ec2Client>;
  ec2Arg: { instanceId: string; region: string };
  /** The target type, then the fallbacks in order. */
  types: string[];
  pre: HookConfig | null;
  post: HookConfig | null;
  hookArgs: (phase: string, to: string) => string[];
}

export function planEc2Resize(
  t: InstanceRef,
  { members, params, prepared: p }: InstancePlanContext<ResizeParams, ResizePrepared>,
): ActionPlan<ResizeState> | Refusal {
  const c = p.byServer.get(t.serverId);
  if (!c)
    return refuse(
      'cloud',
      `${t.hostname} has no EC2 identity: run EC2 discovery, or give the server its cloud provider (aws), region and instance id`,
    );
  // What it last said of itself counts as much as the inventory's role (which an admin may edit).
  if (t.role === 'primary' || t.observedRole === 'primary')
    return refuse(
      'not-applicable',
      `${t.role === 'primary' ? 'a primary' : `${t.label} last answered as a primary (the inventory calls it a ${t.role}): a primary`} is not resized on its own: use "Resize a herd", which resizes the replicas one at a time, switches over to a resized one, then resizes the old primary`,
    );
  if (t.state !== 'running' && !onlyToFinish(t, c))
    return refuse('not-applicable', `${t.label} is ${t.state}: a resize drains and restarts a running replica`);
  if (c.neighbours.length)
    return refuse('not-applicable', `${t.hostname} also runs ${c.neighbours.join(', ')}: a resize stops the whole host`);
  if (!c.live) return refuse('cloud', `EC2 does not know ${c.instanceId} in ${c.region} (terminated, or another account)`);
  if (c.identity) return refuse('cloud', c.identity);
  if (c.live.state !== 'running')
    return refuse('cloud', `${c.instanceId} is ${c.live.state}: a resize starts from a running instance (power it on first)`);
  if (!c.ranking) return refuse('cloud', `no type catalogue for ${c.region}`);
  if (!c.ranking.ok) return refuse('cloud', c.ranking.reason);
  const r = c.ranking;
  const herd = p.herds.get(t.herdId);
  if (!herd) return refuse('gone', 'its herd was deleted from the inventory');
  if (r.target.name === r.current.name) return finishPlan(t, members, herd, c, r.current, params);
  const hook = (path: string): HookConfig | null => (path ? { path, on: herd.hooks.on, timeoutSeconds: herd.hooks.timeoutSeconds } : null);
  const maxLag = params.maxLagSeconds ?? DEFAULT_MAX_LAG_SECONDS;
  const drain = replicaDrain<ResizeState>(herd, members, t, maxLag);
  if (drain instanceof Refusal) return drain;
  const z: Ec2Resize = {
    t,
    c,
    live: c.live,
    r,
    bounds: waitBounds(),
    ec2: () => ec2Client(c.region),
    ec2Arg: { instanceId: c.instanceId, region: c.region },
    types: [r.target.name, ...r.fallbacks.map((f) => f.name)],
    pre: hook(herd.hooks.pre),
    post: hook(herd.hooks.post),
    hookArgs: (phase, to) => [phase, t.hostname, String(t.port), c.instanceId, r.current.name, to],
  };
  return {
    steps: [
      checkInstanceStep(z),
      // Each drain carries the step that puts its name back, run at the end whatever happened: never
      // onto a replica that does not answer (its instance could not be started again, say).
      ...drain.steps,
      ...(z.pre ? [hookStep(z, z.pre, 'pre-resize', () => r.target.name)] : []),
      { ...stopUnlessPrimary(t), always: ensureRunningStep(z) },
      ec2StopStep(z),
      newTypeStep(z),
      postgresUpStep(t),
      streamingStep(t, maxLag),
      ...(z.post ? [hookStep(z, z.post, 'post-resize', (state) => state.landed ?? r.target.name)] : []),
      recordTypeStep(z),
      refreshStep(t),
    ],
    warnings: commonWarnings(t),
    before: { instanceType: r.current.name },
    cost: { nowPerHour: r.current.perHour, afterPerHour: r.target.perHour },
    facts: resizeFacts(z, p, drain.drained),
  };
}

/** A hook run where its configuration says (the worker's host, or the replica's), with the resize's arguments. */
function hookStep(z: Ec2Resize, h: HookConfig, phase: string, to: (state: ResizeState) => string): ActionStep<ResizeState> {
  const { t, hookArgs } = z;
  return {
    name: `${phase} hook`,
    does: {
      kind: 'hook.run',
      phase,
      hook: { path: h.path, on: h.on, timeoutSeconds: h.timeoutSeconds },
      host: h.on === 'worker' ? null : t.ssh.host,
    },
    says: `run ${h.path} on ${h.on === 'worker' ? "the worker's host" : t.ssh.host} (at most ${h.timeoutSeconds} s)`,
    timeoutMs: h.timeoutSeconds * 1000 + 30_000,
    run: (x) => runHook(x.deps, t, x, h, hookArgs(phase, to(x.state))),
  };
}

/** Still running as planned, and the hooks executables where they run: else nothing is changed. */
function checkInstanceStep(z: Ec2Resize): ActionStep<ResizeState> {
  const { t, c, r, ec2, ec2Arg, pre, post } = z;
  return {
    name: 'check the EC2 instance and the hooks',
    does: { kind: 'ec2.check-running', ...ec2Arg, instanceType: r.current.name, hooks: [pre?.path ?? null, post?.path ?? null] },
    says: `check that ${c.instanceId} still runs as ${r.current.name}${pre || post ? ', and that the hooks are executables where they run' : ''}`,
    timeoutMs: 60_000,
    run: async (x) => {
      const [now] = await describeInstancesById(ec2(), c.region, [c.instanceId]);
      if (!now) throw refuse('cloud', `EC2 no longer knows ${c.instanceId}; nothing was changed`);
      const notOurs = await recheckIdentity(x.deps.db, t.serverId, c.region, c.instanceId);
      if (notOurs) throw refuse('cloud', `${notOurs}; nothing was changed`);
      if (now.state !== 'running' || now.instanceType !== r.current.name)
        throw refuse(
          'cloud',
          `${c.instanceId} is now ${now.state}, ${now.instanceType} (planned: running, ${r.current.name}); nothing was changed`,
        );
      const lines = [`${c.instanceId}: running, ${now.instanceType}`];
      if (pre) lines.push(await checkHook(x.deps, t, x, pre, 'pre-resize'));
      if (post) lines.push(await checkHook(x.deps, t, x, post, 'post-resize'));
      x.note({ stdout: lines.join('\n') });
    },
  };
}

/** Whatever happened: the instance started again (the original type when EC2 takes the new one back), Postgres up, the type recorded. */
function ensureRunningStep(z: Ec2Resize): ActionStep<ResizeState> {
  const { t, c, r, bounds, ec2, ec2Arg } = z;
  return {
    name: 'make sure the instance runs',
    does: { kind: 'ec2.ensure-running', ...ec2Arg, originalType: r.current.name, instance: memberArg(t) },
    says: `whatever happened: ${c.instanceId} started again if it is stopped, Postgres started if it does not answer, the type recorded`,
    timeoutMs: (bounds.maxWaitSeconds + 30) * 1000 * 4 + UP_TIMEOUT_MS,
    run: async (x) => {
      const lines: string[] = [];
      // A start whose own wait ran out may still be under way: what it settles as is what is decided on.
      const now = await waitSettled(ec2(), c.region, c.instanceId, { ...bounds, signal: x.signal });
      if (now && (now.state === 'stopped' || now.state === 'stopping')) {
        if (now.state === 'stopping') await stopInstance(ec2(), c.instanceId, bounds).catch(() => {});
        try {
          const original = async (why: string) => {
            await setInstanceType(ec2(), c.instanceId, r.current.name);
            await startInstance(ec2(), c.instanceId, bounds);
            lines.push(`${now.instanceType} ${why}; started as ${r.current.name} again`);
          };
          if (now.instanceType !== r.current.name && now.stateReason.startsWith('Server.'))
            // EC2 took its start back (no capacity for the new type): the original type, at once.
            await original(`was refused by EC2 (${now.stateReason})`);
          else
            try {
              await startInstance(ec2(), c.instanceId, bounds);
              lines.push(`${c.instanceId} started as ${now.instanceType}`);
            } catch (err) {
              if (!isCapacityOrTypeRefusal(err) || now.instanceType === r.current.name) throw err;
              await original(`could not start (${awsErrorText(err)})`);
            }
        } catch (err) {
          // It stays stopped: the inventory says so (not "running"), and its names stay drained.
          await markStopped(x.deps, t);
          const [still] = await describeInstancesById(ec2(), c.region, [c.instanceId]).catch(() => [now]);
          const type = still?.instanceType ?? now.instanceType;
          x.deps.outcome?.(type === r.current.name ? `stopped, still ${type}` : `stopped, now ${type} (was ${r.current.name})`);
          throw new Error(
            `${c.instanceId} could not be started again: ${awsErrorText(err)}; ${t.label} is down and its DNS names stay drained`,
          );
        }
      } else lines.push(`${c.instanceId} is ${now?.state ?? 'unknown to EC2'}`);
      const [after] = await describeInstancesById(ec2(), c.region, [c.instanceId]);
      if (after?.state !== 'running') {
        // Still pending past every bound (or gone): nothing to start Postgres on; the inventory says what EC2 says.
        if (after) await recordType(x.deps, t, after);
        x.deps.outcome?.(`${after?.state ?? 'unknown to EC2'}, ${after?.instanceType ?? '?'} (was ${r.current.name})`);
        throw new Error(
          `${c.instanceId} is ${after?.state ?? 'unknown to EC2'}, not running, after ${bounds.maxWaitSeconds} s: ${t.label} is down and its DNS names stay drained; run the resize again once EC2 settles`,
        );
      }
      const o = await observe(t);
      if (!o.reachable) {
        await waitObserved(t, 'answering', (v) => v.reachable, { timeoutMs: 30_000, signal: x.signal }).catch(async () => {
          await sshControlStep<ResizeState>(t, 'start', 'start Postgres').run(x);
        });
        lines.push('Postgres started');
      }
      await recordType(x.deps, t, after);
      // Stopped or failed before the type was recorded: what it runs now is still the target's outcome.
      if (!x.state.recorded)
        x.deps.outcome?.(
          after.instanceType === r.current.name ? `still ${after.instanceType}` : `now ${after.instanceType} (was ${r.current.name})`,
        );
      x.note({ stdout: lines.join('\n') });
    },
  };
}

/** EC2 stop, its identity asked again at the last moment. */
function ec2StopStep(z: Ec2Resize): ActionStep<ResizeState> {
  const { t, c, bounds, ec2, ec2Arg } = z;
  return {
    name: 'EC2: stop',
    does: { kind: 'ec2.stop', ...ec2Arg },
    says: `stop ${c.instanceId} and wait until EC2 says stopped (at most ${bounds.maxWaitSeconds} s)`,
    timeoutMs: (bounds.maxWaitSeconds + 30) * 1000,
    run: async (x) => {
      // Asked again at the last moment: the row may have been edited, or the instance moved, since the check.
      const notOurs = await recheckIdentity(x.deps.db, t.serverId, c.region, c.instanceId);
      if (notOurs) throw refuse('cloud', `${notOurs}; the instance was not stopped`);
      x.state.stopped = true;
      await stopInstance(ec2(), c.instanceId, { ...bounds, signal: x.signal });
    },
  };
}

/** The target type, else each fallback, else the original: set and started, each wait bounded. */
function newTypeStep(z: Ec2Resize): ActionStep<ResizeState> {
  const { c, r, bounds, ec2, ec2Arg, types } = z;
  return {
    name: 'EC2: new type and start',
    does: { kind: 'ec2.set-type-and-start', ...ec2Arg, types, lastResort: r.current.name },
    says: `set the type to ${types.join(', else ')}, start it and wait until EC2 says running (at most ${bounds.maxWaitSeconds} s a start); when no type can be had, ${r.current.name} again`,
    timeoutMs: (types.length + 1) * (bounds.maxWaitSeconds + 60) * 1000,
    run: async (x) => {
      const lines: string[] = [];
      for (const type of types) {
        try {
          await setInstanceType(ec2(), c.instanceId, type);
          await startInstance(ec2(), c.instanceId, { ...bounds, signal: x.signal });
          x.state.landed = type;
          lines.push(`${type}: running`);
          break;
        } catch (err) {
          if (!isCapacityOrTypeRefusal(err)) throw err;
          x.state.attempts.push({ type, error: awsErrorText(err) });
          lines.push(`${type}: ${awsErrorText(err)}`);
        }
      }
      if (!x.state.landed) {
        x.state.allRefused = true;
        const tried = () => x.state.attempts.map((a) => `${a.type}: ${a.error}`).join('; ');
        try {
          await setInstanceType(ec2(), c.instanceId, r.current.name);
          await startInstance(ec2(), c.instanceId, { ...bounds, signal: x.signal });
        } catch (err) {
          x.note({ stdout: [...lines, `${r.current.name} (the original): ${awsErrorText(err)}`].join('\n') });
          throw new Error(`no type could be had, the original included: ${tried()}; ${r.current.name}: ${awsErrorText(err)}`);
        }
        x.state.landed = r.current.name;
        lines.push(`${r.current.name} (the original): running`);
      }
      x.note({ stdout: lines.join('\n') });
    },
  };
}

/** The type it runs as, in the inventory; all refused: said as the target's failure, back on the original. */
function recordTypeStep(z: Ec2Resize): ActionStep<ResizeState> {
  const { t, c, r, ec2, ec2Arg } = z;
  return {
    name: 'record the new type',
    does: { kind: 'inventory.record-type', ...ec2Arg, server: t.serverId },
    says: 'record the type it runs as in the inventory',
    timeoutMs: 30_000,
    run: async (x) => {
      const [now] = await describeInstancesById(ec2(), c.region, [c.instanceId]);
      if (!now) throw new Error(`EC2 no longer knows ${c.instanceId}`);
      await recordType(x.deps, t, now);
      x.state.recorded = true;
      x.deps.outcome?.(x.state.allRefused ? `back on ${now.instanceType}` : `now ${now.instanceType}`);
      if (x.state.allRefused)
        throw new Error(
          `no type could be had: ${x.state.attempts.map((a) => `${a.type}: ${a.error}`).join('; ')}; ${t.hostname} runs ${r.current.name} again and streams`,
        );
    },
  };
}

/** The confirmation page's facts of one replica's resize: the instance, the types, the cost, the names drained. */
function resizeFacts(z: Ec2Resize, p: ResizePrepared, drained: { name: string; ttl: number }[]) {
  const { c, live, r } = z;
  const change = r.target.perHour !== null && r.current.perHour !== null ? r.target.perHour - r.current.perHour : null;
  return [
    { label: 'EC2 instance', value: `${c.instanceId} in ${live.availabilityZone} (${live.architecture})` },
    { label: 'Type now', value: typeLine(r.current) },
    { label: 'Target type', value: typeLine(r.target) },
    {
      label: 'Fallbacks, in order',
      value: [...r.fallbacks.map(typeLine), `${r.current.name} again (the last resort)`].join('; '),
    },
    {
      label: 'Cost change',
      value:
        change === null
          ? 'unknown (no price for one of the types)'
          : `${signedDollars(change * HOURS_PER_MONTH)}/month (${signedDollars(change)}/h), with the target type`,
    },
    { label: 'Prices', value: `${p.prices.source}, as of ${p.prices.date}` },
    {
      label: 'DNS drained',
      value: drained.length ? drained.map((d) => `${d.name} (TTL ${d.ttl} s)`).join(', ') : 'no DNS name points at it',
    },
  ];
}

/** The clean stop, refused when Postgres answered as a primary (asked by the first step): a primary is never resized as a replica. */
function stopUnlessPrimary(t: InstanceRef): ActionStep<ResizeState> {
  const stop = sshControlStep<ResizeState>(t, 'stop', 'stop Postgres');
  return {
    ...stop,
    does: { ...stop.does, unlessPrimary: true },
    says: `unless it answers as a primary: ${stop.says}`,
    run: async (x) => {
      // Asked now, not at the first step: a replica promoted during the drain's wait is a primary now.
      const o = await observe(t).catch((err: unknown): Observed => ({ reachable: false, error: errorText(err) }));
      if (o.reachable && o.inRecovery === false)
        throw refuse('topology', `${t.label} answers as a primary: a primary is not resized on its own; nothing was stopped`);
      await stop.run(x);
    },
  };
}

/**
 * The replica already runs the type asked for (a resize done, or one a worker died in after the type
 * changed): nothing is resized. What a resize ends with is made sure of: Postgres up, streaming, its
 * DNS names pointing at it again. So running the resize again finishes one that was interrupted.
 */
function finishPlan(
  t: InstanceRef,
  members: InstanceRef[],
  herd: HerdRef,
  c: CloudTarget,
  now: TypeChoice,
  params: ResizeParams,
): ActionPlan<ResizeState> {
  const back = namesBack<ResizeState>(
    herd,
    members,
    t,
    (rec) => `${rec.name} pointed at ${t.hostname} again (where the drain may have left it)`,
  ).steps;
  return {
    steps: [
      {
        name: 'check the EC2 instance',
        does: { kind: 'ec2.check-running', instanceId: c.instanceId, region: c.region, instanceType: now.name, record: true },
        says: `check that ${c.instanceId} runs as ${now.name}`,
        timeoutMs: 30_000,
        run: async (x) => {
          const [live] = await describeInstancesById(ec2Client(c.region), c.region, [c.instanceId]);
          if (live?.state !== 'running' || live.instanceType !== now.name)
            throw refuse(
              'cloud',
              `${c.instanceId} is now ${live?.state ?? 'unknown to EC2'}, ${live?.instanceType ?? '?'}; nothing was changed`,
            );
          // A run cut short after its type changed never recorded it: the inventory learns it now.
          await recordType(x.deps, t, live);
          x.note({ stdout: `${c.instanceId}: running, ${live.instanceType}` });
        },
      },
      postgresUpStep(t),
      streamingStep(t, params.maxLagSeconds ?? DEFAULT_MAX_LAG_SECONDS),
      ...back,
      refreshStep(t),
    ],
    warnings: [],
    facts: [
      {
        label: 'Type now',
        value: `${typeLine(now)}: already the type asked for${params.instanceType ? '' : ' (the cheapest that fits)'}. Nothing is resized; Postgres is started if it is down, and its DNS names are pointed at it again once it streams`,
      },
    ],
    cost: { nowPerHour: now.perHour, afterPerHour: now.perHour },
  };
}

/** The instance could not be started again: its server stopped in the inventory, and it too. */
async function markStopped(deps: ActionDeps, t: InstanceRef) {
  await deps.db.update(servers).set({ cloudState: 'stopped', cloudSeenAt: new Date() }).where(eq(servers.id, t.serverId));
  await deps.db.update(instances).set({ state: 'stopped' }).where(eq(instances.id, t.id));
}
