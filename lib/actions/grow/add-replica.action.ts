// Add replica: a new member of the herd on an empty server of its environment, or on a new EC2 instance
// launched like one of its members (on demand or on spot capacity), seeded from the herd's backup
// repository where it has one (nothing read from the primary), else from a replica, else from the
// primary; then streaming, registered, and in the herd's read names (seedSteps). A herd whose control
// plane makes its replicas itself (RDS's read replicas) is planned by its driver (`addReplica`).
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { idText } from '@/lib/adapters/validation/ids';
import { formatBytes } from '@/lib/adapters/format/units';
import { defineHerdAction, productionWarning, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import { dnsSteps } from '@/lib/actions/steps/dns-steps';
import {
  launchPrice,
  launchStep,
  newLaunchState,
  planLaunch,
  serverToLaunch,
  type LaunchPlan,
  type SizeWish,
} from '@/lib/actions/steps/launch';
import { resizeWishFields } from '@/lib/actions/drivers/resize';
import {
  loadRestoreServer,
  newRestoreState,
  placeFields,
  restoreTargetParams,
  serverRefusal,
  type RestorePlace,
  type RestoreServer,
} from '@/lib/actions/steps/restore-steps';
import { prepareBackups, policyRefusal, type BackupPrepared } from '@/lib/actions/steps/backup-steps';
import { recordTargets } from '@/lib/fleet/dns-records';
import type { DnsRecordRef, HerdRef } from '@/lib/fleet/herd-ref';
import type { HerdPolicy } from '@/lib/fleet/backups/policy';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { newSeedState, seedSteps, type Seed, type SeedState } from '@/lib/actions/steps/seed-steps';
import { asks, driverOf, herdsByDriver, preparedBy, type DriversPrepared } from '@/lib/actions/drivers';
import { madeReplicaFields } from '@/lib/actions/drivers/add-replica';
import { driverFor } from '@/lib/fleet/drivers';

const { serverId, instanceType, port, dataDirectory, sslCertFile, sslKeyFile } = restoreTargetParams;

export const addReplicaParams = z
  .object({
    serverId,
    instanceType,
    /** Instead of instanceType: the cheapest type in the zone with at least this (on the market chosen), as Resize does. */
    minVcpus: resizeWishFields.minVcpus,
    minMemoryGiB: resizeWishFields.minMemoryGiB,
    burstable: resizeWishFields.burstable,
    /** The member a new instance is launched like (its image, subnet and zone, security groups); default the primary. */
    like: idText('like').optional(),
    /** spot: a new instance bought on the spot market (EC2 may take it back with two minutes' notice). */
    market: z.enum(['on-demand', 'spot']).default('on-demand'),
    /** Where its data comes from; auto: the repository, else a replica, else the primary. */
    seed: z.enum(['auto', 'repository', 'replica', 'primary']).default('auto'),
    port: port,
    /** Required where pgherd lays the replica out (not where the control plane makes it: instanceClass). */
    dataDirectory: dataDirectory.optional(),
    sslCertFile,
    sslKeyFile,
    // A herd whose control plane makes the replica itself (RDS): its class and zone.
    ...madeReplicaFields,
  })
  .strict()
  .refine((p) => [p.serverId, p.instanceType, bySize(p) ? true : undefined, p.instanceClass].filter((v) => v !== undefined).length === 1, {
    message:
      'give serverId (an empty server of the environment), instanceType or minVcpus and/or minMemoryGiB (a new EC2 instance) or, on a herd RDS runs, instanceClass (the class of its read replica): one of them',
    path: ['serverId'],
  })
  .refine((p) => p.instanceClass !== undefined || p.dataDirectory !== undefined, {
    message: "the new member's data directory (its folder must not exist on the server)",
    path: ['dataDirectory'],
  })
  .refine((p) => p.market === 'on-demand' || p.instanceType !== undefined || bySize(p), {
    message: 'market spot is for a new EC2 instance (instanceType, or minVcpus and minMemoryGiB)',
    path: ['market'],
  });

type Params = z.output<typeof addReplicaParams>;

/** Whether a new instance is asked for by size (minVcpus and/or minMemoryGiB), not by type. */
export function bySize(p: { minVcpus?: number | undefined; minMemoryGiB?: number | undefined }): boolean {
  return p.minVcpus !== undefined || p.minMemoryGiB !== undefined;
}

/** What a new instance is asked as: a type, or a size (null: none is launched). */
export function launchWish(p: Pick<Params, 'instanceType' | 'minVcpus' | 'minMemoryGiB' | 'burstable'>): string | SizeWish | null {
  if (p.instanceType !== undefined) return p.instanceType;
  return bySize(p) ? { minVcpus: p.minVcpus, minMemoryGiB: p.minMemoryGiB, burstable: p.burstable } : null;
}

interface AddPrepared extends Prepared {
  /** What each driver that makes its own replicas read for its herds. */
  makers: DriversPrepared;
}

interface Prepared extends BackupPrepared {
  server: RestoreServer | null;
  launch: Map<number, LaunchPlan | Refusal>;
  /** Per herd: its last full backup still in the repository (bytes), when there is one. */
  lastFull: Map<number, number>;
}

/** How far behind the primary a new replica may be when it counts as caught up. */
export const CATCH_UP_BYTES = 16 * 1024 * 1024;

export interface AddState extends SeedState {
  members?: InstanceRef[];
}

export async function prepareAddReplica(
  herds: HerdRef[],
  params: Pick<Params, 'instanceType' | 'like' | 'market' | 'serverId'> & Partial<Pick<Params, 'minVcpus' | 'minMemoryGiB' | 'burstable'>>,
  db: Db,
): Promise<Prepared> {
  const base = await prepareBackups(herds, db);
  const launch = new Map<number, LaunchPlan | Refusal>();
  const wanted = launchWish(params);
  if (wanted !== null)
    for (const h of herds) {
      const like = params.like === undefined ? undefined : h.members.find((m) => m.id === params.like);
      if (params.like !== undefined && !like) {
        launch.set(h.id, refuse('params', `instance ${params.like} (like) is not a member of ${h.label}`));
        continue;
      }
      launch.set(h.id, await planLaunch(db, h, wanted, { ...(like ? { like } : {}), spot: params.market === 'spot' }));
    }
  const ids = herds.map((h) => h.id);
  const full = ids.length
    ? await db.execute<{ herd_id: number; bytes: string }>(sql`
        SELECT DISTINCT ON (herd_id) herd_id, size_bytes::text AS bytes FROM backups
        WHERE herd_id = ANY(${sql.param(ids)}::int[]) AND type = 'full' AND gone_at IS NULL ORDER BY herd_id, stopped_at DESC`)
    : { rows: [] };
  return {
    ...base,
    server: await loadRestoreServer(db, params.serverId),
    launch,
    lastFull: new Map(full.rows.map((r) => [r.herd_id, Number(r.bytes)])),
  };
}

/** Where the new replica's data comes from, and why; or why none can be used. */
function chooseSeed(
  h: HerdRef,
  params: Pick<Params, 'seed'>,
  prepared: Prepared,
  primary: InstanceRef,
): { seed: Seed; why: string } | Refusal {
  const setup = prepared.setups.get(h.id);
  const policy = prepared.policies.get(h.id);
  const full = prepared.lastFull.get(h.id);
  const repoProblem = !setup
    ? `${h.label} has no backups configured (Configure backups)`
    : (policyRefusal(h, policy)?.reason ?? (full === undefined ? `the repository holds no full backup of ${h.label} (Back up)` : null));
  const replica = h.members.find((m) => m.role === 'replica' && m.state === 'running' && m.upstreamId === primary.id);
  const want = params.seed;
  if (want === 'repository' || (want === 'auto' && !repoProblem)) {
    if (repoProblem || !setup) return refuse('not-applicable', `cannot seed from the repository: ${repoProblem ?? 'no setup'}`);
    return {
      seed: { kind: 'repository', stanza: setup.stanza },
      why: `the herd's backup repository (stanza ${setup.stanza}, last full backup ${formatBytes(full ?? 0)}): the primary only sends the WAL written since, the rest comes from the archive`,
    };
  }
  if (want === 'replica' || (want === 'auto' && replica)) {
    if (!replica)
      return refuse('not-applicable', `cannot seed from a replica: ${h.label} has no running replica streaming from ${primary.label}`);
    return {
      seed: { kind: 'replica', from: replica },
      why: `${replica.label}, a replica (pg_basebackup from it: the primary is not read)${want === 'auto' ? `; not the repository: ${repoProblem ?? ''}` : ''}`,
    };
  }
  return {
    seed: { kind: 'primary', from: primary },
    why: `the primary ${primary.label} (pg_basebackup: it reads the whole database from the primary, the last resort)${want === 'auto' ? `; not the repository (${repoProblem ?? ''}), and no replica to read instead` : ''}`,
  };
}

export const addReplicaAction = defineHerdAction({
  name: 'add-replica',
  control: asks('add-replica'),
  label: 'Add replica',
  // A new host for the herd (an instance launched and paid for, a server laid out): an admin's act.
  permission: 'admin',
  dangerous: true,
  schedulable: false,
  runsAsConfirmed: true,
  params: {
    schema: addReplicaParams,
    fields: [
      ...placeFields('Server', {
        example: '/var/lib/postgresql/replicas/orders-3/data',
        help: 'its folder (orders-3 here) must not exist on the server: the new replica makes it, and lays everything down inside it',
      }),
      {
        name: 'like',
        label: 'Launched like (instance id)',
        kind: 'text',
        emptyLabel: 'the primary',
        help: 'a member whose image, subnet and zone the new instance gets',
      },
      {
        name: 'minVcpus',
        label: 'Or at least vCPU',
        kind: 'text',
        emptyLabel: '4',
        help: 'instead of an instance type: the cheapest type offered in its zone with at least this many vCPU (and the memory below), by the market\u2019s price',
      },
      { name: 'minMemoryGiB', label: 'And at least GiB', kind: 'text', emptyLabel: '16', help: 'memory, in GiB' },
      { name: 'market', label: 'Market', kind: 'text', emptyLabel: 'on-demand', help: 'on-demand or spot (a new instance only)' },
      { name: 'seed', label: 'Seed from', kind: 'text', emptyLabel: 'auto', help: 'auto, repository, replica or primary' },
      {
        name: 'instanceClass',
        label: 'Class (RDS)',
        kind: 'text',
        emptyLabel: 'db.m6i.large',
        help: 'on a herd RDS runs, the class of the read replica RDS makes (instead of a server or an instance type)',
      },
      {
        name: 'availabilityZone',
        label: 'Zone (RDS)',
        kind: 'text',
        emptyLabel: 'RDS picks one',
        help: 'an availability zone of the source\u2019s region',
      },
    ],
  },
  state: (): AddState => newSeedState(newRestoreState(), newLaunchState()),
  prepare: async (herds, params, db): Promise<AddPrepared> => {
    // A driver that makes replicas itself prepares its own herds; the others get a new member laid out over SSH.
    const makers: DriversPrepared = new Map();
    const own: HerdRef[] = [];
    for (const [d, hs] of herdsByDriver(herds))
      if (d.addReplica) makers.set(d, await d.addReplica.prepare(hs, params, db));
      else own.push(...hs);
    return { ...(await prepareAddReplica(own, params, db)), makers };
  },
  plan: (h, { params, prepared }) => {
    const d = driverOf(h);
    if (d instanceof Refusal) return d;
    if (d.addReplica) return d.addReplica.plan<AddState>(h, params, preparedBy(prepared.makers, d));
    if (params.instanceClass !== undefined || params.availabilityZone !== undefined)
      return refuse(
        'params',
        `instanceClass and availabilityZone are for a herd whose control plane makes its replicas; ${h.label}'s new member goes on a server (serverId) or a new EC2 instance (instanceType, or minVcpus and minMemoryGiB)`,
      );
    return planAddReplica<AddState>(h, params, prepared, launchWish(params) !== null ? prepared.launch.get(h.id) : null);
  },
});

/** What an add plans with: the parameters it is given, and what prepare read. */
export type AddReplicaParams = Pick<Params, 'serverId' | 'instanceType' | 'seed' | 'port' | 'dataDirectory' | 'sslCertFile' | 'sslKeyFile'>;
export type AddReplicaPrepared = Prepared;

/**
 * The add's plan for herd `h` as it is when the add runs (a Replace may switch it over first: its members
 * after that), with `launch` the instance to launch (none: the server of `prepared`).
 */
export function planAddReplica<S extends AddState>(
  h: HerdRef,
  params: AddReplicaParams,
  prepared: Prepared,
  launch: LaunchPlan | Refusal | null | undefined,
  /** notIn: a member the read names never point at (one being evacuated). */
  opts: { notIn?: number } = {},
): ActionPlan<S> | Refusal {
  const dataDirectory = params.dataDirectory;
  if (dataDirectory === undefined)
    return refuse('params', "dataDirectory: the new member's data directory (its folder must not exist on the server)");
  const primary = h.members.find((m) => m.role === 'primary' && m.state === 'running');
  if (!primary) return refuse('topology', `${h.label} has no running primary for a new replica to stream from`);
  const packaged = driverFor(primary.controlDriver).packaged;
  if (packaged)
    return refuse(
      'not-applicable',
      `${h.label}: ${packaged}; a new member is laid out in a folder of its own and run by pg_ctl, so only pg_ctl herds grow this way`,
    );
  if (launch instanceof Refusal) return launch;
  const server = launch ? serverToLaunch(launch) : prepared.server;
  const bad = launch ? undefined : serverRefusal(h, server, params.serverId);
  if (bad || !server) return bad ?? refuse('gone', 'no server');
  const chosen = chooseSeed(h, params, prepared, primary);
  if (chosen instanceof Refusal) return chosen;
  const policy = prepared.policies.get(h.id);
  const setup = prepared.setups.get(h.id);
  const z: NewReplica = {
    h,
    primary,
    launch,
    chosen,
    backups: setup && policy && !policyRefusal(h, policy) ? { policy, stanza: setup.stanza } : null,
    pl: {
      server,
      port: params.port ?? primary.port,
      dataDirectory,
      pgVersion: primary.pgVersion,
      binDir: primary.binDir,
      // Given, else those an instance launched there holds (the configuration's), else the seed's own.
      sslCertFile: params.sslCertFile ?? launch?.tls?.certFile,
      sslKeyFile: params.sslKeyFile ?? launch?.tls?.keyFile,
      clusterName: h.name,
    },
    readNames: h.dns.filter((r) => r.match === 'role' && r.matchRole === 'replica'),
  };
  return {
    steps: [
      ...(launch ? [launchStep<S>(launch, server, (s) => s.launch, { kind: 'replica', name: `${h.environment}-${h.name}-replica` })] : []),
      ...seedSteps<S>(h, primary, z.pl, chosen.seed, z.backups, {
        catchUpBytes: CATCH_UP_BYTES,
        register: async (x) => {
          x.state.members = await loadInstanceRefs(x.deps.db, [], { herdIds: [h.id] });
        },
      }),
      ...readNamesSteps<S>(z, opts),
    ],
    facts: addFacts(z),
    ...(launch ? { cost: { nowPerHour: 0, afterPerHour: launch.spot ? launch.spot.perHour : launch.perHour } } : {}),
    warnings: [
      ...productionWarning(h),
      ...(chosen.seed.kind === 'primary' ? ['the seed reads the whole database from the primary, loading it while it runs'] : []),
      ...(z.backups
        ? ['backups keep reading the members Configure backups listed: run it again to have them read the new replica too']
        : []),
    ],
  };
}

/** What a new replica's steps and facts share once nothing refuses it: its herd and primary, its launch, place and seed, the read names. */
interface NewReplica {
  h: HerdRef;
  primary: InstanceRef;
  launch: LaunchPlan | null | undefined;
  chosen: { seed: Seed; why: string };
  backups: { policy: HerdPolicy; stanza: string } | null;
  pl: RestorePlace;
  readNames: DnsRecordRef[];
}

/** The herd's read names pointed at its running replicas, the new one among them (never at `opts.notIn`). */
function readNamesSteps<S extends AddState>({ h, readNames }: NewReplica, opts: { notIn?: number }): ActionStep<S>[] {
  return dnsSteps<S>(
    h,
    (s) => (s.members ?? h.members).filter((m) => m.id !== opts.notIn),
    () => ({ chosenWhenItRuns: 'the running replicas, the new one among them' }),
    (r) => `point ${r.name} (${r.type}) at the herd's running replicas, the new one among them`,
    (r) => readNames.includes(r),
  );
}

/** The confirmation page's facts of an add: its upstream, its seed, where it goes, the instance launched, its WAL, the read names. */
function addFacts({ h, primary, launch, chosen, backups, pl, readNames }: NewReplica) {
  return [
    { label: 'Streams from', value: primary.label },
    { label: 'Seeded from', value: chosen.why },
    { label: 'Onto', value: `${pl.server.hostname}:${pl.port} ${pl.dataDirectory}` },
    ...(launch
      ? [
          {
            label: 'New instance',
            value: `${launch.instanceType} like ${launch.like.hostname}, in ${launch.template.subnetId} (${launch.template.availabilityZone}): ${launchPrice(launch)}${launch.chosen ? `; ${launch.chosen}` : ''}`,
          },
        ]
      : []),
    {
      label: 'WAL',
      value: backups
        ? `restore_command from the repository: it catches up however far behind the seed leaves it`
        : `no restore_command (no backups configured): it must catch up from the WAL the primary still keeps`,
    },
    {
      label: 'Read names',
      value: readNames.length
        ? readNames
            .map(
              (r) =>
                `${r.name} (now ${(() => {
                  const t = recordTargets(r, h.members);
                  return typeof t === 'string' ? t : t.map((m) => m.hostname).join(', ');
                })()})`,
            )
            .join('; ')
        : 'the herd has none',
    },
  ];
}
