// What pgherd asks of a backup tool. pgBackRest (./pgbackrest.ts) is the one implemented; another
// (WAL-G, Barman) would render its own configuration, argument lists and listing from the same policy.
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';

/** A policy as applied to one herd: what every configuration file and command is made from. */
export interface AppliedPolicy {
  tool: 'pgbackrest';
  repoKind: 'posix' | 's3';
  /** posix: the backup host holding the repository. */
  repoHost: { hostname: string; ssh: SshTarget } | null;
  repoPath: string;
  s3: S3Repository | null;
  retentionFull: number;
  compressType: 'zst' | 'lz4' | 'gz' | 'none';
  encrypt: boolean;
  fromStandby: boolean;
  archiveTimeoutSeconds: number;
}

/** An S3 repository's bucket and where it is reached. */
// A type (not an interface): plain data, which a plan step's `does` may carry.
export type S3Repository = {
  bucket: string;
  endpoint: string;
  region: string;
  /** Connect here instead of the endpoint ('' : the endpoint); the store's certificate must name it. */
  connectHost: string;
  port: number;
  /** A CA file on the hosts ('' : the system's). */
  caFile: string;
};

/** A member as the tool's configuration names it. */
export interface BackupMember {
  label: string;
  /** The address the other hosts reach it at, over SSH and (locally) over its socket. */
  host: string;
  sshPort: number;
  sshUser: string;
  port: number;
  dataDirectory: string;
  /** Its unix_socket_directories' first entry, as Postgres reported it. */
  socketDirectory: string;
}

/** The secrets a repository needs (PGHERD_PG_CONFIG's backup entry of the environment). */
export interface BackupSecrets {
  cipherPass: string | null;
  s3Key: string | null;
  s3Secret: string | null;
  /** auto: the hosts' instance role (pgBackRest's repo1-s3-key-type=auto), no keys written. */
  s3KeyType?: 'shared' | 'auto';
}

/** One backup as the tool lists it. */
export interface ListedBackup {
  label: string;
  type: 'full' | 'diff' | 'incr';
  prior: string | null;
  startedAt: Date;
  stoppedAt: Date;
  sizeBytes: number;
  repoSizeBytes: number;
  lsnStart: string;
  lsnStop: string;
  walStart: string;
  walStop: string;
  error: boolean;
}

/** What the tool says of a stanza: its backups, the WAL the archive holds, and its status. */
export interface StanzaListing {
  status: { code: number; message: string };
  systemIdentifier: string | null;
  backups: ListedBackup[];
  archive: { min: string | null; max: string | null };
}
