// Back up: a full, differential or incremental backup of the herd, run where the repository is (the
// backup host), read from a replica when the policy says so (pgBackRest's backup-standby: the primary
// is asked only for the start and stop of the backup). The repository's listing is then read back and is
// what pgherd records: label, size, LSN range and the WAL each backup needs.
import { z } from 'zod';
import { defineHerdAction, productionWarning } from '@/lib/engine/define-action';
import { Refusal } from '@/lib/fleet/refusal';
import { prepareBackups, type BackupPrepared } from '@/lib/actions/steps/backup-steps';
import { backupSteps } from '@/lib/actions/steps/take-backup';
import { asks } from '@/lib/actions/drivers';

export const backupParams = z
  .object({
    type: z.enum(['full', 'diff', 'incr']).default('incr'),
  })
  .strict();

/** A backup keeps nothing between its steps. */
type BackupState = Record<string, never>;

export const backupAction = defineHerdAction({
  name: 'backup',
  control: asks('backups'),
  label: 'Back up',
  permission: 'operator',
  // A full backup is an admin's: by the policy's count alone it would be what pushes older backups out of
  // retention (pgherd's expire keeps a time floor too, so this is the second guard, not the only one).
  permissionFor: (p) => (p.type === 'full' ? 'admin' : 'operator'),
  dangerous: false,
  params: {
    schema: backupParams,
    fields: [
      {
        name: 'type',
        label: 'Type',
        kind: 'text',
        emptyLabel: 'incr',
        help: 'full, diff (changes since the last full) or incr (changes since the last backup); without a full one, pgBackRest takes a full',
      },
    ],
  },
  prepare: (herds, _params, db): Promise<BackupPrepared> => prepareBackups(herds, db),
  plan: (h, { params, prepared }) => {
    const b = backupSteps<BackupState>(h, prepared, params.type);
    if (b instanceof Refusal) return b;
    return {
      steps: b.steps,
      facts: [
        { label: 'Stanza', value: b.stanza },
        { label: 'Read from', value: b.from },
      ],
      warnings: [...productionWarning(h), ...(params.type === 'full' ? ['a full backup reads every data file'] : [])],
    };
  },
});
