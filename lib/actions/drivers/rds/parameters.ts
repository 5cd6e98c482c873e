// An RDS herd's settings: its DB parameter group, changed through the RDS API (ModifyDBParameterGroup),
// a dynamic parameter applied at once and a static one at the member's next reboot (RebootDBInstance),
// as RDS does. RDS gives no ALTER SYSTEM to its master user and no file: the group is the one place.
import { rdsClient } from '@/lib/adapters/aws/config';
import {
  describeRdsParameters,
  describeRdsPostgres,
  modifyRdsParameterGroup,
  rdsWaitBounds,
  rebootRds,
  type RdsInstance,
  type RdsParameterChange,
} from '@/lib/adapters/aws/rds';
import { errorText } from '@/lib/engine/errors';
import type { ActionStep } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { recheckRdsIdentity } from '@/lib/fleet/cloud/rds-identity';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import type { HerdChange, ParameterPlane } from '../parameters';
import { waitRdsNoted } from './steps';

/** What RDS sets itself or refuses to let a parameter group change (its docs: the parameters RDS manages). */
const RDS_KEEPS = new Set([
  'archive_command',
  'archive_mode',
  'config_file',
  'data_directory',
  'hba_file',
  'ident_file',
  'listen_addresses',
  'port',
  'ssl_ca_file',
  'ssl_cert_file',
  'ssl_key_file',
  'unix_socket_directories',
  'wal_level',
]);

/** The DB parameter groups of `members` (one region) as RDS has them now, each with the members that use it. */
interface GroupsRead {
  groups: Map<string, RdsInstance[]>;
  /** Why a change of them is refused (nothing changed), or null. */
  refused: string | null;
}

/**
 * Reads the groups `members` use from RDS now. A change is refused: for a member RDS does not know or
 * that names no group; for one of RDS's default groups; and for a group another DB instance uses too (a
 * change of it would reach that instance, whatever its herd or environment).
 */
async function readGroups(members: InstanceRef[], region: string): Promise<GroupsRead> {
  const everyone = await describeRdsPostgres(rdsClient(region), region);
  const ours = new Set(members.map((m) => m.rds?.identifier ?? ''));
  const groups = new Map<string, RdsInstance[]>();
  for (const m of members) {
    const live = everyone.find((i) => i.identifier === m.rds?.identifier);
    if (!live) return { groups, refused: `RDS does not know ${m.rds?.identifier ?? m.label} in ${region}` };
    if (!live.parameterGroup) return { groups, refused: `RDS names no DB parameter group for ${live.identifier}` };
    groups.set(live.parameterGroup, [...(groups.get(live.parameterGroup) ?? []), live]);
  }
  const defaults = [...groups].filter(([g]) => g.startsWith('default.'));
  if (defaults.length) {
    const who = defaults.map(([g, used]) => `${used.map((i) => i.identifier).join(', ')} use${used.length === 1 ? 's' : ''} ${g}`);
    return {
      groups,
      refused: `${who.join('; ')}: RDS's default parameter groups cannot be changed; give the herd's members a group of its own (ModifyDBInstance --db-parameter-group-name), then apply the settings`,
    };
  }
  const shared = [...groups.keys()].flatMap((g) => {
    const others = everyone.filter((i) => i.parameterGroup === g && !ours.has(i.identifier)).map((i) => i.identifier);
    return others.length ? [`${g} is also the group of ${others.join(', ')}`] : [];
  });
  if (shared.length)
    return {
      groups,
      refused: `${shared.join('; ')}: a change of it would reach ${shared.length === 1 ? 'them' : 'those'} too, outside this herd; give the herd a group of its own`,
    };
  return { groups, refused: null };
}

/** The one region of `members`, or why there is none. */
function regionOf(members: InstanceRef[]): string | Refusal {
  const regions = [...new Set(members.map((m) => m.rds?.region ?? ''))];
  const [region] = regions;
  if (regions.length !== 1 || !region)
    return refuse(
      'not-applicable',
      `the herd's members are in ${regions.join(', ') || 'no region'}: one DB parameter group change is one region's`,
    );
  return region;
}

/** The groups a step changes, read again as it runs: throws, nothing changed, when a change of them is refused. */
async function groupsOf(members: InstanceRef[], region: string, signal: AbortSignal): Promise<string[]> {
  const read = await readGroups(members, region);
  if (signal.aborted) throw new Error('stopped before the DB parameter group was changed');
  if (read.refused) throw refuse(read.refused.startsWith('RDS ') ? 'cloud' : 'not-applicable', `${read.refused}; nothing was changed`);
  return [...read.groups.keys()];
}

/** What a member's ParameterApplyStatus says, in words. */
const applyStatusWords = (i: RdsInstance) =>
  i.parameterApplyStatus === 'in-sync'
    ? 'runs what the group holds'
    : i.parameterApplyStatus === 'pending-reboot'
      ? 'a value of the group waits for its reboot'
      : i.parameterApplyStatus || 'RDS says nothing of it';

/**
 * A value as an RDS parameter group takes it: a number in the setting's own unit (pg_settings' value:
 * 6144 for work_mem of 6MB), a boolean as 1 or 0, anything else as written.
 */
const rdsValue = (c: HerdChange, v: string): string =>
  c.vartype === 'bool' ? (v === 'on' ? '1' : '0') : c.vartype === 'integer' || c.vartype === 'real' ? v : v === c.to ? c.write : v;

