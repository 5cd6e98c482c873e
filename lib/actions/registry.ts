// Every action pgherd can run, by name.
import type { AnyAction } from '@/lib/engine/define-action';
import { reloadAction } from '@/lib/actions/reload.action';
import { restartAction } from '@/lib/actions/restart.action';
import { startAction } from '@/lib/actions/start.action';
import { stopAction } from '@/lib/actions/stop.action';
import { promoteAction } from '@/lib/actions/promote.action';
import { remasterAction } from '@/lib/actions/remaster.action';
import { rebuildAction } from '@/lib/actions/rebuild.action';
import { refreshDnsAction } from '@/lib/actions/refresh-dns.action';
import { patroniPauseAction, patroniResumeAction } from '@/lib/actions/patroni-pause.action';
import { switchoverAction } from '@/lib/actions/switchover.action';
import { drFailoverAction } from '@/lib/actions/dr-failover.action';
import { checkSshAction } from '@/lib/actions/check-ssh.action';
import { replaceHostKeyAction } from '@/lib/actions/replace-host-key.action';
import { resizeAction } from '@/lib/actions/resize.action';
import { powerOffAction, powerOnAction } from '@/lib/actions/power.action';
import { resizeHerdAction } from '@/lib/actions/resize-herd.action';
import { upgradeMinorAction } from '@/lib/actions/upgrade-minor.action';
import {
  upgradeCleanupAction,
  upgradeCutoverAction,
  upgradeMajorAction,
  upgradePrecheckAction,
  upgradeRollbackAction,
} from '@/lib/actions/upgrade/major.action';
import { drDrillAction } from '@/lib/actions/dr-drill.action';
import { configureBackupsAction } from '@/lib/actions/backups/configure-backups.action';
import { backupAction } from '@/lib/actions/backups/backup.action';
import { restoreAction } from '@/lib/actions/backups/restore.action';
import { restoreDrillAction } from '@/lib/actions/backups/restore-drill.action';
import { tearDownRestoredAction } from '@/lib/actions/backups/tear-down.action';
import { addReplicaAction } from '@/lib/actions/grow/add-replica.action';
import { retireAction } from '@/lib/actions/grow/retire.action';
import { evacuateAction, replaceAction } from '@/lib/actions/grow/replace.action';
import { applySettingsAction } from '@/lib/actions/settings/apply-settings.action';
import { rdsRebootAction } from '@/lib/actions/rds/rds-reboot.action';
import { rdsAddReplicaAction } from '@/lib/actions/rds/rds-add-replica.action';

export const actions: AnyAction[] = [
  startAction,
  stopAction,
  restartAction,
  reloadAction,
  promoteAction,
  remasterAction,
  rebuildAction,
  resizeAction,
  powerOffAction,
  powerOnAction,
  rdsRebootAction,
  switchoverAction,
  drFailoverAction,
  drDrillAction,
  resizeHerdAction,
  upgradeMinorAction,
  upgradePrecheckAction,
  upgradeMajorAction,
  upgradeCutoverAction,
  upgradeRollbackAction,
  upgradeCleanupAction,
  backupAction,
  configureBackupsAction,
  restoreAction,
  restoreDrillAction,
  tearDownRestoredAction,
  addReplicaAction,
  rdsAddReplicaAction,
  retireAction,
  replaceAction,
  evacuateAction,
  applySettingsAction,
  refreshDnsAction,
  patroniPauseAction,
  patroniResumeAction,
  checkSshAction,
  replaceHostKeyAction,
];

export function getAction(name: string): AnyAction | undefined {
  return actions.find((a) => a.name === name);
}

/** For the benchmark and tests: an action that is not offered in the console (a no-op, say). */
export function registerAction(def: AnyAction): void {
  if (!getAction(def.name)) actions.push(def);
}
