// What Apply settings will change on each member of a herd, and what it refuses: pure, from what the
// settings pass read last (the first step reads every member again and stops if that moved).
//
// Refused, for the whole herd, before anything is written:
// - a setting that is not a tunable (lib/fleet/settings/tunables.ts: one that runs a command, loads code,
//   names a file), however it came to be stored;
// - a setting this Postgres does not have, a value it would not take (type, unit, bounds, choices), a
//   formula that cannot be computed on the member's host, a setting no one may change (context internal);
// - a replica whose max_connections, max_worker_processes, max_wal_senders, max_prepared_transactions or
//   max_locks_per_transaction would be below its primary's: a hot standby does not start (or stops
//   replaying) below the values its primary's WAL records;
// - the same during the roll: replicas restart first, while the primary still runs its value, so a
//   value lowered below what the primary runs is refused unless the primary restarts first, in place;
// - where the herd's driver keeps one configuration for all (Patroni), members that should run different
//   values; and a setting the driver sets itself.
import type { SettingReading } from '@/db/schema';
import { driftOf } from '@/lib/fleet/settings/drift';
import type { SettingMeta } from '@/lib/fleet/settings/values';
import { notTunable } from '@/lib/fleet/settings/tunables';
import type { WantedSetting } from '@/lib/fleet/settings/wanted';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

/** The settings a hot standby needs at least its primary's value of (Postgres's CheckRequiredParameterValues). */
export const AT_LEAST_PRIMARY = [
  'max_connections',
  'max_worker_processes',
  'max_wal_senders',
  'max_prepared_transactions',
  'max_locks_per_transaction',
] as const;

export interface MemberSettings {
  wanted: Map<string, WantedSetting>;
  /** The last reading (null: never read). */
  running: Record<string, SettingReading> | null;
  catalog: Map<string, SettingMeta>;
}

export interface SettingChange {
  name: string;
  /** As pg_settings shows it now and after. */
  from: string;
  to: string;
  /** What is written (ALTER SYSTEM, Patroni's configuration): the group's value, its formulas computed ('32MB'). */
  write: string;
  /** In words, with units: "128MB -> 1GB". */
  words: string;
  /** postmaster: only a restart applies it. */
  restart: boolean;
  /** pg_settings' type: how a value running is compared with it. */
  vartype: string;
}

export interface MemberChanges {
  member: InstanceRef;
  changes: SettingChange[];
  /** Whether it must restart (a change of a postmaster setting, or one written before that waits for a restart). */
  restart: boolean;
}

export type ApplyPlan =
  { ok: true; members: MemberChanges[]; primary: InstanceRef; lowering: string[] } | { ok: false; problems: string[] };

const num = (v: string | undefined) => (v === undefined ? NaN : Number(v));

/**
 * What Apply settings changes on each member, or every problem that refuses it: the herd first (every member
 * running, one primary), then each member's changes, then what the herd as a whole must keep (a hot standby's
 * floor, the settings the control plane keeps, one configuration for all).
 */
export function planChanges(
  members: InstanceRef[],
  settings: Map<number, MemberSettings>,
  /** keeps: settings the control plane sets itself (refused, in its words); oneConfig: every member must run the same values (why). */
  opts: { primaryFirst: boolean; keeps?: { names: ReadonlySet<string>; says: string }; oneConfig?: string },
): ApplyPlan {
  const problems = herdProblems(members);
  if (problems.length) return { ok: false, problems };
  const primary = members.filter((m) => m.role === 'primary')[0] as InstanceRef;

  const out: MemberChanges[] = [];
  for (const m of members) {
    const one = memberChanges(m, settings.get(m.id));
    problems.push(...one.problems);
    if (one.changes) out.push(one.changes);
  }
  if (problems.length) return { ok: false, problems };

  // A hot standby's floor: its primary's value, after the change and during the roll.
  const floor = floorProblems(out, settings, primary, opts.primaryFirst);
  problems.push(...floor.problems, ...keptProblems(out, opts.keeps), ...oneConfigProblems(out, opts.oneConfig));
  if (problems.length) return { ok: false, problems };
  return { ok: true, members: out, primary, lowering: [...new Set(floor.lowering)] };
}

/** Why the herd cannot be judged at all: a member that does not run, not exactly one primary. */
function herdProblems(members: InstanceRef[]): string[] {
  const problems: string[] = [];
  const down = members.filter((m) => m.state !== 'running');
  if (down.length)
    problems.push(
      `${down.map((m) => `${m.label} is ${m.state}`).join('; ')}: every member must run (start it, or take it out of the herd)`,
    );
  const primaries = members.filter((m) => m.role === 'primary');
  if (primaries.length !== 1) problems.push(`the herd has ${primaries.length} primaries: it needs one to judge its replicas against`);
  return problems;
}

