// Plan: what an action will do to each selected instance (or herd), what refuses and what warns.
// Nothing runs.
// The digest covers what the plan will do, as data, and where: a confirm with another digest is refused.
import { createHash, randomUUID } from 'node:crypto';
import type { Db } from '@/db/client';
import { demand, type Access, AccessDenied, SYSTEM_ACCESS } from '@/lib/engine/access';
import {
  checkDriver,
  herdServers,
  isHerdAction,
  parseParams,
  pendingRefusal,
  refusedPlan,
  roleNeeded,
  unpinnedRefusal,
  type ActionParams,
  type AnyAction,
  type TargetPlan,
} from '@/lib/engine/define-action';
import { loadHerdRefs, type HerdRef } from '@/lib/fleet/herd-ref';
import { Refusal } from '@/lib/fleet/refusal';
import { loadInstancesWithHerds, type InstanceRef } from '@/lib/fleet/instance-ref';
import { canaryProblem, wavesOf, WavesError, type WaveSpec } from '@/lib/engine/waves';
import { canonical } from '@/lib/engine/plan-identity';

export interface PlannedTarget extends TargetPlan {
  /** The instance, for instance actions; null for herd actions. */
  instanceId: number | null;
  label: string;
  herdId: number;
  herd: string;
  environment: string;
  environmentId: number;
  /** The site of the server it acts on (a herd action: its primary's), for waves by site and the sites' caps. */
  site: string;
}

export interface Plan {
  action: string;
  label: string;
  /** The action's parameters as validated (empty for actions without any). */
  params: ActionParams;
  targets: PlannedTarget[];
  /** What the ids are: instances, or herds for herd actions. */
  on: 'instance' | 'herd';
  /** Ids asked for that do not exist (any more). */
  missing: number[];
  digest: string;
  /** What the user must type to confirm: the environment's name, or the number of targets. */
  typeToConfirm: string | null;
  /** A fresh key for this confirmation page: submitting it twice enqueues once. */
  idempotencyKey: string;
  /** The cost of the runnable targets added up, when the action prices them (a resize). */
  cost?: CostTotal;
}

/** What the runnable targets cost an hour, now and after; `unpriced`: targets left out for want of a price. */
export interface CostTotal {
  nowPerHour: number;
  afterPerHour: number;
  targets: number;
  unpriced: number;
}

/** The runnable targets' costs added up; undefined when no target is priced by its action. */
export function costTotal(targets: Pick<TargetPlan, 'refused' | 'cost'>[]): CostTotal | undefined {
  const priced = targets.filter((t) => !t.refused && t.cost);
  if (!priced.length) return undefined;
  const total: CostTotal = { nowPerHour: 0, afterPerHour: 0, targets: 0, unpriced: 0 };
  for (const { cost } of priced) {
    if (cost?.nowPerHour == null || cost.afterPerHour == null) {
      total.unpriced++;
      continue;
    }
    total.nowPerHour += cost.nowPerHour;
    total.afterPerHour += cost.afterPerHour;
    total.targets++;
  }
  return total;
}

export const TYPE_COUNT_ABOVE = 10;

/**
 * Where the commands go: a member moved, re-addressed or re-keyed makes any plan on its herd stale, and
 * so does another Patroni REST address or scope (where Patroni's credentials and requests go).
 */
function identity(r: InstanceRef) {
  return [
    r.id,
    r.herdId,
    r.environmentId,
    r.host,
    r.port,
    r.dataDirectory,
    r.pgVersion,
    r.controlDriver,
    r.ssh.port,
    r.ssh.username,
    r.ssh.hostKeyFingerprint,
    r.patroniUrl,
    r.patroniScope,
  ];
}

export { ParamsError, parseParams } from '@/lib/engine/define-action';

/**
 * A plan goes stale when what it would do changes, not whenever an observation does, nor when its
 * words do: the digest covers where the commands go (each member's identity, the herds' DNS records
 * and poolers), the parameters, and per target whether it is refused (and its refusal's code), what
 * each step does (its kind and arguments: addresses, data directories, instance ids and types, DNS
 * records, poolers) and the warnings that change what is done, all as data in one canonical form. The
 * sentences shown for them are not in it: rewording one changes no plan. Observed facts (an old primary
 * seen stopped, LSNs, lag) are shown on the confirmation page but are not in it either: a DR failover's
 * old primary going from "running" to "stopped" between plan and confirm is what the operator expects,
 * not a reason to plan again. A step that depends on an observation (a switchover's candidate, chosen
 * by lag) says so in its arguments, and then that does count.
 */
