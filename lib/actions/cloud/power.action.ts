// Power off and power on an instance's machine, asked of its herd's driver: pg_ctl's through its EC2
// host (Postgres stopped cleanly first, then EC2 stop; EC2 start, then Postgres up and streaming),
// RDS's through StopDBInstance and StartDBInstance. Every wait bounded. The building block schedules
// use to park dev fleets at night. A primary is warned about, as stop warns, not refused.
import { asks, driverOf, lacking, type PowerState } from '@/lib/actions/drivers';
import { prepareCloud } from '@/lib/actions/drivers/cloud-prepare';
import { defineAction } from '@/lib/engine/define-action';
import { mayComeUpAsPrimary, stoppedPrimaryNotOlder } from '@/lib/fleet/herd-primary';
import { Refusal, refuse } from '@/lib/fleet/refusal';

export const powerOffAction = defineAction({
  name: 'power-off',
  control: asks('power'),
  label: 'Power off (EC2 or RDS)',
  permission: 'operator',
  dangerous: true,
  runsAsConfirmed: true,
  prepare: (targets, _params, db) => prepareCloud(targets, db, null),
  state: (): PowerState => ({ wasUp: false }),
  plan: (t, { members, params, prepared }) => {
    const d = driverOf(t);
    if (d instanceof Refusal) return d;
    return d.powerOff ? d.powerOff(t, { members, params, prepared }) : lacking(d, 'power');
  },
});

export const powerOnAction = defineAction({
  name: 'power-on',
  control: asks('power'),
  label: 'Power on (EC2 or RDS)',
  permission: 'operator',
  dangerous: false,
  runsAsConfirmed: true,
  prepare: (targets, _params, db) => prepareCloud(targets, db, null),
  plan: (t, { members, params, prepared }) => {
    // A host's boot starts its Postgres (and "Postgres up" would): an old primary would come up as a second one.
    if (t.state === 'fenced' || t.state === 'needs_rebuild')
      return refuse(
        'not-applicable',
        `${t.label} is ${t.state === 'fenced' ? 'fenced after a failover' : 'to be rebuilt'}: powered on, its host would start it as a primary beside the herd's. Make sure its Postgres does not start at boot, start the host outside pgherd, then rebuild it`,
      );
    // Whether it may boot as a primary goes by what it last said of itself, never by an edited role.
    const mayBePrimary = mayComeUpAsPrimary(t);
    // Another member is or may be the primary: running or silent and called or last seen one, or
    // stopped having last said primary on a timeline no older than this one's (a promote while this
    // one was off: that member, not this one, has the herd's latest writes).
    const others = members.filter(
      (m) =>
        m.id !== t.id &&
        (((m.role === 'primary' || m.observedRole === 'primary') && (m.state === 'running' || m.state === 'unreachable')) ||
          (m.state === 'stopped' && stoppedPrimaryNotOlder(m, t))),
    );
    if (mayBePrimary && others.length)
      return refuse(
        'split-brain',
        `${t.label} last answered as ${t.observedRole ?? 'nothing yet'} (timeline ${t.timeline ?? 'unknown'}), so its host may boot it as a primary, and ${others.map((m) => `${m.label} (${m.state}${m.state === 'stopped' ? `, last a primary on timeline ${m.timeline ?? 'unknown'}` : ''})`).join(', ')} is or may be the herd's primary: powered on, it could be a second one. Power that one on instead, and rebuild this one as a replica once its host is up`,
      );
    const d = driverOf(t);
    if (d instanceof Refusal) return d;
    return d.powerOn ? d.powerOn(t, { members, params, prepared }) : lacking(d, 'power');
  },
});
