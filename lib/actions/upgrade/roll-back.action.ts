// upgrade-rollback: blue takes the writes again (the switch, green to blue).
import { switchAction } from './switch';

export const upgradeRollbackAction = switchAction('rollback');