export function digestOf(
  action: string,
  refs: InstanceRef[],
  params: ActionParams = {},
  herds: HerdRef[] = [],
  targets: Pick<PlannedTarget, 'instanceId' | 'herdId' | 'refused' | 'refusalCode' | 'does' | 'warns'>[] = [],
): string {
  const h = createHash('sha256').update(action).update(canonical(params));
  for (const r of [...refs].sort((a, b) => a.id - b.id)) h.update(canonical(identity(r)));
  for (const x of [...herds].sort((a, b) => a.id - b.id))
    h.update(canonical([x.id, x.environmentId, x.systemIdentifier, x.dns, x.poolers]));
  const key = (t: { instanceId: number | null; herdId: number }) => t.instanceId ?? t.herdId;
  for (const t of [...targets].sort((a, b) => key(a) - key(b)))
    h.update(canonical([key(t), t.refused ? (t.refusalCode ?? 'refused') : null, t.does, t.warns]));
  return h.digest('hex').slice(0, 32);
}

export function typeToConfirm(action: AnyAction, targets: PlannedTarget[]): string | null {
  const runnable = targets.filter((t) => !t.refused);
  if (!runnable.length) return null;
  const envs = [...new Set(runnable.map((t) => t.environment))];
  if (runnable.length > TYPE_COUNT_ABOVE || envs.length > 1) return String(runnable.length);
  const prod = envs.find((e) => /^prod/i.test(e));
  if (prod !== undefined) return prod;
  return action.dangerous && runnable.length > 1 ? String(runnable.length) : null;
}

/** What an action's prepare read; a Refusal it throws is kept, to refuse each target with it. */
async function prepareAll(read: () => Promise<unknown> | undefined): Promise<unknown> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof Refusal) return err;
    throw err;
  }
}

/**
 * One target's plan: refused before the action is asked when a server it touches has no pinned host
 * key; a Refusal thrown while planning (a driver pgherd cannot run, say) refuses the target. Anything
 * else thrown is a bug, and fails the whole plan rather than pass for a refusal.
 */
export function planTarget(
  servers: { name: string; approval?: string | null; ssh: { hostKeyFingerprint: string | null }; shell?: boolean }[],
  action: AnyAction,
  plan: () => TargetPlan,
): TargetPlan {
  const pending = pendingRefusal(servers);
  if (pending) return refusedPlan(pending);
  const unpinned = unpinnedRefusal(action, servers);
  if (unpinned) return refusedPlan(unpinned);
  try {
    return plan();
  } catch (err) {
    if (err instanceof Refusal) return refusedPlan(err);
    throw err;
  }
}

/** What planning reads of the inventory: the herds (herd actions), or the instances with their herds' members. */
export type PlanSource =
  { on: 'herd'; herds: Map<number, HerdRef> } | { on: 'instance'; refs: Map<number, InstanceRef>; members: Map<number, InstanceRef[]> };

/**
 * The inventory any number of plans of `action` over `ids` need, read at once (one query for the
 * instances and their herds' members, or for the herds): the rules engine plans thousands of fires
 * from one read.
 */
export async function readPlanSource(db: Db, action: AnyAction, ids: number[]): Promise<PlanSource> {
  const unique = [...new Set(ids)];
  if (isHerdAction(action)) return { on: 'herd', herds: new Map((await loadHerdRefs(db, unique)).map((h) => [h.id, h])) };
  const { refs, members } = await loadInstancesWithHerds(db, unique);
  return { on: 'instance', refs: new Map(refs.map((r) => [r.id, r])), members };
}

/**
 * Throws ParamsError when `rawParams` do not fit the action, AccessDenied when the user lacks the
 * action's role in a target's environment (every target is checked, whatever else refuses it).
 * `ids` are herds for herd actions.
 */
export async function planOperation(
  db: Db,
  access: Access,
  action: AnyAction,
  ids: number[],
  rawParams: unknown = {},
  /** Waves asked for: part of what is confirmed, so they are in the digest (a confirm with other waves is stale). */
  waves: WaveSpec | null = null,
): Promise<Plan> {
  return planFrom(db, await readPlanSource(db, action, ids), access, action, ids, rawParams, waves);
}

