// Every action pgherd can run, by name.
import type { AnyAction, HerdAction, InstanceAction } from '@/lib/engine/define-action';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { restartAction } from '@/lib/actions/control/restart.action';
import { startAction } from '@/lib/actions/control/start.action';
import { stopAction } from '@/lib/actions/control/stop.action';
import { promoteAction } from '@/lib/actions/topology/promote.action';
import { remasterAction } from '@/lib/actions/topology/remaster.action';
import { rebuildAction } from '@/lib/actions/topology/rebuild.action';
import { refreshDnsAction } from '@/lib/actions/topology/refresh-dns.action';
import { patroniPauseAction, patroniResumeAction } from '@/lib/actions/drivers/patroni/pause.action';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { drFailoverAction } from '@/lib/actions/topology/dr-failover.action';
import { checkSshAction } from '@/lib/actions/control/check-ssh.action';
import { dropSlotAction } from '@/lib/actions/maintenance/drop-slot.action';
import { growVolumeAction } from '@/lib/actions/cloud/grow-volume.action';
import { rotateCertificateAction } from '@/lib/actions/maintenance/rotate-certificate.action';
import { endSessionAction } from '@/lib/actions/maintenance/end-session.action';
import { vacuumFreezeAction } from '@/lib/actions/maintenance/vacuum-freeze.action';
import { replaceHostKeyAction } from '@/lib/actions/control/replace-host-key.action';
import { resizeAction } from '@/lib/actions/cloud/resize.action';
import { powerOffAction, powerOnAction } from '@/lib/actions/cloud/power.action';
import { resizeHerdAction } from '@/lib/actions/cloud/resize-herd.action';
import { upgradeMinorAction } from '@/lib/actions/upgrade/minor.action';
import { upgradeInPlaceAction } from '@/lib/actions/upgrade/in-place.action';
import { upgradeCleanupAction } from '@/lib/actions/upgrade/cleanup.action';
import { upgradeCutoverAction } from '@/lib/actions/upgrade/cut-over.action';
import { upgradeMajorAction } from '@/lib/actions/upgrade/build.action';
import { upgradePrecheckAction } from '@/lib/actions/upgrade/precheck.action';
import { upgradeRollbackAction } from '@/lib/actions/upgrade/roll-back.action';
import { drDrillAction } from '@/lib/actions/topology/dr-drill.action';
import { configureBackupsAction } from '@/lib/actions/backups/configure-backups.action';
import { backupAction } from '@/lib/actions/backups/backup.action';
import { restoreAction } from '@/lib/actions/backups/restore.action';
import { restoreDrillAction } from '@/lib/actions/backups/restore-drill.action';
import { tearDownRestoredAction } from '@/lib/actions/backups/tear-down.action';
import { addReplicaAction } from '@/lib/actions/grow/add-replica.action';
import { retireAction } from '@/lib/actions/grow/retire.action';
import { evacuateAction, replaceAction } from '@/lib/actions/grow/replace.action';
import { applySettingsAction } from '@/lib/actions/parameters/apply-settings.action';
import { applyObjectsAction } from '@/lib/actions/objects/apply-objects.action';
import { rotateCredentialsAction } from '@/lib/actions/objects/rotate-credentials.action';
import { rotateOwnCredentialsAction } from '@/lib/actions/objects/rotate-own-credentials.action';

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
  switchoverAction,
  drFailoverAction,
  drDrillAction,
  resizeHerdAction,
  upgradeMinorAction,
  upgradeInPlaceAction,
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
  retireAction,
  replaceAction,
  evacuateAction,
  applySettingsAction,
  applyObjectsAction,
  rotateCredentialsAction,
  rotateOwnCredentialsAction,
  refreshDnsAction,
  patroniPauseAction,
  patroniResumeAction,
  checkSshAction,
  replaceHostKeyAction,
  vacuumFreezeAction,
  dropSlotAction,
  endSessionAction,
  growVolumeAction,
  rotateCertificateAction,
];

/**
 * Names of actions folded into another, accepted for one release more (until pgherd 0.9): the API
 * answers them with a Deprecation header and says the new name; rules that name them keep working.
 */
/**
 * A name folded into another action: what it is now, what to say of it, and which targets it acted on. Asked
 * by its old name, the action still refuses what the old one refused (a rule that reboots "rds-reboot"'s
 * instances never restarts a pg_ctl member through it), in the old one's words.
 */
interface Folded {
  into: string;
  says: string;
  only: (target: InstanceRef | HerdRef) => Refusal | null;
}

const FOLDED: Record<string, Folded> = {
  'rds-reboot': {
    into: 'restart',
    says: 'rds-reboot is now restart, which reboots an RDS DB instance (failover: true as before)',
    only: (t) => ('rds' in t && t.rds ? null : refuse('not-applicable', `${t.label} is not an RDS DB instance: use Restart`)),
  },
  'rds-add-replica': {
    into: 'add-replica',
    says: 'rds-add-replica is now add-replica, which asks RDS for a read replica on a herd RDS runs (instanceClass, availabilityZone as before)',
    only: (h) =>
      'members' in h && h.members.some((m) => m.rds) ? null : refuse('not-applicable', `${h.label} is not run by RDS: use Add replica`),
  },
};

/** What to say of a deprecated action name, or null for a current one. */
export const deprecatedName = (name: string): string | null => FOLDED[name]?.says ?? null;

/** The headers an API answer to a deprecated action name carries (RFC 9745: deprecated since this date). */
export const deprecationHeaders = (name: string): Record<string, string> =>
  FOLDED[name] ? { deprecation: '@1795737600', warning: `299 pgherd "${FOLDED[name].says}"` } : {};

export function getAction(name: string): AnyAction | undefined {
  const folded = FOLDED[name];
  const current = actions.find((a) => a.name === (folded?.into ?? name));
  return current && folded ? oldTargetsOnly(current, folded) : current;
}

/** The action as its old name asks for it: the targets the old action refused, refused (a Refusal thrown while planning refuses its target). */
function oldTargetsOnly(a: AnyAction, f: Folded): AnyAction {
  const check = (t: InstanceRef | HerdRef) => {
    const no = f.only(t);
    if (no) throw no;
  };
  if (a.on === 'herd') {
    const herd: HerdAction = {
      ...a,
      plan: (h, ctx) => (check(h), a.plan(h, ctx)),
      steps: (h, deps, ctx, confirmed) => (check(h), a.steps(h, deps, ctx, confirmed)),
    };
    return herd;
  }
  const instance: InstanceAction = {
    ...a,
    plan: (t, ctx) => (check(t), a.plan(t, ctx)),
    steps: (t, deps, ctx, confirmed) => (check(t), a.steps(t, deps, ctx, confirmed)),
  };
  return instance;
}

/** For the benchmark and tests: an action that is not offered in the console (a no-op, say). */
export function registerAction(def: AnyAction): void {
  if (!getAction(def.name)) actions.push(def);
}
