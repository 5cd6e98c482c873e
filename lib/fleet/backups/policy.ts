// A herd's backup policy as it applies (the herd's own, else its environment's), with the backup host it
// names, and the setup Configure backups last applied.
import { sql } from 'drizzle-orm';
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import type { AppliedPolicy, S3Repository } from './tool';

export interface HerdPolicy {
  policyId: number;
  /** Whose it is: the herd's own, or its environment's. */
  scope: 'herd' | 'environment';
  policy: AppliedPolicy;
  /** The backup host's server: its environment (must be the herd's) and whether an admin approved it. */
  repoServer: { id: number; hostname: string; environmentId: number; environment: string; approval: string | null } | null;
}

type Row = {
  herd_id: number;
  id: number;
  herd_scoped: boolean;
  repo_kind: 'posix' | 's3';
  repo_path: string;
  s3_bucket: string;
  s3_endpoint: string;
  s3_region: string;
  s3_connect_host: string;
  s3_port: number;
  s3_ca_file: string;
  retention_full: number;
  compress_type: AppliedPolicy['compressType'];
  encrypt: boolean;
  from_standby: boolean;
  archive_timeout_seconds: number;
  /** The backup host, when the policy names one. */
  server: {
    id: number;
    hostname: string;
    address: string;
    sshPort: number;
    sshUser: string;
    fingerprint: string | null;
    environmentId: number;
    environment: string;
    approval: string | null;
  } | null;
};

/** Each herd's policy in force (absent: none applies). */
export async function herdPolicies(db: Db, herdIds: number[]): Promise<Map<number, HerdPolicy>> {
  if (!herdIds.length) return new Map();
  const r = await db.execute<Row>(withParams(sqlFile('lib/fleet/backups/herd-policies.sql'), [herdIds]));
  return new Map(r.rows.map((x) => [x.herd_id, toHerdPolicy(x)]));
}

function toHerdPolicy(x: Row): HerdPolicy {
  const s = x.server;
  return {
    policyId: x.id,
    scope: x.herd_scoped ? 'herd' : 'environment',
    policy: {
      tool: 'pgbackrest',
      repoKind: x.repo_kind,
      repoHost: s
        ? {
            hostname: s.hostname,
            ssh: {
              host: s.address || s.hostname,
              port: s.sshPort,
              username: s.sshUser,
              hostKeyFingerprint: s.fingerprint,
              serverId: s.id,
              environment: s.environment,
            } satisfies SshTarget,
          }
        : null,
      repoPath: x.repo_path,
      s3:
        x.repo_kind === 's3'
          ? {
              bucket: x.s3_bucket,
              endpoint: x.s3_endpoint,
              region: x.s3_region,
              connectHost: x.s3_connect_host,
              port: x.s3_port,
              caFile: x.s3_ca_file,
            }
          : null,
      retentionFull: x.retention_full,
      compressType: x.compress_type,
      encrypt: x.encrypt,
      fromStandby: x.from_standby,
      archiveTimeoutSeconds: x.archive_timeout_seconds,
    },
    repoServer: s
      ? { id: s.id, hostname: s.hostname, environmentId: s.environmentId, environment: s.environment, approval: s.approval }
      : null,
  };
}

/** Where a policy's repository is, in words: `host:/path` or `s3://bucket/path`. */
export const repositoryWords = (p: AppliedPolicy) =>
  p.repoKind === 's3' ? `s3://${p.s3?.bucket ?? '?'}${p.repoPath}` : `${p.repoHost?.hostname ?? '?'}:${p.repoPath}`;

/** The policy as applied, for comparing with the policy now (a policy edited since is "not applied"). */
// A type (not an interface): plain data, which a plan step's `does` may carry.
export type AppliedForm = {
  tool: string;
  repoKind: string;
  repoHost: string | null;
  repoPath: string;
  s3: S3Repository | null;
  retentionFull: number;
  compressType: string;
  encrypt: boolean;
  fromStandby: boolean;
  archiveTimeoutSeconds: number;
};

export const appliedForm = (p: AppliedPolicy): AppliedForm => ({
  tool: p.tool,
  repoKind: p.repoKind,
  repoHost: p.repoHost?.hostname ?? null,
  repoPath: p.repoPath,
  s3: p.s3,
  retentionFull: p.retentionFull,
  compressType: p.compressType,
  encrypt: p.encrypt,
  fromStandby: p.fromStandby,
  archiveTimeoutSeconds: p.archiveTimeoutSeconds,
});

export interface HerdBackupSetup {
  herdId: number;
  stanza: string;
  applied: AppliedForm;
  appliedAt: Date;
}

/** What Configure backups last applied to each herd. */
export async function herdSetups(db: Db, herdIds: number[]): Promise<Map<number, HerdBackupSetup>> {
  if (!herdIds.length) return new Map();
  const r = await db.execute<{ herd_id: number; stanza: string; applied: AppliedForm; applied_at: Date }>(sql`
    SELECT herd_id, stanza, applied, applied_at FROM herd_backup_setups WHERE herd_id = ANY(${sql.param(herdIds)}::int[])`);
  return new Map(
    r.rows.map((x) => [x.herd_id, { herdId: x.herd_id, stanza: x.stanza, applied: x.applied, appliedAt: new Date(x.applied_at) }]),
  );
}