/** planOperation on an inventory already read (readPlanSource over these ids, or more). */
export async function planFrom(
  db: Db,
  source: PlanSource,
  access: Access,
  action: AnyAction,
  ids: number[],
  rawParams: unknown = {},
  waves: WaveSpec | null = null,
): Promise<Plan> {
  // An action only pgherd itself starts (an evacuation, on EC2's notice): urgent, it preempts others' work.
  if (action.systemOnly && !(access.userId === null && access.username === SYSTEM_ACCESS.username))
    throw new AccessDenied(`${action.label} is started by pgherd itself (${action.systemOnly}), never by a person`);
  const params = parseParams(action, rawParams);
  const unique = [...new Set(ids)];
  let targets: PlannedTarget[];
  let digest: string;
  if (isHerdAction(action)) {
    if (source.on !== 'herd') throw new Error(`${action.name} is planned from herds`);
    const herds = unique.map((id) => source.herds.get(id)).filter((h): h is HerdRef => h !== undefined);
    await demand(
      db,
      access,
      roleNeeded(action, params),
      action.label,
      herds.map((h) => h.environmentId),
    );
    const prepared = action.prepare ? await prepareAll(() => action.prepare?.(herds, params, db)) : undefined;
    targets = herds.map((h) => ({
      ...planTarget(herdServers(h), action, () => {
        for (const m of h.members) checkDriver(action, m.controlDriver); // as for instances: before anything else
        if (prepared instanceof Refusal) throw prepared;
        return action.plan(h, { params, prepared });
      }),
      instanceId: null,
      label: h.label,
      herdId: h.id,
      herd: h.name,
      environment: h.environment,
      environmentId: h.environmentId,
      site: (h.members.find((m) => m.role === 'primary') ?? h.members[0])?.site ?? '',
    }));
    digest = digestOf(
      action.name,
      herds.flatMap((h) => h.members),
      params,
      herds,
      targets,
    );
  } else {
    if (source.on !== 'instance') throw new Error(`${action.name} is planned from instances`);
    const refs = unique.map((id) => source.refs.get(id)).filter((r): r is InstanceRef => r !== undefined);
    const members = new Map(refs.map((r) => [r.herdId, source.members.get(r.herdId) ?? [r]]));
    await demand(
      db,
      access,
      roleNeeded(action, params),
      action.label,
      refs.map((r) => r.environmentId),
    );
    const prepared = action.prepare ? await prepareAll(() => action.prepare?.(refs, params, db)) : undefined;
    targets = refs.map((r) => ({
      ...planTarget([{ name: r.hostname, ssh: r.ssh, approval: r.serverApproval, shell: !r.rds }], action, () => {
        checkDriver(action, r.controlDriver); // refuses drivers pgherd cannot act through, before anything else
        if (prepared instanceof Refusal) throw prepared;
        return action.plan(r, { members: members.get(r.herdId) ?? [r], params, prepared });
      }),
      instanceId: r.id,
      label: r.label,
      herdId: r.herdId,
      herd: r.herd,
      environment: r.environment,
      environmentId: r.environmentId,
      site: r.site,
    }));
    digest = digestOf(action.name, [...members.values()].flat(), params, [], targets);
  }
  // In the order asked for: "as listed" waves follow it.
  const position = new Map(unique.map((id, i) => [id, i]));
  targets.sort((a, b) => (position.get(a.instanceId ?? a.herdId) ?? 0) - (position.get(b.instanceId ?? b.herdId) ?? 0));
  const found = new Set(targets.map((t) => t.instanceId ?? t.herdId));
  // Waves: the spec, and which target runs in which wave (as listed, the order of the ids decides it:
  // the same ids in another order are another plan).
  let assigned: number[][] | null = null;
  if (waves) {
    const runnable = targets.filter((t) => !t.refused);
    const why = canaryProblem(runnable, waves);
    if (why) throw new WavesError(why);
    assigned = wavesOf({ targets }, waves).map((w) => w.targets.map((t) => t.instanceId ?? t.herdId));
  }
  const total = costTotal(targets);
  return {
    action: action.name,
    label: action.label,
    on: isHerdAction(action) ? 'herd' : 'instance',
    params,
    targets,
    missing: unique.filter((id) => !found.has(id)),
    digest: waves
      ? createHash('sha256')
          .update(digest)
          .update(JSON.stringify([waves, assigned]))
          .digest('hex')
          .slice(0, 32)
      : digest,
    typeToConfirm: typeToConfirm(action, targets),
    // 122 random bits from the runtime's cached pool: a rule's fire plans thousands at once.
    idempotencyKey: randomUUID().replaceAll('-', ''),
    ...(total ? { cost: total } : {}),
  };
}
