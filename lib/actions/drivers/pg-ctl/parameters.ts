// The settings of a herd pgherd runs itself: each member's postgresql.auto.conf through ALTER SYSTEM (the
// action keeps a copy to put back), a member restarted by pg_ctl over SSH.
import { sshControlStep } from '@/lib/actions/steps/control-steps';
import type { ParameterPlane } from '../parameters';

export const pgCtlParameters: ParameterPlane = {
  runBy: 'ALTER SYSTEM and pg_ctl over SSH',
  scope: 'member',
  restart: (m) => sshControlStep(m, 'restart', `${m.label}: restart`),
};
