// Upgrade a herd to another minor release of its major: every member onto another Postgres build
// installed on its host, while the herd keeps serving. The replicas first, one at a time: its names
// drained, a clean stop, a start on the new build, then the gate (it answers with the new version and
// streams with replay lag under the bound) before its names come back. A member that fails the gate is
// put back on the build it ran before, streaming again, and the upgrade stops there. Then a switchover
// to an upgraded replica (no acknowledged commit lost, as the switchover action does it), then the old
// primary, now a replica, the same way; optionally a switchover back to it. A member already on the
// target build is left as it is, so an upgrade cut short is finished by running it again; the same
// action to the earlier release is the way back.
import { eq, inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { instances, postgresBuilds } from '@/db/schema';
import { idText, MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { chooseCandidate } from '@/lib/fleet/candidates';
import {
  defineHerdAction,
  flagParam,
  productionWarning,
  type ActionPlan,
  type ActionStep,
  type Fact,
  type RunContext,
} from '@/lib/engine/define-action';
import { inTurn, part, type Part } from '@/lib/engine/compose';
import { memberArg } from '@/lib/engine/plan-identity';
import { errorText } from '@/lib/engine/errors';
import { binsOf, driverFor, pgCtl } from '@/lib/fleet/drivers';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, waitObserved } from '@/lib/fleet/observe';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { refreshStep } from '@/lib/actions/steps/control-steps';
import { hostSaysRunning, proveDirectoryIsInstances, proveDirectoryServed } from '@/lib/actions/steps/data-directory';
import { execNotedOk } from '@/lib/actions/steps/exec-noted';
import { herdsUnderUpgrade } from '@/lib/actions/steps/open-upgrades';
import { DEFAULT_MAX_LAG_SECONDS, replicaDrain, streamsWithin } from '@/lib/actions/steps/drain-steps';
import { membersAfterSwitchover, newSwitchoverState, type SwitchoverState } from '@/lib/actions/drivers/switchover';
import { asks, planSwitchoverOf } from '@/lib/actions/drivers';

/** "15.18" from 150018. */
export const versionText = (num: number): string => `${Math.floor(num / 10000)}.${num % 10000}`;

/** 150018 from "15.18"; null for anything else. */
export function versionNum(text: string): number | null {
  const m = /^(\d{2,3})\.(\d{1,4})$/.exec(text.trim());
  return m ? Number(m[1]) * 10000 + Number(m[2]) : null;
}

const DEFAULT_GATE_SECONDS = 300;

export const upgradeMinorParams = z
  .object({
    /** The release to run, "15.18"; left out: the newest of the herd's major installed on every member's host. */
    toVersion: z.preprocess(
      (v) => (typeof v === 'string' && !v.trim() ? undefined : v),
      z
        .string()
        .regex(/^\s*\d{2,3}\.\d{1,4}\s*$/, 'a release such as 15.18')
        .transform((v) => v.trim())
        .optional(),
    ),
    /** The replica that becomes the primary; left out: the most up-to-date one when the plan is made. */
    candidateInstanceId: idText('candidateInstanceId', MAX_BIG_ID).optional(),
    /** Switch over again at the end, so the old primary is the primary again. */
    switchBack: flagParam(),
    /** Replay lag a member on the new build must be under for its gate. */
    maxLagSeconds: z.preprocess(
      (v) => (typeof v === 'string' ? (v.trim() ? Number(v) : undefined) : v),
      z.number({ message: 'seconds: a number' }).int().min(0).max(3600).optional(),
    ),
    /** How long a member on the new build may take to pass its gate before it is put back. */
    gateSeconds: z.preprocess(
      (v) => (typeof v === 'string' ? (v.trim() ? Number(v) : undefined) : v),
      z.number({ message: 'seconds: a number' }).int().min(5).max(3600).optional(),
    ),
  })
  .strict();

export interface Build {
  binDir: string;
  versionNum: number;
  versionText: string;
}

/** The builds each member's server reports, by server id. */
export interface UpgradePrepared {
  builds: Map<number, Build[]>;
  /** Herds a major upgrade holds, and why that refuses them. */
  held?: Map<number, string>;
}

export async function loadBuilds(db: Db, serverIds: number[]): Promise<Map<number, Build[]>> {
  const rows = serverIds.length
    ? await db
        .select({
          serverId: postgresBuilds.serverId,
          binDir: postgresBuilds.binDir,
          versionNum: postgresBuilds.versionNum,
          versionText: postgresBuilds.versionText,
        })
        .from(postgresBuilds)
        .where(inArray(postgresBuilds.serverId, [...new Set(serverIds)]))
        .orderBy(postgresBuilds.serverId, postgresBuilds.binDir)
    : [];
  const out = new Map<number, Build[]>();
  for (const r of rows) out.set(r.serverId, [...(out.get(r.serverId) ?? []), r]);
  return out;
}

/** What every upgrade that moves members between builds reads before planning: each member's host's builds, the herds a major upgrade holds. */
export async function prepareUpgrade(db: Db, herds: HerdRef[]): Promise<{ builds: Map<number, Build[]>; held: Map<number, string> }> {
  return {
    builds: await loadBuilds(
      db,
      herds.flatMap((h) => h.members.map((m) => m.serverId)),
    ),
    held: await herdsUnderUpgrade(
      db,
      herds.map((h) => h.id),
    ),
  };
}

interface MemberState {
  /** The member put back on the build it ran before (its gate failed): the names stay where they are sent. */
  rolledBack: boolean;
}

interface UpgradeState {
  members: Map<number, MemberState>;
  over: SwitchoverState;
  back: SwitchoverState;
}

/** The newest release of `major` that every host has a build of: each host's releases, as versionNum. */
export function newestOnEvery(hosts: number[][], major: number): number | null {
  let common: Set<number> | undefined;
  for (const releases of hosts) {
    const here = new Set(releases.filter((v) => Math.floor(v / 10000) === major));
    common = common ? new Set([...common].filter((v) => here.has(v))) : here;
  }
  const all = [...(common ?? [])];
  return all.length ? Math.max(...all) : null;
}

/** newestOnEvery over these servers' reported builds. */
export const newestEverywhere = (builds: Map<number, Build[]>, serverIds: number[], major: number): number | null =>
  newestOnEvery(
    [...new Set(serverIds)].map((id) => (builds.get(id) ?? []).map((b) => b.versionNum)),
    major,
  );

async function recordBuild(db: Db, t: InstanceRef, binDir: string, num: number | null) {
  await db
    .update(instances)
    .set({ binDir, ...(num === null ? {} : { serverVersionNum: num }), updatedAt: sql`now()` })
    .where(eq(instances.id, t.id));
}

/** One member's move: the member, the build it runs and the one it goes to, its gate's bounds. */
interface MemberMove {
  t: InstanceRef;
  from: { binDir: string; num: number };
  to: Build;
  maxLag: number;
  gateMs: number;
}

/**
 * The steps that move one replica from `from` to `to`, its names drained meanwhile (each put back once it
 * streams, then their TTL waited out); or why a name of it cannot be drained.
 */
function memberSteps(h: HerdRef, members: InstanceRef[], mv: MemberMove): ActionStep<MemberState>[] | Refusal {
  const drain = replicaDrain<MemberState>(h, members, mv.t, mv.maxLag);
  if (drain instanceof Refusal) return drain;
  return [...drain.steps, ontoBuildStep(mv), refreshStep(mv.t)];
}

/** Stop whatever runs, start on `b`, and wait for its gate; throws why it did not pass. */
async function moveTo(
  x: RunContext<MemberState>,
  { t, maxLag, gateMs }: MemberMove,
  b: { binDir: string; num: number },
  stopWith: string,
  /** Putting back a member this step started moments ago: one that runs without answering is stopped all the same. */
  ours = false,
) {
  await stopIfRunning(x, t, gateMs, { binDir: stopWith, ours });
  await execNotedOk(x.deps, t, x, pgCtl.start({ ...t, binDir: b.binDir }));
  // What runs there now is on this build, whether or not it passes: the inventory says so at once.
  await recordBuild(x.deps.db, t, b.binDir, null);
  const v = versionText(b.num);
  const seen = await waitObserved(
    t,
    `answering as ${v}, streaming with replay lag under ${maxLag} s`,
    (w) => w.reachable && w.serverVersionNum === b.num && streamsWithin(w, maxLag),
    { timeoutMs: gateMs, signal: x.signal, everyMs: 250 },
  ).catch(async (err: unknown) => {
    const last = await observe(t, 3000);
    if (last.reachable && last.serverVersionNum !== b.num)
      throw new Error(`it answers as ${versionText(last.serverVersionNum ?? 0)}, not ${v} (the build at ${b.binDir} is not what it says)`);
    throw err;
  });
  await recordBuild(x.deps.db, t, b.binDir, seen.serverVersionNum ?? b.num);
  return seen;
}

/**
 * Stops the member when its host says a server runs on its directory. "Did not answer" is not
 * "stopped": a replica still replaying to consistency, or one slow under load, refuses connections
 * while its postmaster holds the directory, and a start beside it fails ("another server might be
 * running"). One that runs without answering is waited for (up to the gate's time) to learn that it
 * is not a primary; one this step started itself (`ours`) is stopped without it.
 */
async function stopIfRunning(x: RunContext<MemberState>, t: InstanceRef, waitMs: number, how: { binDir: string; ours: boolean }) {
  let o = await observe(t, 3000);
  if (!o.reachable) {
    if (!(await hostSaysRunning(x.deps, t, x))) return;
    if (!how.ours)
      o = await waitObserved(t, 'answering (its host says it runs)', (w) => w.reachable, {
        timeoutMs: waitMs,
        signal: x.signal,
        everyMs: 250,
      }).catch((err: unknown) => {
        throw refuse('unreachable', `${t.label} runs (as its host says) but does not answer (${errorText(err)}); nothing was stopped`);
      });
  }
  if (o.reachable && o.inRecovery === false)
    throw refuse('topology', `${t.label} answers as a primary: a primary is not upgraded on its own; nothing was stopped`);
  if (o.reachable) await proveDirectoryServed(x.deps, t, x, o);
  else await proveDirectoryIsInstances(x.deps, t, x);
  await execNotedOk(x.deps, t, x, pgCtl.stop({ ...t, binDir: how.binDir }, 'fast'));
}

/** The member stopped and started on the new build, then its gate; one that fails it runs the build of before again, and the upgrade stops. */
function ontoBuildStep(mv: MemberMove): ActionStep<MemberState> {
  const { t, from, to, maxLag, gateMs } = mv;
  const gate = `answers as ${versionText(to.versionNum)} and streams with replay lag under ${maxLag} s`;
  return {
    name: `onto ${versionText(to.versionNum)}`,
    does: {
      kind: 'pg.upgrade-minor',
      instance: memberArg(t),
      fromBinDir: from.binDir,
      toBinDir: to.binDir,
      toVersionNum: to.versionNum,
      maxReplayLagSeconds: maxLag,
      gateSeconds: gateMs / 1000,
    },
    says: `${t.label}, unless it answers as a primary: pg_ctl stop -m fast (${from.binDir}), pg_ctl start on ${to.binDir}; the gate: it ${gate} within ${gateMs / 1000} s, else it is stopped and started on ${from.binDir} again (${versionText(from.num)}) and the upgrade stops`,
    timeoutMs: gateMs * 2 + 700_000,
    run: async (x) => {
      try {
        const o = await moveTo(x, mv, { binDir: to.binDir, num: to.versionNum }, from.binDir);
        x.note({ stdout: `${versionText(to.versionNum)} on ${to.binDir}; streaming, replay lag ${o.replayLagSeconds ?? 0} s` });
        x.deps.outcome?.(`now ${versionText(to.versionNum)}`);
      } catch (err) {
        if (err instanceof Refusal) throw err;
        const why = errorText(err);
        x.note({ stderr: `gate failed: ${why}; back onto ${from.binDir}` });
        try {
          // Stopped with the build it ran before: whatever the new build's pg_ctl is, it is not trusted now.
          const back = await moveTo(x, mv, from, from.binDir, true);
          x.state.rolledBack = true;
          x.deps.outcome?.(`back on ${versionText(from.num)}`);
          x.note({ stdout: `back on ${versionText(from.num)} (${from.binDir}); streaming, replay lag ${back.replayLagSeconds ?? 0} s` });
        } catch (again) {
          throw new Error(
            `${t.label} failed its gate on ${versionText(to.versionNum)} (${why}), and could not be put back on ${versionText(from.num)}: ${errorText(again)}; its names stay drained`,
          );
        }
        throw new Error(
          `${t.label} failed its gate on ${versionText(to.versionNum)}: ${why}; it runs ${versionText(from.num)} again (${from.binDir}), streaming, and the upgrade stops here`,
        );
      }
    },
  };
}

const asReplicaOf = (m: InstanceRef, cand: InstanceRef): InstanceRef => ({
  ...m,
  role: 'replica',
  observedRole: 'replica',
  upstreamId: cand.id,
});

/** What the upgrade's parts share: the herd, the release it goes to and each member's build of it, the gate's bounds. */
interface MinorUpgrade {
  h: HerdRef;
  p: UpgradePrepared;
  target: number;
  /** The target release in words, "15.18". */
  wanted: string;
  buildFor: (m: InstanceRef) => Build;
  /** A member on the target build already: left as it is. */
  done: (m: InstanceRef) => boolean;
  maxLag: number;
  gateMs: number;
  /** A member once moved: a switchover that restarts it (the old primary, as a replica) starts it on its new build. */
  moved: Set<number>;
}

/**
 * The minor upgrade of herd `h`: what refuses it first; then the replicas moved one at a time, the old primary's turn
 * (a switchover, its move, the switch back when asked for), and every member seen on the release.
 */
function planUpgrade(h: HerdRef, params: z.output<typeof upgradeMinorParams>, p: UpgradePrepared): ActionPlan<UpgradeState> | Refusal {
  const fit = upgradableHerd(h, p);
  if (fit instanceof Refusal) return fit;
  const { old, major } = fit;
  const target = targetRelease(h, params, p, major);
  if (target instanceof Refusal) return target;
  const buildFor = targetBuilds(h, p, target);
  if (buildFor instanceof Refusal) return buildFor;
  const wanted = versionText(target);
  const done = (m: InstanceRef) => m.serverVersionNum === target && binsOf(m) === buildFor(m).binDir;
  if (h.members.every(done)) return refuse('not-applicable', `every member runs ${wanted} already`);
  const replicas = h.members.filter((m) => m.role === 'replica').sort((a, b) => a.id - b.id);
  if (!replicas.length && !done(old))
    return refuse(
      'not-applicable',
      'the herd has no replica to switch over to: upgrading its only member stops it (restart it on the new build by hand, or add a replica)',
    );
  const cand = chooseCandidate(h.members, params.candidateInstanceId);
  if (typeof cand === 'string') return refuse('topology', cand);
  const z: MinorUpgrade = {
    h,
    p,
    target,
    wanted,
    buildFor,
    done,
    maxLag: params.maxLagSeconds ?? DEFAULT_MAX_LAG_SECONDS,
    gateMs: (params.gateSeconds ?? DEFAULT_GATE_SECONDS) * 1000,
    moved: new Set(),
  };
  const parts: Part<UpgradeState>[] = [];
  for (const m of replicas.filter((r) => !done(r))) {
    const p = memberPart(z, m, h.members);
    if (p instanceof Refusal) return p;
    parts.push(p);
  }
  const oldParts = done(old) ? [] : oldPrimaryParts(z, old, cand, params.switchBack);
  if (oldParts instanceof Refusal) return oldParts;
  parts.push(...oldParts);
  const primaryAtEnd = done(old) || params.switchBack ? old : cand;
  return {
    steps: [...inTurn(parts), upgradedStep(z, primaryAtEnd)],
    warnings: upgradeWarnings(z, old),
    facts: upgradeFacts(
      z,
      parts.map((x) => x.order),
    ),
    before: { serverVersion: versionText(old.serverVersionNum ?? 0) },
    state: () => ({ members: new Map(), over: newSwitchoverState(), back: newSwitchoverState() }),
  };
}

/** The herd's one running primary and its one major; or why the herd is not upgraded (held, packaged, a member down or never observed). */
function upgradableHerd(h: HerdRef, p: UpgradePrepared): { old: InstanceRef; major: number } | Refusal {
  const held = p.held?.get(h.id);
  if (held) return refuse('not-applicable', held);
  // The engine asked the herd's driver for upgrade-minor; a member whose control tool runs what its packages laid out moves with them.
  const packaged = h.members.map((m) => driverFor(m.controlDriver).packaged).find(Boolean);
  if (packaged)
    return refuse('not-applicable', `${packaged}: upgrade the package on each host (apt, dnf); pgherd moves pg_ctl herds between builds`);
  const primaries = h.members.filter((m) => m.role === 'primary' && m.state === 'running');
  if (primaries.length !== 1)
    return refuse('topology', primaries.length ? `the herd has ${primaries.length} running primaries` : 'the herd has no running primary');
  const old = primaries[0] as InstanceRef;
  const away = h.members.filter((m) => m.state !== 'running');
  if (away.length)
    return refuse(
      'not-applicable',
      `${away.map((m) => `${m.label} is ${m.state}`).join('; ')}: start it, or take it out of the herd; an upgrade moves every running member`,
    );
  const unknown = h.members.filter((m) => m.serverVersionNum === null);
  if (unknown.length)
    return refuse(
      'not-applicable',
      `${unknown.map((m) => m.label).join(', ')}: its version is not known yet (never observed); refresh it first`,
    );
  const majors = new Set(h.members.map((m) => Math.floor((m.serverVersionNum ?? 0) / 10000)));
  if (majors.size !== 1) return refuse('topology', `the herd's members run different majors (${[...majors].join(', ')})`);
  return { old, major: [...majors][0] as number };
}

/** The release asked for, of the herd's major; left out, the newest of it on every member's host; or why none. */
function targetRelease(h: HerdRef, params: z.output<typeof upgradeMinorParams>, p: UpgradePrepared, major: number): number | Refusal {
  if (params.toVersion) {
    const n = versionNum(params.toVersion);
    if (n === null) return refuse('not-applicable', `${params.toVersion} is not a release such as 15.18`);
    if (Math.floor(n / 10000) !== major)
      return refuse(
        'not-applicable',
        `${params.toVersion} is another major than the herd's ${major}: a major upgrade is a blue/green upgrade (a new herd on ${Math.floor(n / 10000)}, logical replication, a cut-over), not a restart on other binaries`,
      );
    return n;
  }
  const newest = newestEverywhere(
    p.builds,
    h.members.map((m) => m.serverId),
    major,
  );
  if (newest === null)
    return refuse('not-applicable', `no build of ${major} is reported on every member's host (the agents report the builds installed)`);
  return newest;
}

/** Each member's build of the target release, as its host reports it; or the hosts that have none. */
function targetBuilds(h: HerdRef, p: UpgradePrepared, target: number): ((m: InstanceRef) => Build) | Refusal {
  const buildOf = new Map<number, Build>();
  const missing: string[] = [];
  for (const m of h.members) {
    const b = (p.builds.get(m.serverId) ?? []).find((x) => x.versionNum === target);
    if (b) buildOf.set(m.id, b);
    else {
      const has = (p.builds.get(m.serverId) ?? []).map((x) => versionText(x.versionNum));
      missing.push(`${m.hostname} (its agent reports ${has.length ? has.join(', ') : 'no build'})`);
    }
  }
  if (missing.length) return refuse('not-applicable', `no ${versionText(target)} build on ${missing.join('; ')}: install it there first`);
  return (m: InstanceRef): Build => {
    const b = buildOf.get(m.id);
    if (!b) throw new Error(`upgrade-minor: no build found for ${m.label} after every member was checked`);
    return b;
  };
}

// What a member runs now: its build's version as its host reports it (the inventory's reading may be older).
const runsNow = (p: UpgradePrepared, m: InstanceRef) => ({
  binDir: binsOf(m),
  num: (p.builds.get(m.serverId) ?? []).find((b) => b.binDir === binsOf(m))?.versionNum ?? m.serverVersionNum ?? 0,
});

/** The members as they run once the moves so far are done: a moved member on its new build. */
const asNow = (z: MinorUpgrade, ms: InstanceRef[]) =>
  ms.map((m) => (z.moved.has(m.id) ? { ...m, binDir: z.buildFor(m).binDir, serverVersionNum: z.target } : m));

/** A member's part of the state, made when first asked for. */
function memberState(s: UpgradeState, m: InstanceRef): MemberState {
  let r = s.members.get(m.id);
  if (!r) s.members.set(m.id, (r = { rolledBack: false }));
  return r;
}

/** One member moved onto its build of the target, as a part: its steps named for it, on its own state. */
function memberPart(z: MinorUpgrade, m: InstanceRef, members: InstanceRef[]): Part<UpgradeState> | Refusal {
  z.moved.add(m.id);
  const steps = memberSteps(z.h, members, { t: m, from: runsNow(z.p, m), to: z.buildFor(m), maxLag: z.maxLag, gateMs: z.gateMs });
  if (steps instanceof Refusal) return refuse(steps.code, `${m.label}: ${steps.reason}`);
  return {
    order: `${m.label} onto ${z.wanted}`,
    steps: (settles) =>
      part<MemberState, UpgradeState>(
        steps,
        (s) => memberState(s, m),
        (n) => `${m.hostname}: ${n}`,
        settles,
      ),
  };
}

/** A switchover's steps as a part, on its part of the state, named with `prefix`. */
function switchoverPart(
  steps: ActionStep<SwitchoverState>[],
  pick: (s: UpgradeState) => SwitchoverState,
  prefix: string,
  order: string,
): Part<UpgradeState> {
  return {
    order,
    steps: (settles) => part<SwitchoverState, UpgradeState>(steps, pick, (n) => `${prefix}: ${n}`, settles),
  };
}

/** The old primary's turn: a switchover to `cand`, its move as a replica, and the switch back when asked for; or why not. */
function oldPrimaryParts(
  z: MinorUpgrade,
  old: InstanceRef,
  cand: InstanceRef,
  switchBack: boolean | undefined,
): Part<UpgradeState>[] | Refusal {
  const { h } = z;
  const over = planSwitchoverOf({ ...h, members: asNow(z, h.members) }, { candidateInstanceId: cand.id });
  if (over instanceof Refusal) return refuse(over.code, `${cand.label}: ${over.reason}`);
  if (over.refused) return refuse(over.refused.code, `${cand.label}: ${over.refused.reason}`);
  const after = membersAfterSwitchover(h, old, cand);
  const oldMove = memberPart(z, asReplicaOf(old, cand), after);
  if (oldMove instanceof Refusal) return oldMove;
  const parts = [switchoverPart(over.steps, (s) => s.over, 'switchover', `switch over to ${cand.label}`), oldMove];
  if (!switchBack) return parts;
  const back = planSwitchoverOf({ ...h, members: asNow(z, after) }, { candidateInstanceId: old.id });
  if (back instanceof Refusal) return refuse(back.code, `${old.label}: ${back.reason}`);
  return [...parts, switchoverPart(back.steps, (s) => s.back, 'switch back', `switch back to ${old.label}`)];
}

/** Every member seen again: what each runs, and whether all run the target release. */
function upgradedStep({ h, target, wanted }: MinorUpgrade, primaryAtEnd: InstanceRef): ActionStep<UpgradeState> {
  return {
    name: 'the herd upgraded',
    does: { kind: 'herd.report-upgraded', toVersionNum: target, primary: primaryAtEnd.id },
    says: `what each member runs now; ${primaryAtEnd.label} is the primary`,
    timeoutMs: 30_000,
    settles: true,
    run: async (x) => {
      const seen = await Promise.all(h.members.map(async (m) => [m, await observe(m, 3000)] as const));
      const text = seen
        .map(([m, o]) => `${m.hostname}: ${o.reachable ? versionText(o.serverVersionNum ?? 0) : `not answering (${o.error ?? '?'})`}`)
        .join(', ');
      x.deps.outcome?.(`${wanted}: ${text}`);
      x.note({ stdout: `${text}; ${primaryAtEnd.label} is the primary` });
      const behind = seen.filter(([, o]) => o.serverVersionNum !== target);
      if (behind.length) throw new Error(`${behind.map(([m]) => m.label).join(', ')} does not run ${wanted}`);
    },
  };
}

/** The confirmation page's facts: the order, each member's build before and after, the gate, the way back. */
function upgradeFacts({ h, done, wanted, buildFor, maxLag, gateMs }: MinorUpgrade, order: string[]): Fact[] {
  return [
    { label: 'In order', value: order.join('; then ') },
    ...h.members.map((m) => ({
      label: `${m.hostname} (${m.role})`,
      value: done(m)
        ? `runs ${wanted} already (${binsOf(m)}): left as it is`
        : `${versionText(m.serverVersionNum ?? 0)} (${binsOf(m)}) to ${wanted} (${buildFor(m).binDir})`,
    })),
    { label: 'Gate for each member', value: `answers as ${wanted}, streams with replay lag under ${maxLag} s, within ${gateMs / 1000} s` },
    { label: 'If a gate fails', value: 'that member is started on the build it ran before, streams again, and the upgrade stops' },
    { label: 'Committed transactions lost', value: 'none: the switchover promotes a replica only once it has replayed all' },
    { label: 'The way back', value: 'the same action with the release the herd runs now' },
  ];
}

/** Production; the clients' connections at the switchover (none when the primary stays as it is); a downgrade. */
function upgradeWarnings({ h, done, target, wanted }: MinorUpgrade, old: InstanceRef) {
  const downgrade = h.members.some((m) => (m.serverVersionNum ?? 0) > target);
  return [
    ...productionWarning(h),
    ...(done(old)
      ? []
      : [
          h.poolers.length
            ? 'writes through PgBouncer wait during the switchover (about a second); direct connections to the primary are closed'
            : 'clients connected to the primary lose their connections at the switchover; the herd has no PgBouncer to hold them',
        ]),
    ...(downgrade ? [`back to an earlier release (${wanted}): read its release notes for anything a downgrade must undo`] : []),
  ];
}

export const upgradeMinorAction = defineHerdAction({
  name: 'upgrade-minor',
  control: asks('upgrade-minor'),
  label: 'Upgrade to another minor release',
  permission: 'admin',
  dangerous: true,
  runsAsConfirmed: true,
  params: {
    schema: upgradeMinorParams,
    fields: [
      {
        name: 'toVersion',
        label: 'Release',
        kind: 'text',
        emptyLabel: "the newest of the herd's major on every member's host",
        help: 'A release of the same major, such as 15.18; an earlier one is the way back.',
      },
      {
        name: 'candidateInstanceId',
        label: 'New primary',
        kind: 'herd-member',
        emptyLabel: 'the most up-to-date replica',
        help: 'The replica the herd switches over to once the replicas are upgraded.',
      },
      {
        name: 'switchBack',
        label: 'Switch back at the end',
        kind: 'flag',
        emptyLabel: 'the upgraded replica stays the primary',
        help: 'A second switchover, once the old primary is upgraded, makes it the primary again.',
      },
      {
        name: 'maxLagSeconds',
        label: 'Lag bound (s)',
        kind: 'text',
        emptyLabel: String(DEFAULT_MAX_LAG_SECONDS),
        help: 'A member passes its gate with replay lag under this.',
      },
      {
        name: 'gateSeconds',
        label: 'Gate within (s)',
        kind: 'text',
        emptyLabel: String(DEFAULT_GATE_SECONDS),
        help: 'How long a member on the new build may take to pass its gate before it is put back.',
      },
    ],
  },
  prepare: (herds, _params, db): Promise<UpgradePrepared> => prepareUpgrade(db, herds),
  plan: (h, { params, prepared }) => planUpgrade(h, params, prepared),
});
