// The driver of herds pgherd runs itself, over SSH: pg_ctl (or Debian's pg_ctlcluster) on each member's
// host, the data directory and pg_hba/postgresql.conf as files, EC2 for the machine under it.
import { refuse } from '@/lib/fleet/refusal';
import { sshControlStep } from '@/lib/actions/steps/control-steps';
import { reloadFlow } from '@/lib/actions/drivers/verb-flows';
import { pgCtlRestart } from './restart';
import { CAPABILITIES, type Capability, type HerdDriver } from '../driver';
import { planRebuild } from './rebuild';
import { planSwitchover } from './switchover';
import { planEc2PowerOff, planEc2PowerOn } from './power';
import { planFailover } from './failover';
import { planEc2Resize } from './resize';
import { planPgCtlArchiving } from './archiving';
import { pgCtlParameters } from './parameters';
import { pgCtlAccessRules } from './access-rules';
import type { ResizePrepared } from '@/lib/actions/drivers/cloud-prepare';

const CAN: Capability[] = [
  'start',
  'stop',
  'restart',
  'reload',
  'promote',
  'remaster',
  'rebuild',
  'switchover',
  'failover',
  'failover-drill',
  'resize',
  'resize-herd',
  'power',
  'add-replica',
  'retire',
  'replace',
  'set-parameters',
  'access-rules',
  'backups',
  'upgrade-minor',
  'upgrade-major',
  'upgrade-in-place',
  'shell',
];

export const pgCtlDriver: HerdDriver = {
  name: 'pg_ctl',
  controls: ['pg_ctl', 'pg_ctlcluster'],
  capabilities: new Set(CAN),
  lacks: (c) =>
    c === 'pause'
      ? 'pgherd runs this herd with pg_ctl: nothing fails it over on its own, so there is no automatic failover to pause'
      : `pgherd runs this herd with pg_ctl, and cannot ${CAPABILITIES[c]} it yet`,
  // pg_ctl restart over SSH; Postgres says whether a restart is pending.
  restart: (t, { params }) =>
    params.failover
      ? refuse('not-applicable', 'a restart with failover is what RDS Multi-AZ does: here, use Switchover to move the primary')
      : pgCtlRestart(t, params.pendingOnly),
  reload: (t) => reloadFlow(t, { ask: sshControlStep(t, 'reload', 'reload') }),
  rebuild: (t, { members }) => planRebuild(t, members),
  // Stop the old primary once its poolers hold new queries; promote the candidate once it replayed the shutdown checkpoint.
  switchover: planSwitchover,
  // Through the server's EC2 instance.
  powerOff: (t, { members, prepared }) => planEc2PowerOff(t, members, prepared as ResizePrepared),
  powerOn: (t, { members, prepared }) => planEc2PowerOn(t, members, prepared as ResizePrepared),
  // Fence the old primary over SSH, promote the replica with the most WAL when it runs.
  failover: planFailover,
  // The EC2 instance's type, its clients drained first.
  resize: planEc2Resize,
  // ALTER SYSTEM on every member, then a reload.
  archiving: planPgCtlArchiving,
  parameters: pgCtlParameters,
  accessRules: pgCtlAccessRules,
};