/** Each change with when RDS applies it: a setting Postgres reads only at start at the member's reboot. */
const rdsChanges = (changes: HerdChange[], to: 'to' | 'from'): RdsParameterChange[] =>
  changes.map((c) => ({
    name: c.name,
    value: rdsValue(c, c[to]),
    applyMethod: c.restart ? ('pending-reboot' as const) : ('immediate' as const),
  }));

export const rdsParameters: ParameterPlane = {
  runBy: "RDS: pgherd changes the herd's DB parameter group and asks RDS to reboot a member for a static parameter",
  scope: 'herd',
  keeps: { names: RDS_KEEPS, says: 'RDS manages it itself: a DB parameter group cannot change it' },
  oneConfig: "RDS keeps an instance's settings in its DB parameter group, which the herd's members share",
  primaryInPlace: 'RDS has no switchover within a herd: a static parameter reaches the primary at its reboot',
  noShell: 'RDS gives none: it checks each value as ModifyDBParameterGroup takes it, and refuses the whole call for one it does not take',
  unready: (members) => {
    const other = members.filter((m) => !m.rds);
    return other.length
      ? `${other.map((m) => m.label).join(', ')}: no RDS identity (run discovery): pgherd changes an RDS herd's settings through RDS`
      : null;
  },
  pendsOutside: 'RDS keeps a static value in the group until the member reboots',
  whereWritten: async (members) => {
    const region = regionOf(members);
    if (region instanceof Refusal) return { refused: region.reason };
    const read = await readGroups(members, region);
    if (read.refused) return { refused: read.refused };
    const parameters = new Map(
      await Promise.all([...read.groups.keys()].map(async (g) => [g, await describeRdsParameters(rdsClient(region), g)] as const)),
    );
    // What the groups hold (one group, as a herd's members share one; several: the first's value of each).
    const held: Record<string, string> = {};
    for (const ps of parameters.values()) for (const x of ps) held[x.name] ??= x.value;
    return {
      held,
      facts: [...read.groups].map(([g, used]) => ({
        label: `DB parameter group ${g}`,
        value: `used by ${used.map((i) => `${i.identifier} (${applyStatusWords(i)})`).join(', ')} and no other DB instance of ${region}; ${String(parameters.get(g)?.length ?? 0)} parameter(s) set in it now; read again when the step runs`,
      })),
    };
  },
  writeHerd: (primary, changes, members) => ({
    name: 'change the DB parameter group',
    does: {
      kind: 'settings.rds-parameter-group',
      members: members.map(memberArg),
      set: Object.fromEntries(changes.map((c) => [c.name, c.to])),
    },
    says: `ModifyDBParameterGroup on the DB parameter group of ${members.map((m) => m.label).join(', ')} (refused, nothing changed, when it is one of RDS's default groups or another DB instance's too): ${changes
      .map((c) => `${c.name} = ${c.write}${c.restart ? ' (at the reboot)' : ''}`)
      .join(', ')}; should RDS refuse part of it, what was taken is put back`,
    write: async (x) => {
      const region = regionOf(members);
      if (region instanceof Refusal) throw refuse(region.code, `${region.reason}; nothing was changed`);
      for (const m of members) {
        const r = m.rds;
        if (!r) throw refuse('not-applicable', `${m.label} is not an RDS DB instance; nothing was changed`);
        const notOurs = await recheckRdsIdentity(x.deps.db, m.serverId, r.region, r.identifier);
        if (notOurs) throw refuse('cloud', `${notOurs}; nothing was asked of RDS`);
      }
      const groups = await groupsOf(members, region, x.signal);
      const client = rdsClient(region);
      const done: string[] = [];
      try {
        for (const g of groups) {
          const want = rdsChanges(changes, 'to');
          x.note({ command: `ModifyDBParameterGroup ${g} ${want.map((c) => `${c.name}=${c.value} (${c.applyMethod})`).join(', ')}` });
          await modifyRdsParameterGroup(client, g, want, x.signal);
          done.push(g);
        }
      } catch (err) {
        // Part of it taken (a later call of 20, a later group): each group touched is given what ran before.
        const back: string[] = [];
        for (const g of [...done, ...groups.filter((g) => !done.includes(g)).slice(0, 1)])
          await modifyRdsParameterGroup(client, g, rdsChanges(changes, 'from')).then(
            () => back.push(g),
            () => undefined,
          );
        throw new Error(
          `RDS refused the change (${errorText(err)}); ${back.length ? `${back.join(', ')} given back the values that ran before` : 'nothing was taken'}`,
        );
      }
    },
  }),
  restart: <S>(m: InstanceRef): ActionStep<S> => {
    const bounds = rdsWaitBounds();
    return {
      name: `${m.label}: RDS reboot`,
      does: { kind: 'rds.reboot', identifier: m.rds?.identifier ?? '', region: m.rds?.region ?? '', failover: false },
      says: `ask RDS to reboot ${m.rds?.identifier ?? m.label} (its static parameters are applied then) and wait until it says available again (at most ${bounds.maxWaitSeconds} s)`,
      timeoutMs: (bounds.maxWaitSeconds + 30) * 1000,
      run: async (x) => {
        const r = m.rds;
        if (!r) throw refuse('not-applicable', `${m.label} is not an RDS DB instance`);
        const notOurs = await recheckRdsIdentity(x.deps.db, m.serverId, r.region, r.identifier);
        if (notOurs) throw refuse('cloud', `${notOurs}; nothing was asked of RDS`);
        await rebootRds(rdsClient(r.region), r.identifier, false, x.signal);
        await waitRdsNoted(
          x,
          r.region,
          r.identifier,
          'available again',
          (i, seen) => i.status === 'available' && seen.some((st) => st !== 'available'),
          bounds,
        );
      },
    };
  },
};
