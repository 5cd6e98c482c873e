// A backup as steps (taken where the repository is, expired by retention, recorded from the repository's
// listing): the Back up action's, and any flow's that takes one on its way (an upgrade in place).
import { refreshFleet } from '@/lib/fleet/refresher';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import { refuse } from '@/lib/fleet/refusal';
import { appliedForm, type HerdPolicy } from '@/lib/fleet/backups/policy';
import { pgbackrest } from '@/lib/fleet/backups/pgbackrest';
import { fullsToKeep } from '@/lib/fleet/backups/retention';
import { setting } from '@/lib/settings/settings';
import type { ActionStep } from '@/lib/engine/define-action';
import { formatBytes } from '@/lib/adapters/format/units';
import { execNotedOk } from '@/lib/actions/steps/exec-noted';
import { policyRefusal, readListing, recordListing, stanzaRunner, type BackupPrepared } from '@/lib/actions/steps/backup-steps';

export type BackupType = 'full' | 'diff' | 'incr';

export const TYPE_WORDS = { full: 'full', diff: 'differential', incr: 'incremental' } as const;

/** The longest a backup may run before its step is stopped (and pgBackRest with it). */
const BACKUP_TIMEOUT_MS = 6 * 3600_000;

/**
 * A backup of `h` as steps (taken, expired by retention, recorded), `prefix` before their names; with where
 * pgBackRest runs and the stanza; or why the herd cannot be backed up (no policy, not configured, no primary).
 */
export function backupSteps<S>(h: HerdRef, prepared: BackupPrepared, type: BackupType, prefix = '') {
  const p = prepared.policies.get(h.id);
  const why = policyRefusal(h, p);
  if (why || !p) return why ?? refuse('not-applicable', 'no backup policy');
  const setup = prepared.setups.get(h.id);
  if (!setup) return refuse('not-applicable', `${h.label} is not configured for backups yet: run Configure backups (an admin) first`);
  const primary = h.members.find((m) => m.role === 'primary' && m.state === 'running');
  if (!primary) return refuse('topology', 'the herd has no running primary: a backup starts and stops on the primary');
  const runner = stanzaRunner(p, primary);
  if (!runner) return refuse('topology', 'no host to run the backup on');
  const replicas = h.members.filter((m) => m.role === 'replica' && m.state === 'running');
  const b: BackupRun = {
    h,
    p,
    runner,
    stanza: setup.stanza,
    from: p.policy.fromStandby && replicas.length ? `a replica (${replicas.map((r) => r.label).join(' or ')})` : primary.label,
    type,
    keepDays: setting('PGHERD_BACKUP_KEEP_DAYS'),
    retention: p.policy.retentionFull,
  };
  const named = (s: ActionStep<S>): ActionStep<S> => ({ ...s, name: `${prefix}${s.name}` });
  return {
    steps: [takeBackupStep<S>(b), expireStep<S>(b), recordBackupStep<S>(b)].map(named),
    runner,
    stanza: b.stanza,
    from: b.from,
  };
}

/** What the steps of one backup share: the herd, its policy, where pgBackRest runs, the stanza, the type and retention. */
interface BackupRun {
  h: HerdRef;
  p: HerdPolicy;
  runner: NonNullable<ReturnType<typeof stanzaRunner>>;
  stanza: string;
  /** Where its files are read from, in words: the primary, or a replica (backup-standby). */
  from: string;
  type: BackupType;
  /** PGHERD_BACKUP_KEEP_DAYS as read at planning. */
  keepDays: number;
  /** The policy's count of full backups kept. */
  retention: number;
}

/** pgBackRest takes the backup on the repository's host, with nothing expired by count alone. */
function takeBackupStep<S>({ p, runner, stanza, from, type }: BackupRun): ActionStep<S> {
  return {
    name: `take a ${TYPE_WORDS[type]} backup`,
    does: { kind: 'backup.take', stanza, type, policy: appliedForm(p.policy) },
    says: `take a ${TYPE_WORDS[type]} backup of stanza ${stanza}, its files read from ${from}${p.policy.repoHost ? `, on ${p.policy.repoHost.hostname}` : ''}`,
    timeoutMs: BACKUP_TIMEOUT_MS,
    run: async (x) => {
      await execNotedOk(
        x.deps,
        runner,
        x,
        // Never expire by count alone after a backup: the next step expires with the time floor.
        pgbackrest(runner.config(stanza), stanza, `--type=${type}`, '--no-expire-auto', 'backup'),
        BACKUP_TIMEOUT_MS - 60_000,
      );
    },
  };
}

/** Expires what retention lets go: the policy's count of fulls, and every full within the time floor. */
function expireStep<S>({ runner, stanza, keepDays, retention }: BackupRun): ActionStep<S> {
  return {
    name: 'expire what retention lets go',
    does: { kind: 'backup.expire', stanza, retentionFull: retention, keepDays },
    says: `expire backups past retention: keep the policy's ${String(retention)} full backup(s), and every one taken in the last ${String(keepDays)} day(s) with the newest before them (PGHERD_BACKUP_KEEP_DAYS), and the WAL they need`,
    timeoutMs: 600_000,
    run: async (x) => {
      const listing = await readListing(x.deps, runner, x, stanza);
      const keep = fullsToKeep(listing.backups, retention, keepDays, new Date());
      await execNotedOk(
        x.deps,
        runner,
        x,
        pgbackrest(runner.config(stanza), stanza, `--repo1-retention-full=${String(keep)}`, 'expire'),
        540_000,
      );
      x.note({
        stdout: `kept ${String(keep)} full backup(s) and the WAL they need (the policy's ${String(retention)}, ${String(keepDays)}-day floor)`,
      });
    },
  };
}

/** Reads the repository's listing back and records the new backup in pgherd's rows. */
function recordBackupStep<S>({ h, runner, stanza }: BackupRun): ActionStep<S> {
  return {
    name: 'record the backup',
    does: { kind: 'backup.record', stanza, herd: h.id },
    says: 'read the repository\u2019s listing (pgbackrest info) and record each backup: label, size, LSN range, the WAL it needs',
    timeoutMs: 60_000,
    run: async (x) => {
      const listing = await readListing(x.deps, runner, x, stanza);
      const added = await recordListing(x.deps.db, h.id, stanza, listing, x.deps.operation?.id ?? null);
      // The members observed now: the changelist's Backups column says what the archive is after this.
      await refreshFleet(x.deps.db, { ids: h.members.map((m) => m.id), timeoutMs: 3000 });
      const mine = listing.backups.filter((b) => added.includes(b.label));
      const last = mine[mine.length - 1];
      if (!last) throw new Error('the backup ran, yet the repository lists no new backup');
      x.deps.outcome?.(
        `${last.label} (${last.type}): ${formatBytes(last.repoSizeBytes)} in the repository of ${formatBytes(last.sizeBytes)}, ` +
          `LSN ${last.lsnStart}\u2013${last.lsnStop}, ${Math.round((last.stoppedAt.getTime() - last.startedAt.getTime()) / 1000)} s`,
      );
    },
  };
}
