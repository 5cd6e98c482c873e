// An RDS herd's settings: its DB parameter group, changed through the RDS API (ModifyDBParameterGroup),
// a dynamic parameter applied at once and a static one at the member's next reboot (RebootDBInstance),
// as RDS does. RDS gives no ALTER SYSTEM to its master user and no file: the group is the one place.
import { rdsClient } from '@/lib/adapters/aws/config';
import { describeRds, modifyRdsParameterGroup, rdsWaitBounds, rebootRds, type RdsParameterChange } from '@/lib/adapters/aws/rds';
import type { ActionStep } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { recheckRdsIdentity } from '@/lib/fleet/cloud/rds-identity';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { withInstance } from '@/lib/fleet/pg-access';
import { refuse } from '@/lib/fleet/refusal';
import type { ParameterPlane } from '../parameters';
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

/** The DB parameter groups of `members`, read from RDS now; throws (nothing changed) when one cannot be changed. */
async function groupsOf(members: InstanceRef[], signal: AbortSignal): Promise<string[]> {
  const groups = new Map<string, string[]>();
  for (const m of members) {
    if (!m.rds) throw refuse('not-applicable', `${m.label} is not an RDS DB instance; nothing was changed`);
    const live = await describeRds(rdsClient(m.rds.region), m.rds.region, m.rds.identifier, signal);
    if (!live) throw refuse('cloud', `RDS does not know ${m.rds.identifier} in ${m.rds.region}; nothing was changed`);
    if (!live.parameterGroup) throw refuse('cloud', `RDS names no DB parameter group for ${m.rds.identifier}; nothing was changed`);
    groups.set(live.parameterGroup, [...(groups.get(live.parameterGroup) ?? []), m.rds.identifier]);
  }
  const defaults = [...groups].filter(([g]) => g.startsWith('default.'));
  if (defaults.length)
    throw refuse(
      'not-applicable',
      `${defaults.map(([g, ids]) => `${ids.join(', ')} use${ids.length === 1 ? 's' : ''} ${g}`).join('; ')}: RDS's default parameter groups cannot be changed; give the herd's members a group of its own (ModifyDBInstance --db-parameter-group-name), then apply the settings; nothing was changed`,
    );
  return [...groups.keys()];
}

/** Each setting with when RDS applies it: a setting Postgres reads only at start (context postmaster) at the reboot. */
async function applyMethods(primary: InstanceRef, set: Record<string, string>): Promise<RdsParameterChange[]> {
  const names = Object.keys(set);
  const contexts = await withInstance(
    primary,
    { database: 'postgres', connectionTimeoutMillis: 5000 },
    async (c) =>
      new Map(
        (
          await c.query<{ name: string; context: string }>('SELECT name, context FROM pg_settings WHERE name = ANY($1::text[])', [names])
        ).rows.map((r) => [r.name, r.context] as const),
      ),
  );
  return names.map((name) => ({
    name,
    value: set[name] ?? '',
    applyMethod: contexts.get(name) === 'postmaster' ? ('pending-reboot' as const) : ('immediate' as const),
  }));
}

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
  writeHerd: (primary, set, members) => ({
    name: 'change the DB parameter group',
    does: { kind: 'settings.rds-parameter-group', members: members.map(memberArg), set },
    says: `ModifyDBParameterGroup on the DB parameter group of ${members.map((m) => m.label).join(', ')}: ${Object.entries(set)
      .map(([k, v]) => `${k} = ${v}`)
      .join(', ')} (a static parameter applied at the member's reboot)`,
    write: async (x) => {
      const groups = await groupsOf(members, x.signal);
      const changes = await applyMethods(primary, set);
      const region = primary.rds?.region ?? '';
      for (const g of groups) {
        x.note({ command: `ModifyDBParameterGroup ${g} ${changes.map((c) => `${c.name}=${c.value} (${c.applyMethod})`).join(', ')}` });
        await modifyRdsParameterGroup(rdsClient(region), g, changes, x.signal);
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
