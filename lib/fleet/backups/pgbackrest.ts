// pgBackRest as pgherd drives it: the configuration files Configure backups writes on each member and on
// the backup host, the argument lists it runs there, and the listing (`info --output=json`) read back.
//
// A posix repository lives on a backup host reached over SSH (pgBackRest's repo1-host): the members push
// WAL to it and restore from it, and backups run on it, reading the members over SSH (from a replica when
// the policy says so: backup-standby). Every file is per stanza (a herd) and carries the paths pgherd
// chose, so hosts that hold several herds (or several labs) never share a lock or a log.
import path from 'node:path';
import type { AppliedPolicy, BackupMember, BackupSecrets, ListedBackup, StanzaListing } from './tool';

/** A herd's stanza: `<environment>-<herd>`, in the characters pgBackRest accepts. */
export const stanzaOf = (environment: string, herd: string) => `${environment}-${herd}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100);

/** Where a member's configuration (and its lock, log and spool) lives: beside its data directory. */
export const memberHome = (dataDirectory: string) => path.join(path.dirname(dataDirectory), 'pgbackrest');
export const memberConfigPath = (dataDirectory: string) => path.join(memberHome(dataDirectory), 'pgbackrest.conf');

/** Where the backup host's configuration of a stanza lives: in the repository's own pgherd folder. */
export const repoHome = (p: Pick<AppliedPolicy, 'repoPath'>) => path.join(p.repoPath, 'pgherd');
export const repoConfigPath = (p: Pick<AppliedPolicy, 'repoPath'>, stanza: string) => path.join(repoHome(p), `${stanza}.conf`);

/** The folders pgBackRest writes in on a member, and on the backup host for a stanza (made by Configure backups). */
export const memberDirs = (dataDirectory: string) => ['log', 'lock', 'spool'].map((d) => path.join(memberHome(dataDirectory), d));
export const repoDirs = (p: Pick<AppliedPolicy, 'repoPath'>, stanza: string) => [
  path.join(repoHome(p), 'log'),
  path.join(repoHome(p), 'lock', stanza),
];

/** A value written into a configuration file: one line, nothing that could start another option. */
function v(x: string | number): string {
  const s = String(x);
  if (/[\u0000-\u001f\u007f]/.test(s)) throw new Error(`a pgBackRest setting may not hold control characters: ${JSON.stringify(s)}`);
  if (s !== s.trim() || s === '')
    throw new Error(`a pgBackRest setting may not be empty or start or end with spaces: ${JSON.stringify(s)}`);
  return s;
}

const lines = (section: string, entries: [string, string | number][]) => [`[${section}]`, ...entries.map(([k, x]) => `${k}=${v(x)}`), ''];

function repoEntries(p: AppliedPolicy, secrets: BackupSecrets, prefix = 'repo1'): [string, string | number][] {
  const out: [string, string | number][] = [];
  if (p.repoKind === 's3') {
    if (!p.s3) throw new Error('an S3 repository needs its bucket');
    const auto = secrets.s3KeyType === 'auto';
    if (!auto && (!secrets.s3Key || !secrets.s3Secret))
      throw new Error('an S3 repository needs the environment\u2019s S3 keys (PGHERD_PG_CONFIG backup.s3KeyFile)');
    // An S3 repository is always encrypted: its bucket is reached from every member, and read by whoever holds the keys.
    if (!p.encrypt) throw new Error('an S3 repository is always encrypted');
    out.push(
      [`${prefix}-type`, 's3'],
      [`${prefix}-path`, p.repoPath],
      [`${prefix}-s3-bucket`, p.s3.bucket],
      [`${prefix}-s3-endpoint`, p.s3.endpoint],
      [`${prefix}-s3-region`, p.s3.region],
      ...(auto
        ? [[`${prefix}-s3-key-type`, 'auto'] as [string, string]]
        : [
            [`${prefix}-s3-key`, secrets.s3Key ?? ''] as [string, string],
            [`${prefix}-s3-key-secret`, secrets.s3Secret ?? ''] as [string, string],
          ]),
      [`${prefix}-s3-uri-style`, 'path'],
      ...(p.s3.connectHost ? [[`${prefix}-storage-host`, p.s3.connectHost] as [string, string]] : []),
      ...(p.s3.port !== 443 ? [[`${prefix}-storage-port`, p.s3.port] as [string, number]] : []),
      ...(p.s3.caFile ? [[`${prefix}-storage-ca-file`, p.s3.caFile] as [string, string]] : []),
    );
  } else out.push([`${prefix}-path`, p.repoPath]);
  out.push([`${prefix}-retention-full`, p.retentionFull]);
  // Expire is pgherd's own step, with a time floor under the count (./retention.ts): a backup never
  // expires older ones by count alone.
  out.push(['expire-auto', 'n']);
  if (p.encrypt) {
    if (!secrets.cipherPass)
      throw new Error('an encrypted repository needs the environment\u2019s passphrase (PGHERD_PG_CONFIG backup.cipherPassFile)');
    out.push([`${prefix}-cipher-type`, 'aes-256-cbc'], [`${prefix}-cipher-pass`, secrets.cipherPass]);
  }
  return out;
}

/**
 * A member's configuration: where its repository is (the backup host over SSH, or S3 directly), and
 * its own Postgres for archive-push and restore. With S3 the stanza's backups run on the primary with it:
 * the herd's `others` are listed too (reached over SSH), so that a backup can read a replica
 * (backup-standby) whichever member is the primary by then.
 */
export function memberConfig(
  p: AppliedPolicy,
  stanza: string,
  m: BackupMember,
  secrets: BackupSecrets,
  others: BackupMember[] = [],
): string {
  const home = memberHome(m.dataDirectory);
  const global: [string, string | number][] = [
    ['log-path', path.join(home, 'log')],
    ['lock-path', path.join(home, 'lock')],
    ['spool-path', path.join(home, 'spool')],
    ['compress-type', p.compressType],
    ['log-level-file', 'info'],
  ];
  if (p.repoKind === 'posix') {
    if (!p.repoHost) throw new Error('a posix repository needs its backup host');
    global.push(
      ['repo1-host', p.repoHost.ssh.host],
      ['repo1-host-port', p.repoHost.ssh.port],
      ['repo1-host-user', p.repoHost.ssh.username],
      ['repo1-host-config', repoConfigPath(p, stanza)],
    );
  } else {
    global.push(...repoEntries(p, secrets));
    if (others.length) global.push(['start-fast', 'y'], ['backup-standby', p.fromStandby ? 'y' : 'n']);
  }
  const rest = p.repoKind === 's3' ? others.filter((o) => o.dataDirectory !== m.dataDirectory || o.host !== m.host) : [];
  return [
    '# Written by pgherd (Configure backups); edits are overwritten by the next one.',
    ...lines('global', global),
    ...lines(stanza, [
      ['pg1-path', m.dataDirectory],
      ['pg1-port', m.port],
      ['pg1-socket-path', m.socketDirectory],
      ['pg1-user', 'postgres'],
      ...rest.flatMap((o, k): [string, string | number][] => remotePg(k + 2, o)),
    ]),
  ].join('\n');
}

/** The backup host's configuration of a stanza: the repository, and every member reached over SSH. */
export function repoConfig(p: AppliedPolicy, stanza: string, members: BackupMember[], secrets: BackupSecrets): string {
  const home = repoHome(p);
  return [
    '# Written by pgherd (Configure backups); edits are overwritten by the next one.',
    ...lines('global', [
      ...repoEntries(p, secrets),
      ['log-path', path.join(home, 'log')],
      ['lock-path', path.join(home, 'lock', stanza)],
      ['compress-type', p.compressType],
      ['log-level-file', 'info'],
      // A backup starts with a checkpoint now, not at the next scheduled one.
      ['start-fast', 'y'],
      ['backup-standby', p.fromStandby && members.length > 1 ? 'y' : 'n'],
    ]),
    ...lines(
      stanza,
      members.flatMap((m, k) => remotePg(k + 1, m)),
    ),
  ].join('\n');
}

/** A member reached over SSH, as pgBackRest's pg<n>-host entries. */
const remotePg = (n: number, m: BackupMember): [string, string | number][] => [
  [`pg${n}-host`, m.host],
  [`pg${n}-host-port`, m.sshPort],
  [`pg${n}-host-user`, m.sshUser],
  [`pg${n}-host-config`, memberConfigPath(m.dataDirectory)],
  [`pg${n}-path`, m.dataDirectory],
  [`pg${n}-port`, m.port],
  [`pg${n}-socket-path`, m.socketDirectory],
  [`pg${n}-user`, 'postgres'],
];

/**
 * A configuration of the repository alone, written afresh from the policy and the secrets pgherd holds now,
 * into `home` (its own log and lock folders): what a drill verifies the repository with, so that a
 * passphrase changed since the repository was made (or another environment's) is found by the drill, not
 * by the next Configure backups, which would leave the herd's WAL with nowhere to go.
 */
export function repositoryOnlyConfig(p: AppliedPolicy, stanza: string, home: string, secrets: BackupSecrets): string {
  return [
    '# Written by pgherd (a restore drill) and removed after it.',
    ...lines('global', [
      ...repoEntries(p, secrets),
      ['log-path', path.join(home, 'log')],
      ['lock-path', path.join(home, 'lock')],
      ['log-level-file', 'info'],
    ]),
    `[${v(stanza)}]`,
    '',
  ].join('\n');
}

/** pgBackRest runs on the members with their own configuration, on the backup host with the stanza's. */
export const pgbackrest = (config: string, stanza: string, ...rest: string[]) => [
  'pgbackrest',
  `--config=${config}`,
  `--stanza=${stanza}`,
  ...rest,
];

/** A path or name that goes into archive_command or restore_command, which Postgres runs through a shell. */
function shellSafe(x: string): string {
  if (!/^[A-Za-z0-9_.,+:@/-]+$/.test(x))
    throw new Error(`${JSON.stringify(x)} cannot go into archive_command (it is run by a shell): letters, digits and _ . , + : @ / - only`);
  return x;
}

/** archive_command for a member: push each segment to the repository (through the member's configuration). */
export const archiveCommand = (dataDirectory: string, stanza: string) =>
  `pgbackrest --config=${shellSafe(memberConfigPath(dataDirectory))} --stanza=${shellSafe(stanza)} archive-push %p`;

/**
 * archive_command as one value for every member of a herd (a Patroni herd's, in its dynamic configuration):
 * members laid out alike share the absolute path; otherwise each finds its configuration beside the data
 * directory Postgres runs the command in (its working directory).
 */
export const sharedArchiveCommand = (dataDirectories: string[], stanza: string) =>
  new Set(dataDirectories).size === 1 && dataDirectories[0]
    ? archiveCommand(dataDirectories[0], stanza)
    : `pgbackrest --config="$(pwd -P)/../pgbackrest/pgbackrest.conf" --stanza=${shellSafe(stanza)} archive-push %p`;

/** restore_command for a member restored from (or seeded by) the repository. */
export const restoreCommand = (dataDirectory: string, stanza: string) =>
  `pgbackrest --config=${shellSafe(memberConfigPath(dataDirectory))} --stanza=${shellSafe(stanza)} archive-get %f "%p"`;

/** The system identifier as the JSON text has it: a 64-bit number JSON.parse would round. */
function systemIdOf(text: string): string | null {
  return /"system-id"\s*:\s*(\d+)/.exec(text)?.[1] ?? null;
}

interface InfoJson {
  name: string;
  status: { code: number; message: string };
  archive?: { min: string | null; max: string | null }[];
  backup?: {
    label: string;
    type: 'full' | 'diff' | 'incr';
    prior: string | null;
    error?: boolean;
    timestamp: { start: number; stop: number };
    info: { size: number; repository: { delta: number; size?: number } };
    lsn: { start: string; stop: string };
    archive: { start: string; stop: string };
  }[];
}

/** `pgbackrest info --output=json` for one stanza, read. */
export function parseInfo(text: string, stanza: string): StanzaListing {
  let all: InfoJson[];
  try {
    all = JSON.parse(text) as InfoJson[];
  } catch {
    throw new Error(`pgbackrest info did not answer JSON: ${text.slice(0, 200)}`);
  }
  const s = all.find((x) => x.name === stanza);
  if (!s) throw new Error(`pgbackrest info does not list stanza ${stanza}`);
  const backups: ListedBackup[] = (s.backup ?? []).map((b) => ({
    label: b.label,
    type: b.type,
    prior: b.prior,
    startedAt: new Date(b.timestamp.start * 1000),
    stoppedAt: new Date(b.timestamp.stop * 1000),
    sizeBytes: b.info.size,
    repoSizeBytes: b.info.repository.delta,
    lsnStart: b.lsn.start,
    lsnStop: b.lsn.stop,
    walStart: b.archive.start,
    walStop: b.archive.stop,
    error: !!b.error,
  }));
  const arch = s.archive ?? [];
  return {
    status: s.status,
    systemIdentifier: systemIdOf(text),
    backups,
    archive: { min: arch[0]?.min ?? null, max: arch[arch.length - 1]?.max ?? null },
  };
}
