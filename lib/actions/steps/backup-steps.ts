// What the backup actions share: the policy's checks at planning, files written over SSH without their
// contents in the record, and the repository's listing copied into pgherd's rows.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { execNotedOk } from '@/lib/actions/steps/exec-noted';
import { pendingRefusal, unpinnedRefusal, type ActionDeps } from '@/lib/engine/define-action';
import type { StepContext } from '@/lib/engine/pipeline';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { credentialFilesOf, readBackupSecrets, s3PlaceOf } from '@/lib/fleet/backups/secrets';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { herdPolicies, herdSetups, type HerdBackupSetup, type HerdPolicy } from '@/lib/fleet/backups/policy';
import { memberConfigPath, parseInfo, pgbackrest, repoConfigPath } from '@/lib/fleet/backups/pgbackrest';
import type { BackupSecrets, StanzaListing } from '@/lib/fleet/backups/tool';

/** What the backup actions read before planning: each herd's policy and what was applied. */
export interface BackupPrepared {
  policies: Map<number, HerdPolicy>;
  setups: Map<number, HerdBackupSetup>;
}

export async function prepareBackups(herds: HerdRef[], db: Db): Promise<BackupPrepared> {
  const ids = herds.map((h) => h.id);
  const [policies, setups] = await Promise.all([herdPolicies(db, ids), herdSetups(db, ids)]);
  // An S3 repository goes where PGHERD_PG_CONFIG says for the herd's environment, never where a policy's
  // fields say (an environment admin could otherwise ship the herd's backups to any host).
  for (const h of herds) {
    const p = policies.get(h.id);
    if (p?.policy.repoKind === 's3') policies.set(h.id, { ...p, policy: { ...p.policy, s3: s3Place(h.environment) } });
  }
  return { policies, setups };
}

function s3Place(environment: string) {
  try {
    return s3PlaceOf(environment);
  } catch {
    return null;
  }
}

/** The secrets of the herd's stanza, read now: in the worker only (lib/fleet/backups/secrets.ts). */
export function secretsOf(h: Pick<HerdRef, 'environment' | 'name'>): BackupSecrets {
  return readBackupSecrets(h.environment, h.name);
}

/**
 * Why the herd's policy cannot be used as it is, or undefined: none applies, its backup host is another
 * environment's (a staging admin's policy must not point production's WAL at a staging host), not pinned
 * or not approved, an S3 repository the configuration does not place or that is not encrypted, or a
 * secret it needs is not configured (the file names are asked, not read: planning holds no secret).
 */
export function policyRefusal(h: HerdRef, p: HerdPolicy | undefined): Refusal | undefined {
  if (!p)
    return refuse(
      'not-applicable',
      `no backup policy applies to ${h.label}: an admin adds one for ${h.environment} (or for the herd) under Admin \u203a Backup policies`,
    );
  const s = p.repoServer;
  if (p.policy.repoKind === 'posix') {
    if (!s || !p.policy.repoHost) return refuse('not-applicable', 'the policy\u2019s posix repository names no backup host');
    if (s.environmentId !== h.environmentId)
      return refuse(
        'not-applicable',
        // Neither its name nor its environment: a staging admin learns nothing of production's hosts this way.
        `the policy's backup host (server ${String(s.id)}) is not a server of ${h.environment}: a herd's backups stay in its environment`,
      );
    const why =
      pendingRefusal([{ name: s.hostname, approval: s.approval }]) ??
      unpinnedRefusal({}, [{ name: s.hostname, ssh: p.policy.repoHost.ssh }]);
    if (why) return why;
  }
  let files: ReturnType<typeof credentialFilesOf>;
  try {
    files = credentialFilesOf(h.environment, h.name);
  } catch {
    files = { s3KeyType: 'shared' };
  }
  if (p.policy.repoKind === 's3') {
    if (!p.policy.s3)
      return refuse(
        'not-applicable',
        `PGHERD_PG_CONFIG names no S3 repository for ${h.environment} (backup.s3: bucket, endpoint, region): S3 backups go only where the configuration says`,
      );
    if (!p.policy.encrypt)
      return refuse('not-applicable', 'an S3 repository is always encrypted: the policy turns encryption off (set Encrypt to true)');
    if (files.s3KeyType !== 'auto' && (!files.s3KeyFile || !files.s3SecretFile))
      return refuse(
        'not-applicable',
        `an S3 repository needs ${h.environment}'s S3 keys in PGHERD_PG_CONFIG (backup.s3KeyFile, backup.s3SecretFile), or s3KeyType "auto"`,
      );
  }
  if (p.policy.encrypt && !files.cipherPassFile)
    return refuse(
      'not-applicable',
      `the policy encrypts the repository, and PGHERD_PG_CONFIG has no passphrase for ${h.environment} (backup.cipherPassFile)`,
    );
  return undefined;
}