/** One member's changes, from its drift between what its groups say and what it runs; and what refuses them. */
function memberChanges(m: InstanceRef, s: MemberSettings | undefined): { changes: MemberChanges | null; problems: string[] } {
  if (!s?.running)
    return {
      changes: null,
      problems: [`${m.label}: its settings have not been read yet (the settings pass reads them within a minute of the refresh seeing it)`],
    };
  const problems: string[] = [];
  const changes: SettingChange[] = [];
  for (const d of driftOf(s.wanted, s.running, s.catalog)) {
    // Checked here again, whatever the groups' saves said: a stored row may predate the list.
    const refused = notTunable(d.name);
    if (refused) {
      problems.push(`${m.label}: ${refused}`);
      continue;
    }
    if (d.kind === 'unknown-setting' || d.kind === 'invalid' || d.kind === 'unresolved') {
      problems.push(`${m.label}: ${d.name}: ${d.why ?? d.kind}`);
      continue;
    }
    const meta = s.catalog.get(d.name);
    if (meta?.context === 'internal') {
      problems.push(`${m.label}: ${d.name} is fixed when Postgres is built or initialised: no setting changes it`);
      continue;
    }
    if (d.wanted === null || d.running === null) continue;
    changes.push({
      name: d.name,
      from: d.running,
      to: d.wanted,
      write: d.resolved ?? d.wanted,
      words: `${d.runningShown ?? d.running} -> ${d.wantedShown ?? d.wanted}${d.kind === 'pending-restart' ? ' (waits for a restart)' : ''}`,
      restart: meta?.context === 'postmaster' || d.kind === 'pending-restart',
      vartype: meta?.vartype ?? 'string',
    });
  }
  // A setting written before (by hand, or an apply cut short) that waits for a restart: the restart is owed
  // too. One the groups do not say applies a value pgherd cannot see (pg_settings shows the running one).
  const pending = Object.entries(s.running)
    .filter(([, r]) => r.p)
    .map(([n]) => n);
  const unseen = pending.filter((n) => !changes.some((c) => c.name === n));
  if (unseen.length)
    problems.push(
      `${m.label}: ${unseen.join(', ')} written and waiting for a restart, not by its groups: a restart would apply a value pgherd cannot see (put it in a group, or RESET it)`,
    );
  return { changes: { member: m, changes, restart: changes.some((c) => c.restart) || pending.length > 0 }, problems };
}

/**
 * A hot standby's floor: no replica below the primary once the apply is done, nor during the roll (replicas
 * restart first, while the primary still runs its value) unless the primary restarts first; what that lowers.
 */
function floorProblems(
  out: MemberChanges[],
  settings: Map<number, MemberSettings>,
  primary: InstanceRef,
  primaryFirst: boolean,
): { problems: string[]; lowering: string[] } {
  const p = out.find((x) => x.member.id === primary.id) as MemberChanges;
  const problems = belowThePrimary(out, settings, primary.id);
  const lowering: string[] = [];
  for (const name of AT_LEAST_PRIMARY) {
    const pNow = valueOf(settings, p, name, false);
    const pAfter = valueOf(settings, p, name, true);
    for (const r of out.filter((x) => x.member.role === 'replica')) {
      const rAfter = valueOf(settings, r, name, true);
      if (rAfter < pAfter) continue; // said above
      if (rAfter < pNow && !primaryFirst)
        problems.push(
          `${r.member.label}: ${name} lowered to ${rAfter} while the primary runs ${pNow}: restarted first, as replicas are, it would not start. Tick "restart the primary first" (its writes stop while it restarts), or lower it in two applies`,
        );
      else if (rAfter < pNow) lowering.push(`${name} ${pNow} -> ${pAfter}`);
    }
  }
  return { problems, lowering };
}

/** A change of a setting the control plane sets itself: refused, in its words. */
function keptProblems(out: MemberChanges[], keeps: { names: ReadonlySet<string>; says: string } | undefined): string[] {
  const problems: string[] = [];
  if (keeps)
    for (const mc of out)
      for (const c of mc.changes) if (keeps.names.has(c.name)) problems.push(`${mc.member.label}: ${c.name}: ${keeps.says}`);
  return problems;
}

/** Where the driver keeps one configuration for every member (`oneConfig`, why): the members whose changes differ. */
function oneConfigProblems(out: MemberChanges[], oneConfig: string | undefined): string[] {
  if (!oneConfig) return [];
  // One configuration for every member: the same changes everywhere.
  const key = (mc: MemberChanges) => JSON.stringify(mc.changes.map((c) => [c.name, c.to]));
  const first = out[0];
  const differing = out.filter((mc) => first && key(mc) !== key(first));
  return differing.length
    ? [
        `${oneConfig}, and these members should run other values: ${differing.map((d) => d.member.label).join(', ')} (give the herd one group, no instance groups)`,
      ]
    : [];
}

const valueOf = (settings: Map<number, MemberSettings>, mc: MemberChanges, name: string, after: boolean) => {
  const c = after ? mc.changes.find((x) => x.name === name) : undefined;
  return num(c ? c.to : settings.get(mc.member.id)?.running?.[name]?.v);
};

/**
 * Every member that will be a replica, against the member that will be the primary once the apply is done
 * (after its switchover, the replica it promotes): none below it in a setting a hot standby needs.
 */
export function belowThePrimary(members: MemberChanges[], settings: Map<number, MemberSettings>, primaryId: number): string[] {
  const p = members.find((x) => x.member.id === primaryId);
  if (!p) return [];
  const out: string[] = [];
  for (const name of AT_LEAST_PRIMARY) {
    const pAfter = valueOf(settings, p, name, true);
    for (const r of members.filter((x) => x.member.id !== primaryId)) {
      const rAfter = valueOf(settings, r, name, true);
      if (rAfter < pAfter)
        out.push(
          `${r.member.label}: ${name} would be ${rAfter}, below its primary's ${pAfter}${primaryId === p.member.id && p.member.role !== 'primary' ? ` (${p.member.label}, once the switchover has made it the primary)` : ''}: a hot standby does not start below its primary's value (give the replica at least the primary's)`,
        );
    }
  }
  return out;
}

/** A member's changes in words, for the plan's facts. */
export const changeWords = (mc: MemberChanges) =>
  mc.changes.length
    ? mc.changes.map((c) => `${c.name} ${c.words}${c.restart ? ' [restart]' : ''}`).join(', ')
    : mc.restart
      ? 'nothing to write; a restart is owed (a setting waits for it)'
      : 'nothing to change';
