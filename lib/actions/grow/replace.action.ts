// Replace member: a member's successor is added like it (its instance type, image, subnet and zone, on
// spot if it was), then the member is retired. A primary is switched over first, to the most up-to-date
// replica, so that the successor streams from the new primary and the old one leaves as a replica.
//
// Evacuate (spot): the same, as the system runs it on EC2's two-minute notice that a spot instance is
// taken back. Its read names are drained before anything else (the first step: the notice leaves two
// minutes, the seed may take longer), a primary is switched over at once, and a zone that keeps taking
// capacity back is avoided for the successor (launched like a member in another zone).
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { part } from '@/lib/engine/compose';
import { defineAction, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import { dnsSteps } from '@/lib/actions/steps/dns-steps';
import { newLaunchState, planLaunch, instanceTypeParam, type LaunchPlan } from '@/lib/actions/steps/launch';
import { newRestoreState, restoreTargetParams } from '@/lib/actions/steps/restore-steps';
import { membersAfterSwitchover, newSwitchoverState, switchoverPair, type SwitchoverState } from '@/lib/actions/drivers/switchover';
import { loadHerdRefs, type DnsRecordRef, type HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { newSeedState } from '@/lib/actions/steps/seed-steps';
import { bySize, launchWish, planAddReplica, prepareAddReplica, type AddReplicaPrepared, type AddState } from './add-replica.action';
import { resizeWishFields } from '@/lib/actions/drivers/resize';
import { awayFrom, newRetireState, planRetire, prepareRetire, retireParams, type RetirePrepared, type RetireState } from './retire.action';
import { asks, planSwitchoverOf } from '@/lib/actions/drivers';

const { serverId, port, dataDirectory, sslCertFile, sslKeyFile } = restoreTargetParams;

export const replaceParams = z
  .object({
    /** An empty server of the environment for the successor; left out: a new EC2 instance like the member. */
    serverId,
    /** The successor's instance type; left out: the member's. */
    instanceType: instanceTypeParam.optional(),
    /** Instead: the cheapest type in the zone with at least this, as Resize and Add replica take it. */
    minVcpus: resizeWishFields.minVcpus,
    minMemoryGiB: resizeWishFields.minMemoryGiB,
    burstable: resizeWishFields.burstable,
    market: z.enum(['same', 'on-demand', 'spot']).default('same'),
    seed: z.enum(['auto', 'repository', 'replica', 'primary']).default('auto'),
    port,
    dataDirectory,
    sslCertFile,
    sslKeyFile,
    host: retireParams.shape.host,
    confirmInstanceId: retireParams.shape.confirmInstanceId,
  })
  .strict()
  .refine((p) => p.instanceType === undefined || !bySize(p), {
    message: 'give instanceType, or minVcpus and/or minMemoryGiB, not both',
    path: ['instanceType'],
  });

type Params = z.output<typeof replaceParams>;

/** How many notices in a zone (within SPOT_ZONE_WINDOW_HOURS) make it avoided for a spot successor. */
export const SPOT_ZONE_AVOID_AFTER = 2;
export const SPOT_ZONE_WINDOW_HOURS = 6;

interface Prepared {
  herds: Map<number, HerdRef>;
  add: AddReplicaPrepared;
  retire: RetirePrepared;
  /** Per member: the successor's launch (or why none), and the member it is launched like. */
  launch: Map<number, { plan: LaunchPlan | Refusal; like: InstanceRef; avoided: string | null } | null>;
}

interface State {
  over: SwitchoverState;
  add: AddState;
  retire: RetireState;
  drain: Record<string, never>;
}

const newState = (): State => ({
  over: newSwitchoverState(),
  add: { ...newSeedState(newRestoreState(), newLaunchState()) },
  retire: newRetireState(),
  drain: {},
});

async function prepare(targets: InstanceRef[], params: Params, db: Db): Promise<Prepared> {
  const herds = await loadHerdRefs(db, [...new Set(targets.map((t) => t.herdId))]);
  const [add, retire] = await Promise.all([
    prepareAddReplica(herds, { serverId: params.serverId, market: 'on-demand' }, db),
    prepareRetire(targets, {}, db),
  ]);
  const facts = await db.execute<{ id: number; type: string | null; zone: string | null; spot: boolean }>(sql`
    SELECT i.id, s.cloud_instance_type AS type, s.cloud_availability_zone AS zone,
           coalesce((SELECT l.spot FROM launched_instances l WHERE l.server_id = s.id OR l.kept_instance_id = i.id ORDER BY l.id DESC LIMIT 1), false) AS spot
    FROM instances i JOIN servers s ON s.id = i.server_id WHERE i.id = ANY(${sql.param(targets.map((t) => t.id))}::bigint[])`);
  const zones = await db.execute<{ zone: string; n: number }>(sql`
    SELECT availability_zone AS zone, count(*)::int AS n FROM spot_interruptions
    WHERE received_at > now() - make_interval(hours => ${SPOT_ZONE_WINDOW_HOURS}) GROUP BY availability_zone`);
  const noticed = new Map(zones.rows.map((z) => [z.zone, z.n]));
  const byId = new Map(facts.rows.map((f) => [f.id, f]));
  const launch = new Map<number, Prepared['launch'] extends Map<number, infer V> ? V : never>();
  const byHerd = new Map(herds.map((h) => [h.id, h]));
  for (const t of targets) {
    const h = byHerd.get(t.herdId);
    const f = byId.get(t.id);
    if (!h || params.serverId !== undefined) {
      launch.set(t.id, null);
      continue;
    }
    const type = launchWish(params) ?? f?.type ?? null;
    if (!t.cloud || !type) {
      launch.set(t.id, {
        plan: refuse('not-applicable', `${t.hostname} is not an EC2 instance pgherd knows: give the successor a server (serverId)`),
        like: t,
        avoided: null,
      });
      continue;
    }
    const spot = params.market === 'spot' || (params.market === 'same' && !!f?.spot);
    // A zone that keeps taking spot capacity back: the successor goes like a member in another zone.
    let like = t;
    let avoided: string | null = null;
    const zone = f?.zone ?? '';
    if (spot && (noticed.get(zone) ?? 0) >= SPOT_ZONE_AVOID_AFTER) {
      const zoneOf = await db.execute<{ id: number; zone: string }>(sql`
        SELECT i.id, s.cloud_availability_zone AS zone FROM instances i JOIN servers s ON s.id = i.server_id
        WHERE i.herd_id = ${h.id} AND s.cloud_instance_id IS NOT NULL AND s.cloud_availability_zone IS DISTINCT FROM ${zone}`);
      const other = zoneOf.rows
        .map((r) => ({ m: h.members.find((m) => m.id === r.id), zone: r.zone }))
        .find((x) => x.m && (noticed.get(x.zone) ?? 0) < SPOT_ZONE_AVOID_AFTER);
      avoided = `${zone} took spot capacity back ${noticed.get(zone) ?? 0} times in ${SPOT_ZONE_WINDOW_HOURS} h`;
      if (other?.m) like = other.m;
      else avoided += ', and no member runs in another zone: launched there anyway';
    }
    let plan = await planLaunch(db, h, type, { like, spot });
    // Its own instance gone from EC2 (terminated long enough ago, the usual reason to replace it): the
    // successor is launched like another member of its herd on EC2, in its zone if one runs there.
    if (plan instanceof Refusal && plan.code === 'gone' && like.id === t.id) {
      // In its region only (never like a DR member far away).
      const others = h.members.filter((m) => m.id !== t.id && m.cloud?.region === t.cloud?.region);
      const sameZone = await db.execute<{ id: number }>(sql`
        SELECT i.id::float8 AS id FROM instances i JOIN servers s ON s.id = i.server_id
        WHERE i.herd_id = ${h.id} AND s.cloud_availability_zone = ${zone} AND i.id <> ${t.id}`);
      const near = new Set(sameZone.rows.map((r) => r.id));
      for (const m of [...others.filter((o) => near.has(o.id)), ...others.filter((o) => !near.has(o.id))]) {
        const p = await planLaunch(db, h, type, { like: m, spot });
        if (p instanceof Refusal) continue;
        plan = p;
        like = m;
        avoided = `EC2 no longer knows ${t.cloud.instanceId}: launched like ${m.hostname}`;
        break;
      }
    }
    launch.set(t.id, { plan, like, avoided });
  }
  return { herds: byHerd, add, retire, launch };
}

/** What the parts of a replacement share: the member, its herd with its members as planned, whether EC2 is taking it back. */
interface Replacement {
  t: InstanceRef;
  h: HerdRef;
  members: InstanceRef[];
  params: Params;
  prepared: Prepared;
  evacuate: boolean;
}

/**
 * A member's replacement: on an evacuation its names drained at once, a primary switched over first,
 * the successor added, then the member retired; or why not.
 */
function planReplace(
  t: InstanceRef,
  members: InstanceRef[],
  params: Params,
  prepared: Prepared,
  evacuate: boolean,
): ActionPlan<State> | Refusal {
  const h0 = prepared.herds.get(t.herdId);
  if (!h0) return refuse('gone', `${t.herd} is not in the inventory`);
  const z: Replacement = { t, h: { ...h0, members }, members, params, prepared, evacuate };
  const isPrimary = t.role === 'primary';
  const first = isPrimary ? switchoverFirst(z) : null;
  if (first instanceof Refusal) return first;
  const after = first?.after ?? members;
  const l = prepared.launch.get(t.id);
  const add = successorPlan(z, after, l);
  if (add instanceof Refusal) return add;
  const retire = retirePlan(z, first?.leaving ?? t, after);
  if (retire instanceof Refusal) return retire;
  const steps: ActionStep<State>[] = [
    ...evacuateDrainSteps(z),
    ...(first
      ? part(
          first.steps,
          (s: State) => s.over,
          (n) => `switchover: ${n}`,
          false,
        )
      : []),
    ...part(
      add.steps,
      (s: State) => s.add,
      (n) => `successor: ${n}`,
      isPrimary,
    ),
    ...part(
      retire.steps,
      (s: State) => s.retire,
      (n) => `retire ${t.hostname}: ${n}`,
      true,
    ),
  ];
  const facts: { label: string; value: string }[] = [
    ...(first ? [{ label: 'First', value: `switch over to ${first.newPrimary.label}: ${t.label} leaves as a replica` }] : []),
    ...(l?.avoided
      ? [
          !l.avoided.startsWith('EC2 no longer knows')
            ? { label: 'Zone avoided', value: `${l.avoided}; launched like ${l.like.label}` }
            : { label: 'Launched like', value: l.avoided },
        ]
      : []),
  ];
  return {
    steps,
    facts: [...facts, ...(add.facts ?? []), ...(retire.facts ?? []).filter((f) => f.label === 'Its host')],
    ...(add.cost ? { cost: add.cost } : {}),
    warnings: (add.warnings ?? []).filter((w): w is string => typeof w === 'string'),
  };
}

/** On an evacuation, at once: the read names (a replica's) or those pinned to it pointed away before EC2 takes it back. */
function evacuateDrainSteps({ t, h, members, evacuate }: Replacement): ActionStep<State>[] {
  const pinned = h.dns.filter((r) => r.match === 'instance' && r.matchInstanceId === t.id);
  const readNames = [...h.dns.filter((r) => r.match === 'role' && r.matchRole === 'replica'), ...(evacuate ? pinned : [])];
  if (!(evacuate && (t.role !== 'primary' ? readNames.length : pinned.length))) return [];
  // At once: its clients are sent elsewhere before the capacity goes.
  const away = (rec: DnsRecordRef, ms: InstanceRef[]) => awayFrom(rec, ms, t);
  return part(
    dnsSteps<Record<string, never>>(
      h,
      () => members,
      (r) => away(r, members),
      (r) => `point ${r.name} away from ${t.hostname} now, before EC2 takes it back`,
      (r) => readNames.includes(r),
      { targetsOf: (r, ms) => away(r, ms), name: (r) => `drain ${r.name}` },
    ),
    (s: State) => s.drain,
    (n) => n,
    false,
  );
}

/** A primary's switchover to its most up-to-date replica, first: its steps, the herd after it, the member as it leaves; or why not. */
function switchoverFirst({
  t,
  h,
  evacuate,
}: Replacement): { steps: ActionStep<SwitchoverState>[]; newPrimary: InstanceRef; after: InstanceRef[]; leaving: InstanceRef } | Refusal {
  const pair = switchoverPair(h);
  if (typeof pair === 'string') return refuse('topology', `${t.label} is the primary and cannot be switched over first: ${pair}`);
  const newPrimary = pair.cand;
  // On an evacuation the read names stay off the host EC2 takes back: the switchover moves the write name
  // only, the successor's step then points the read names at the replicas that stay.
  const over = planSwitchoverOf(evacuate ? { ...h, dns: h.dns.filter((r) => r.match === 'role' && r.matchRole === 'primary') } : h, {
    candidateInstanceId: newPrimary.id,
  });
  if (over instanceof Refusal) return refuse(over.code, `${t.label} is the primary and cannot be switched over first: ${over.reason}`);
  if (over.refused) return over.refused;
  return {
    steps: over.steps,
    newPrimary,
    after: membersAfterSwitchover(h, t, newPrimary),
    // As it will be when retired: a replica of the new primary (which it says of itself by then).
    leaving: { ...t, role: 'replica', observedRole: 'replica', upstreamId: newPrimary.id },
  };
}

/** The successor's add, on the herd as it is once a primary is switched over (`after`); or why it cannot be added. */
function successorPlan(
  { t, h, params, prepared, evacuate }: Replacement,
  after: InstanceRef[],
  l: ReturnType<Prepared['launch']['get']>,
): ActionPlan<AddState> | Refusal {
  const add = planAddReplica<AddState>(
    // An instance EC2 is taking back is nobody's seed: it may be gone before the copy ends.
    { ...h, members: evacuate ? after.map((m) => (m.id === t.id ? { ...m, state: 'stopped' } : m)) : after },
    {
      serverId: params.serverId,
      seed: params.seed,
      port: params.port ?? t.port,
      dataDirectory: params.dataDirectory,
      sslCertFile: params.sslCertFile,
      sslKeyFile: params.sslKeyFile,
    },
    prepared.add,
    l ? l.plan : null,
    evacuate ? { notIn: t.id } : {},
  );
  if (add instanceof Refusal) return refuse(add.code, `its successor: ${add.reason}`);
  return add.refused ?? add;
}

/** The member's retirement as it leaves (`leaving`), from the herd as it is then; or why it cannot be retired. */
function retirePlan(
  { t, params, prepared, evacuate }: Replacement,
  leaving: InstanceRef,
  after: InstanceRef[],
): ActionPlan<RetireState> | Refusal {
  // The successor is added first: the member is never its herd's last replica here.
  const retire = planRetire(
    leaving,
    {
      members: after,
      params: { host: params.host, confirmInstanceId: params.confirmInstanceId },
      prepared: { ...prepared.retire, needs: new Map() },
    },
    { evacuating: evacuate },
  );
  if (retire instanceof Refusal) return refuse(retire.code, `${t.label} cannot be retired: ${retire.reason}`);
  return retire.refused ?? retire;
}

const fields = [
  {
    name: 'dataDirectory',
    label: 'Data directory',
    kind: 'text' as const,
    emptyLabel: '/var/lib/postgresql/replicas/orders-5/data',
    help: 'the successor\u2019s: its folder must not exist',
  },
  { name: 'instanceType', label: 'Instance type', kind: 'text' as const, emptyLabel: 'the member\u2019s', help: '' },
  {
    name: 'minVcpus',
    label: 'Or at least vCPU',
    kind: 'text' as const,
    emptyLabel: '',
    help: 'instead of a type: the cheapest offered in the zone with at least this many vCPU (and the memory below), by the market\u2019s price',
  },
  { name: 'minMemoryGiB', label: 'And at least GiB', kind: 'text' as const, emptyLabel: '', help: 'memory, in GiB' },
  {
    name: 'serverId',
    label: 'Or a server (id)',
    kind: 'text' as const,
    emptyLabel: '',
    help: 'an empty server of the environment instead of a new instance',
  },
  { name: 'market', label: 'Market', kind: 'text' as const, emptyLabel: 'same', help: 'same, on-demand or spot' },
  { name: 'host', label: 'The old host', kind: 'text' as const, emptyLabel: 'keep', help: 'keep (stopped) or terminate' },
  {
    name: 'confirmInstanceId',
    label: 'Confirm its instance id',
    kind: 'text' as const,
    emptyLabel: '',
    help: 'to terminate an instance pgherd did not launch',
  },
];

export const replaceAction = defineAction({
  name: 'replace',
  control: asks('replace'),
  label: 'Replace member',
  permission: 'admin',
  dangerous: true,
  schedulable: false,
  runsAsConfirmed: true,
  params: { schema: replaceParams, fields },
  state: newState,
  prepare,
  plan: (t, { members, params, prepared }) => planReplace(t, members, params, prepared, false),
});

/** Evacuate: run by the system on a spot interruption notice (lib/features/spot/notice.ts). */
export const evacuateAction = defineAction({
  name: 'spot-evacuate',
  control: asks('replace'),
  label: 'Evacuate (spot interruption)',
  permission: 'admin',
  dangerous: true,
  schedulable: false,
  // Two minutes' notice: it preempts whatever holds the herd (a seed, an upgrade) at its next safe point.
  urgent: true,
  systemOnly: "on EC2's spot interruption notice",
  params: { schema: replaceParams, fields },
  state: newState,
  prepare,
  // EC2 takes the instance back: pgherd terminates it only where it launched it (its record then closed).
  plan: (t, { members, params, prepared }) =>
    planReplace(
      t,
      members,
      { ...params, host: t.cloud && prepared.retire.hosts.get(t.id)?.launchedRowId != null ? 'terminate' : 'keep' },
      prepared,
      true,
    ),
});
