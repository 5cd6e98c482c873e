// Every action pgherd can run, by name.
import type { AnyAction } from './define-action';
import { reloadAction } from './actions/reload.action';
import { restartAction } from './actions/restart.action';
import { startAction } from './actions/start.action';
import { stopAction } from './actions/stop.action';
import { promoteAction } from './actions/promote.action';
import { remasterAction } from './actions/remaster.action';
import { rebuildAction } from './actions/rebuild.action';
import { refreshDnsAction } from './actions/refresh-dns.action';
import { patroniPauseAction, patroniResumeAction } from './actions/patroni-pause.action';
import { switchoverAction } from './actions/switchover.action';
import { drFailoverAction } from './actions/dr-failover.action';
import { checkSshAction } from './actions/check-ssh.action';
import { replaceHostKeyAction } from './actions/replace-host-key.action';
import { resizeAction } from './actions/resize.action';
import { powerOffAction, powerOnAction } from './actions/power.action';
import { resizeHerdAction } from './actions/resize-herd.action';
import { drDrillAction } from './actions/dr-drill.action';

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
