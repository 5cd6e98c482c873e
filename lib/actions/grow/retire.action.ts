// Retire member: a replica leaves its herd for good. Its read names are pointed away from it first, then
// it is stopped (and kept stopped), the replication slot it used is dropped on the primary, its host is
// terminated (an instance pgherd launched for it, or one the admin confirms by its id) or kept, and its
// row leaves the inventory, recorded in retired_members. Never the primary; never the last replica of a
// herd that a rule or the backup policy needs one in.
import { eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { instances, servers } from '@/db/schema';
import { ec2Client } from '@/lib/adapters/aws/config';
import { terminateInstance } from '@/lib/adapters/aws/ec2-launch';
import { waitBounds } from '@/lib/adapters/aws/ec2';
import { commonWarnings, defineAction, PRIMARY_WARNING, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { dnsSteps } from '@/lib/actions/steps/dns-steps';
import { execNotedOk } from '@/lib/actions/steps/exec-noted';
import { stopIfRunningStep } from '@/lib/actions/steps/control-steps';
import { terminateLaunched } from '@/lib/actions/steps/launch';
import { recordTargets, standIn } from '@/lib/fleet/dns-records';
import { driverFor, type ControlDriver } from '@/lib/fleet/drivers';
import { loadHerdRefs, type DnsRecordRef, type HerdRef } from '@/lib/fleet/herd-ref';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { instanceClient } from '@/lib/fleet/pg-access';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { recheckIdentity } from '@/lib/fleet/cloud/identity';
import { herdPolicies } from '@/lib/fleet/backups/policy';
import { asks } from '@/lib/actions/drivers';

/** Actions a rule runs that need a replica in the herd: its last one is not retired while such a rule is on. */
export const NEEDS_A_REPLICA = ['switchover', 'dr-failover', 'dr-drill', 'upgrade-minor', 'resize-herd'];

/** Where a read name points once `t` leaves it: the other running replicas it matches, else a stand-in. */
export function awayFrom(rec: DnsRecordRef, members: InstanceRef[], t: InstanceRef): InstanceRef[] | string {
  const to = recordTargets(
    rec,
    members.filter((m) => m.id !== t.id),
  );
  return typeof to === 'string' ? standIn(rec, members, t) : to;
}

export const retireParams = z
  .object({
    /** keep: the host and its data stay (stopped); terminate: its EC2 instance is terminated. */
    host: z.enum(['keep', 'terminate']).default('keep'),
    /**
     * For an instance pgherd did not launch: its EC2 id typed again, the admin's word that it is this
     * member's and may be terminated.
     */
    confirmInstanceId: z
      .string()
      .trim()
      .regex(/^i-[0-9a-f]{8,17}$/, 'an EC2 instance id such as i-0123456789abcdef0')
      .optional(),
  })
  .strict();

interface HostFacts {
  /** The launched_instances row that made its host, when pgherd launched it. */
  launchedRowId: number | null;
  /** Other members of any herd on the same server. */
  neighbours: number;
}

interface Prepared {
  herds: Map<number, HerdRef>;
  hosts: Map<number, HostFacts>;
  /** Per herd: why it needs a replica (a rule, the backup policy), if it does. */
  needs: Map<number, string>;
}

export async function prepareRetire(targets: InstanceRef[], _p: unknown, db: Db): Promise<Prepared> {
  const herdIds = [...new Set(targets.map((t) => t.herdId))];
  const ids = targets.map((t) => t.id);
  const [herds, policies, hosts, rules] = await Promise.all([
    loadHerdRefs(db, herdIds),
    herdPolicies(db, herdIds),
    db.execute<{ id: number; launched: number | null; neighbours: number }>(sql`
      SELECT i.id,
             (SELECT l.id FROM launched_instances l WHERE l.terminated_at IS NULL AND (l.kept_instance_id = i.id OR l.server_id = i.server_id)
              ORDER BY l.id DESC LIMIT 1)::int AS launched,
             (SELECT count(*) FROM instances o WHERE o.server_id = i.server_id AND o.id <> i.id)::int AS neighbours
      FROM instances i WHERE i.id = ANY(${sql.param(ids)}::bigint[])`),
    db.execute<{ name: string; action: string; herd_id: number }>(sql`
      SELECT r.name, r.action, h.herd_id FROM rules r
      CROSS JOIN LATERAL (
        SELECT (jsonb_array_elements_text(r.scope -> 'herdIds'))::int AS herd_id
        UNION SELECT i.herd_id FROM instances i WHERE i.id::text IN (SELECT jsonb_array_elements_text(r.scope -> 'instanceIds'))
      ) h
      WHERE r.enabled AND r.action = ANY(${sql.param(NEEDS_A_REPLICA)}::text[]) AND h.herd_id = ANY(${sql.param(herdIds)}::int[])`),
  ]);
  const needs = new Map<number, string>();
  for (const r of rules.rows) if (!needs.has(r.herd_id)) needs.set(r.herd_id, `rule "${r.name}" runs ${r.action} on it`);
  for (const [id, p] of policies)
    if (!needs.has(id) && p.policy.fromStandby) needs.set(id, `its backup policy takes backups from a replica`);
  return {
    herds: new Map(herds.map((h) => [h.id, h])),
    hosts: new Map(hosts.rows.map((r) => [r.id, { launchedRowId: r.launched, neighbours: r.neighbours }])),
    needs,
  };
}

interface State {
  slot: string | null;
  host: string;
  /** The herd's members as they are when it runs (a replica added since the plan among them). */
  members?: InstanceRef[];
}

export const retireAction = defineAction({
  name: 'retire',
  control: asks('retire'),
  label: 'Retire member',
  // Its host may be terminated: an admin's act, like launching one.
  permission: 'admin',
  dangerous: true,
  schedulable: false,
  runsAsConfirmed: true,
  params: {
    schema: retireParams,
    fields: [
      {
        name: 'host',
        label: 'Its host',
        kind: 'text',
        emptyLabel: 'keep',
        help: 'keep (stopped, its data left) or terminate (its EC2 instance)',
      },
      {
        name: 'confirmInstanceId',
        label: 'Confirm the instance id',
        kind: 'text',
        emptyLabel: '',
        help: 'to terminate an instance pgherd did not launch: its id, typed again',
      },
    ],
  },
  state: (): State => newRetireState(),
  prepare: prepareRetire,
  plan: (t, ctx) => planRetire(t, ctx),
});

export type RetireParams = z.output<typeof retireParams>;
export type RetirePrepared = Prepared;
export type RetireState = State;
export const newRetireState = (): State => ({ slot: null, host: 'kept' });

/** Retire's plan for member `t` of a herd whose members are `members` when it runs (a Replace: after its switchover). */
export function planRetire(
  t: InstanceRef,
  { members, params, prepared }: { members: InstanceRef[]; params: RetireParams; prepared: Prepared },
  /** An evacuation (EC2 takes the host whatever pgherd does): names pinned to it are drained, not refused. */
  opts: { evacuating?: boolean } = {},
): ActionPlan<State> | Refusal {
  const z = retireOf(t, members, params, prepared, opts);
  if (z instanceof Refusal) return z;
  const { h, primary, others, facts, terminate, cloud, keep, readNames } = z;
  const away = (rec: DnsRecordRef, ms: InstanceRef[]) => awayFrom(rec, ms, t);
  const steps: ActionStep<State>[] = [
    readHerdStep(t, h),
    ...dnsSteps<State>(
      h,
      (s) => s.members ?? members,
      (r) => away(r, members),
      (r) => {
        const to = away(r, members);
        return `point ${r.name} away from ${t.hostname}: at ${typeof to === 'string' ? `nothing (${to})` : to.map((m) => m.hostname).join(', ')}`;
      },
      (r) => readNames.includes(r),
      { targetsOf: (r, ms) => away(r, ms), name: (r) => `drain ${r.name}` },
    ),
    readSlotStep(t),
    stopIfRunningStep<State>(t),
    ...(keep ? [keepStoppedStep(t, keep)] : []),
    dropSlotStep(primary),
    ...(terminate && cloud ? [terminateStep(t, cloud, facts)] : []),
    markRetiredStep(z),
  ];
  return {
    steps,
    facts: [
      { label: 'Read names', value: readNames.length ? readNames.map((r) => r.name).join(', ') : 'none' },
      {
        label: 'Its host',
        value: terminate
          ? `${t.cloud?.instanceId ?? ''} terminated${facts.launchedRowId !== null ? ' (pgherd launched it)' : ' (confirmed by its id)'}`
          : `kept: ${t.hostname}, the cluster stopped and its data directory left`,
      },
      { label: 'Replicas left', value: String(others.length) },
    ],
    warnings: [
      ...commonWarnings(t).filter((w) => typeof w === 'string' || w.does.kind !== PRIMARY_WARNING),
      ...(others.length ? [] : [`it is the herd's last running replica: ${h.label} is left with its primary alone`]),
    ],
  };
}

/** What a retirement works with once nothing refuses it: the member, its herd and primary, its host's fate, its read names. */
interface Retirement {
  t: InstanceRef;
  h: HerdRef;
  primary: InstanceRef | undefined;
  others: InstanceRef[];
  facts: { launchedRowId: number | null; neighbours: number };
  terminate: boolean;
  cloud: InstanceRef['cloud'];
  keep: ReturnType<ControlDriver['keepStopped']>;
  readNames: DnsRecordRef[];
}

/** Why `t` cannot be retired as asked, or what its retirement works with. */
function retireOf(
  t: InstanceRef,
  members: InstanceRef[],
  params: RetireParams,
  prepared: Prepared,
  opts: { evacuating?: boolean },
): Retirement | Refusal {
  const h = prepared.herds.get(t.herdId);
  if (!h) return refuse('gone', `${t.herd} is not in the inventory`);
  if (t.role === 'primary' || t.observedRole === 'primary')
    return refuse('not-applicable', `${t.label} is the herd's primary: switch over first (Replace member does), then retire it`);
  const primary = members.find((m) => m.role === 'primary' && m.state === 'running');
  const others = members.filter((m) => m.id !== t.id && m.role === 'replica' && m.state === 'running');
  const need = prepared.needs.get(t.herdId);
  if (!others.length && need)
    return refuse(
      'not-applicable',
      `${t.label} is the last running replica of ${h.label}, and ${need}: add a replica first (or Replace member)`,
    );
  const pinned = h.dns.filter((r) => r.match === 'instance' && r.matchInstanceId === t.id);
  // A replica streaming from it would be left streaming from nothing.
  const downstream = members.filter((m) => m.upstreamId === t.id && m.id !== t.id);
  if (downstream.length && !opts.evacuating)
    return refuse(
      'topology',
      `${downstream.map((m) => m.label).join(', ')} ${downstream.length > 1 ? 'stream' : 'streams'} from ${t.label}: re-point ${downstream.length > 1 ? 'them' : 'it'} at the primary first (Re-point)`,
    );
  if (pinned.length && !opts.evacuating)
    return refuse(
      'not-applicable',
      `${pinned.map((r) => r.name).join(', ')} ${pinned.length > 1 ? 'are' : 'is'} pinned to ${t.label}: point ${pinned.length > 1 ? 'them' : 'it'} elsewhere first`,
    );
  const facts = prepared.hosts.get(t.id) ?? { launchedRowId: null, neighbours: 0 };
  const terminate = params.host === 'terminate';
  const cloud = t.cloud;
  if (terminate) {
    if (!t.cloud)
      return refuse(
        'not-applicable',
        `${t.hostname} is not an EC2 instance pgherd knows: there is nothing to terminate (host keep leaves it)`,
      );
    if (facts.neighbours > 0)
      return refuse(
        'not-applicable',
        `${t.hostname} holds ${facts.neighbours} other instance(s) of the inventory: its EC2 instance is not terminated under them`,
      );
    if (facts.launchedRowId === null && params.confirmInstanceId !== t.cloud.instanceId)
      return refuse(
        'params',
        `pgherd did not launch ${t.cloud.instanceId} (${t.hostname}): it is terminated only when an admin confirms it, typing its id (confirmInstanceId)`,
      );
  }
  const keep = driverFor(t.controlDriver).keepStopped(t);
  // Its read names, and on an evacuation the names pinned to it (pointed at a stand-in).
  const readNames = [...h.dns.filter((r) => r.match === 'role' && r.matchRole === 'replica'), ...(opts.evacuating ? pinned : [])];
  return { t, h, primary, others, facts, terminate, cloud, keep, readNames };
}

/** The herd's members read again: where its read names point once the member is out of them. */
function readHerdStep(t: InstanceRef, h: HerdRef): ActionStep<State> {
  return {
    name: 'read the herd as it is',
    does: { kind: 'inventory.read-herd', herd: h.id },
    says: `read ${h.label}'s members from the inventory: where its read names point once ${t.hostname} is out of them`,
    timeoutMs: 10_000,
    run: async (x) => {
      x.state.members = await loadInstanceRefs(x.deps.db, [], { herdIds: [h.id] });
      x.note({ stdout: x.state.members.map((m) => `${m.label}: ${m.role}, ${m.state}`).join('\n') });
    },
  };
}

/** Its primary_slot_name, read while it answers: the slot to drop once it is stopped. */
function readSlotStep(t: InstanceRef): ActionStep<State> {
  return {
    name: 'read the slot it streams through',
    does: { kind: 'pg.read-slot', instance: memberArg(t) },
    says: `read ${t.label}'s primary_slot_name (if it answers), to drop that slot once it is stopped`,
    timeoutMs: 15_000,
    run: async (x) => {
      const c = instanceClient(t, { connectionTimeoutMillis: 3000, statement_timeout: 3000, application_name: 'pgherd' });
      c.on('error', () => {});
      try {
        await c.connect();
        const r = await c.query<{ slot: string }>(`SELECT current_setting('primary_slot_name') AS slot`);
        x.state.slot = r.rows[0]?.slot || null;
        x.note({ stdout: x.state.slot ? `it streams through slot ${x.state.slot}` : 'it uses no replication slot' });
      } catch (err) {
        x.note({ stdout: `it does not answer (${(err as Error).message}): no slot read` });
      } finally {
        await c.end().catch(() => {});
      }
    },
  };
}

/** Whatever would start it again on its own (Debian's start.conf) told to leave it stopped. */
function keepStoppedStep(t: InstanceRef, keep: NonNullable<Retirement['keep']>): ActionStep<State> {
  return {
    name: 'keep it stopped',
    does: { kind: 'pg.keep-stopped', instance: memberArg(t) },
    says: keep.says,
    timeoutMs: 30_000,
    run: async (x) => {
      await execNotedOk(x.deps, t, x, keep.argv, 25_000, { stdin: keep.stdin });
    },
  };
}

/** The slot it streamed through dropped on the primary (a slot nobody reads keeps WAL there for ever). */
function dropSlotStep(primary: InstanceRef | undefined): ActionStep<State> {
  return {
    name: 'drop its replication slot',
    does: { kind: 'pg.drop-slot', on: primary ? memberArg(primary) : null },
    says: `drop the slot it streamed through on ${primary?.label ?? 'the primary'}, if it used one (a slot nobody reads keeps WAL on the primary for ever)`,
    timeoutMs: 15_000,
    run: async (x) => {
      if (!x.state.slot) return void x.note({ stdout: 'skipped: it used no slot' });
      if (!primary) return void x.note({ stderr: `no running primary: slot ${x.state.slot} is left` });
      const c = instanceClient(primary, { connectionTimeoutMillis: 3000, statement_timeout: 5000, application_name: 'pgherd' });
      c.on('error', () => {});
      await c.connect();
      try {
        const r = await c.query(
          `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND slot_type = 'physical' AND NOT active`,
          [x.state.slot],
        );
        x.note({
          stdout: r.rowCount ? `dropped slot ${x.state.slot} on ${primary.label}` : `no inactive slot ${x.state.slot} on ${primary.label}`,
        });
      } finally {
        await c.end().catch(() => {});
      }
    },
  };
}

/** Its EC2 instance terminated (one pgherd launched, or one the admin confirmed by its id), its identity asked again first. */
function terminateStep(t: InstanceRef, cloud: NonNullable<InstanceRef['cloud']>, facts: Retirement['facts']): ActionStep<State> {
  return {
    name: `terminate ${cloud.instanceId}`,
    does: { kind: 'ec2.terminate-member', instance: cloud.instanceId, launchedByPgherd: facts.launchedRowId !== null },
    says: `terminate the EC2 instance ${cloud.instanceId} (${t.hostname}${facts.launchedRowId !== null ? ', launched by pgherd' : ', confirmed by the admin'}) and remove its server from the inventory`,
    timeoutMs: (waitBounds().maxWaitSeconds + 60) * 1000,
    run: async (x) => {
      // Asked again at the last moment, as power and resize do: the row may have been edited, or the
      // instance moved, since the plan.
      const notOurs = await recheckIdentity(x.deps.db, t.serverId, cloud.region, cloud.instanceId);
      if (notOurs) throw refuse('cloud', `${notOurs}; the instance was not terminated`);
      if (facts.launchedRowId !== null)
        await terminateLaunched(
          x.deps.db,
          facts.launchedRowId,
          `terminated by Retire member (operation ${String(x.deps.operation?.id ?? '?')})`,
          x.signal,
          [t.id],
        );
      else {
        const client = ec2Client(cloud.region);
        try {
          x.note({ command: `TerminateInstances ${cloud.instanceId} (${cloud.region}), then wait until terminated` });
          await terminateInstance(client, cloud.instanceId, { ...waitBounds(), signal: x.signal });
        } finally {
          client.destroy();
        }
      }
      x.state.host = 'terminated';
    },
  };
}

/** Out of the herd's members, recorded as retired with what became of its host. */
function markRetiredStep({ t, h, terminate, keep, facts }: Retirement): ActionStep<State> {
  return {
    name: 'mark it retired',
    does: { kind: 'inventory.retire', instance: memberArg(t) },
    says: `take ${t.label} out of the herd's members, recording it as retired${terminate ? ' with its host terminated' : ' (its host and data kept, stopped)'}`,
    timeoutMs: 15_000,
    run: async (x) => {
      await x.deps.db.transaction(async (tx) => {
        await tx.execute(sql`
          INSERT INTO retired_members (herd_id, instance_id, label, hostname, port, data_directory, cloud_instance_id, host, operation_id)
          VALUES (${t.herdId}, ${t.id}, ${t.label}, ${t.hostname}, ${t.port}, ${t.dataDirectory}, ${t.cloud?.instanceId ?? null},
                  ${x.state.host === 'terminated' ? 'terminated' : keep ? 'kept stopped' : 'kept (stopped)'}, ${x.deps.operation?.id ?? null})`);
        await tx.update(instances).set({ upstreamInstanceId: null }).where(eq(instances.upstreamInstanceId, t.id));
        await tx.delete(instances).where(eq(instances.id, t.id));
        // A host terminated that pgherd did not launch: its server goes too (a launched one's went with its row).
        if (x.state.host === 'terminated' && facts.launchedRowId === null) await tx.delete(servers).where(eq(servers.id, t.serverId));
      });
      x.deps.outcome?.(
        `${t.label} retired from ${h.label}; its host ${x.state.host === 'terminated' ? 'terminated' : 'kept, the cluster stopped'}`,
      );
    },
  };
}
