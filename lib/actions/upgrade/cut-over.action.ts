// upgrade-cutover: green takes the writes (the switch, blue to green).
import { switchAction } from './switch';

export const upgradeCutoverAction = switchAction('cutover');