/** Where the tool runs for the whole stanza (backup, info, check): the backup host, else the primary. */
export function stanzaRunner(
  p: HerdPolicy,
  primary: InstanceRef | undefined,
): { ssh: SshTarget; config: (stanza: string) => string } | null {
  if (p.policy.repoKind === 'posix' && p.policy.repoHost) return { ssh: p.policy.repoHost.ssh, config: (s) => repoConfigPath(p.policy, s) };
  // S3: the repository is reached from the primary itself, with its own configuration.
  if (p.policy.repoKind === 's3' && primary) return { ssh: primary.ssh, config: () => memberConfigPath(primary.dataDirectory) };
  return null;
}

/**
 * Writes `text` to `file` on the host (mode 0600, in place at once: written aside and renamed), with
 * nothing of it in the step's record: these files hold the repository's secrets.
 */
export async function writeHostFile(
  deps: ActionDeps,
  t: { ssh: SshTarget },
  x: StepContext,
  file: string,
  text: string,
  dirs: string[] = [],
) {
  const dir = file.replace(/\/[^/]+$/, '') || '/';
  // $1: the file's folder; $2: the file; the rest: folders the tool writes in (its log, lock and spool).
  const script =
    'umask 077 && f=$2 && mkdir -p -- "$1" && cat > "$f.pgherd-new" && mv -f -- "$f.pgherd-new" "$f" && shift 2 && mkdir -p -- "$@"';
  await execNotedOk(deps, t, x, ['sh', '-c', script, 'pgherd-write', dir, file, ...dirs], 30_000, { stdin: text });
  // Neither the text nor a digest of it (a viewer could test guesses of the passphrase against a digest).
  x.note({ stdout: `${file} written; not recorded: it holds the repository's secrets` });
}

/** `pgbackrest info` for the stanza, read on the backup host. */
export async function readListing(
  deps: ActionDeps,
  runner: { ssh: SshTarget; config: (s: string) => string },
  x: StepContext,
  stanza: string,
): Promise<StanzaListing> {
  const r = await execNotedOk(deps, runner, x, pgbackrest(runner.config(stanza), stanza, '--output=json', 'info'), 60_000);
  return parseInfo(r.stdout, stanza);
}

/**
 * Copies the repository's listing into pgherd's rows: new backups added (the ones `operationId` took
 * marked with it), those the repository no longer holds marked gone. Returns the labels added.
 */
export async function recordListing(
  db: Db,
  herdId: number,
  stanza: string,
  listing: StanzaListing,
  operationId: number | null,
): Promise<string[]> {
  const added: string[] = [];
  await db.transaction(async (tx) => {
    for (const b of listing.backups) {
      const r = await tx.execute(sql`
        INSERT INTO backups (herd_id, stanza, label, type, prior, started_at, stopped_at, size_bytes, repo_size_bytes,
                             lsn_start, lsn_stop, wal_start, wal_stop, operation_id)
        VALUES (${herdId}, ${stanza}, ${b.label}, ${b.type}, ${b.prior}, ${b.startedAt}, ${b.stoppedAt}, ${b.sizeBytes},
                ${b.repoSizeBytes}, ${b.lsnStart}, ${b.lsnStop}, ${b.walStart}, ${b.walStop}, ${operationId})
        ON CONFLICT (herd_id, label) DO UPDATE SET gone_at = NULL, stanza = excluded.stanza
        RETURNING (xmax = 0) AS inserted`);
      if ((r.rows[0] as { inserted?: boolean } | undefined)?.inserted) added.push(b.label);
    }
    const labels = listing.backups.map((b) => b.label);
    await tx.execute(sql`
      UPDATE backups SET gone_at = now()
      WHERE herd_id = ${herdId} AND stanza = ${stanza} AND gone_at IS NULL AND NOT (label = ANY(${sql.param(labels)}::text[]))`);
    await tx.execute(sql`
      UPDATE herd_backup_setups SET info_status = ${listing.status.message}, info_read_at = now() WHERE herd_id = ${herdId}`);
  });
  return added;
}
