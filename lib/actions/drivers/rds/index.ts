// The driver of herds RDS runs: pgherd asks the RDS API (modify, stop and start, reboot, promote a
// read replica, create one) and reads Postgres over SQL. RDS gives no shell, pg_ctl or data
// directory: said here, once, for every action that needs them.
import { prepareCloud, type ResizePrepared } from '@/lib/actions/drivers/cloud-prepare';
import { refuse } from '@/lib/fleet/refusal';
import { capabilityWords, type Capability, type HerdDriver } from '../driver';
import { planRdsReboot } from './reboot';
import { planRdsPowerOff, planRdsPowerOn } from './power';
import { planRdsDrFailover } from './failover';
import { planRdsResize } from './resize';
import type { ResizeState } from '../resize';
import { rdsReplicaMaker } from './add-replica';
import { rdsParameters } from './parameters';

const CAN: Capability[] = ['restart', 'resize', 'power', 'failover', 'add-replica', 'set-parameters'];

export const rdsDriver: HerdDriver = {
  name: 'RDS',
  controls: ['rds'],
  capabilities: new Set(CAN),
  lacks: (c) =>
    c === 'access-rules'
      ? 'RDS has no pg_hba file: who may connect to an RDS instance is its security groups and its parameter group (rds.force_ssl), not lines pgherd writes'
      : `RDS runs this herd: pgherd acts on its members through the RDS API only (${capabilityWords(rdsDriver).join(', ')}, and Refresh DNS); RDS gives no shell, pg_ctl or data directory, so this action, which needs them, is refused`,
  // What RDS has now of each DB instance (its status, class, Multi-AZ), read once for all the targets.
  prepare: (_c, targets, db) => prepareCloud(targets, db, null),
  // RebootDBInstance (with failover for a Multi-AZ instance).
  restart: (t, { params, prepared }) =>
    params.pendingOnly
      ? refuse(
          'not-applicable',
          'RDS keeps what waits for a reboot in its parameter group, which pgherd does not read yet: untick "Only if a restart is pending"',
        )
      : planRdsReboot(t, (prepared as ResizePrepared).rds, params.failover),
  // StopDBInstance and StartDBInstance.
  powerOff: (t, { prepared }) => planRdsPowerOff(t, (prepared as ResizePrepared).rds),
  powerOn: (t, { members, prepared }) => {
    const p = prepared as ResizePrepared;
    return planRdsPowerOn(t, members, p.herds.get(t.herdId), p.rds);
  },
  // RDS promotes a read replica.
  failover: planRdsDrFailover,
  // ModifyDBInstance to the class asked for.
  resize: (t, v) => planRdsResize<ResizeState>(t, v),
  // CreateDBInstanceReadReplica: RDS makes the replica, of the class asked for.
  addReplica: rdsReplicaMaker,
  // ModifyDBParameterGroup, and RebootDBInstance for a static parameter.
  parameters: rdsParameters,
};
