// The capability Configure backups asks of a herd's driver: archive_command (pgBackRest's archive-push
// for the herd's stanza) and archive_timeout on every member, archive_mode on where it is off.
import type { ActionStep, RunContext } from '@/lib/engine/define-action';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

export interface ArchivingAsk<S> {
  stanza: string;
  timeoutSeconds: number;
  /** Whether `m` ran with archive_mode off when the operation read it (known once the read step ran). */
  modeOff: (x: RunContext<S>, m: InstanceRef) => boolean;
}

/** What the driver runs: `before` ahead of anything written (its own preflight), `set` where the action sets archiving. */
export interface ArchivingPlan<S> {
  before: ActionStep<S>[];
  set: ActionStep<S>;
}
