// Backup policies: how an environment's herds (or one herd, in place of its environment's) are backed up.
// Only admins change them: a policy says where a herd's WAL and data go. Its secrets are not here but in
// PGHERD_PG_CONFIG (docs/backups.md); Configure backups applies a policy to a herd.
import { eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { backupPolicies, backupRepoKind, environments, servers } from '@/db/schema';
import { qualified } from '@/lib/fleet/qualified';
import { s3PlaceOf } from '@/lib/fleet/backups/secrets';
import type { S3Repository } from '@/lib/fleet/backups/tool';
import { defineAdmin } from '../define-admin';
import { f, tableForm } from '../form-fields';
import { environmentsAdmin } from './environments.admin';
import { herdsAdmin } from './herds.admin';
import { serversAdmin } from './servers.admin';

const bucket = z
  .string()
  .trim()
  .max(63, 'At most 63 characters.')
  .refine((v) => v === '' || /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(v), 'An S3 bucket name: lower-case letters, digits, . and -.')
  .default('');

/** A yes-or-no field, chosen in a select ("true", "false") and stored as a boolean. */
export const yesNo = {
  schema: z.preprocess(
    (v) => (v === 'true' || v === true ? true : v === 'false' || v === false ? false : v),
    z.boolean({ message: 'Choose true or false.' }),
  ),
  input: { type: 'select' as const, choices: ['true', 'false'] },
};

/**
 * An S3 policy goes only where PGHERD_PG_CONFIG says for its environment (backup.s3), always encrypted: its
 * S3 fields, when given, must be the configuration's (what runs takes them from the configuration anyway).
 */
/** A policy's S3 fields as its row has them, with its environment's name. */
type S3Row = {
  bucket: string;
  endpoint: string;
  region: string;
  connect_host: string;
  port: number;
  ca_file: string;
  encrypt: boolean;
  environment: string;
};

function s3Refusal(p: S3Row): Record<string, string> | null {
  if (!p.encrypt) return { encrypt: 'An S3 repository is always encrypted: its bucket is read by whoever holds the keys.' };
  let place: S3Repository | null;
  try {
    place = s3PlaceOf(p.environment);
  } catch (err) {
    return { repoKind: (err as Error).message };
  }
  if (!place)
    return {
      repoKind: `PGHERD_PG_CONFIG names no S3 repository for ${p.environment} (backup.s3): S3 backups go only where the configuration says.`,
    };
  const given: [string, string, string, string][] = [
    ['s3Bucket', 'bucket', p.bucket, place.bucket],
    ['s3Endpoint', 'endpoint', p.endpoint, place.endpoint],
    ['s3Region', 'region', p.region, place.region],
    ['s3ConnectHost', 'connect-to address', p.connect_host, place.connectHost],
    ['s3Port', 'port', p.port === 443 ? '' : String(p.port), place.port === 443 ? '' : String(place.port)],
    ['s3CaFile', 'CA file', p.ca_file, place.caFile],
  ];
  const wrong = given.filter(([, , v, want]) => v !== '' && v !== want);
  if (!wrong.length) return null;
  return Object.fromEntries(
    wrong.map(([field, words, , want]) => [
      field,
      `${p.environment}'s S3 ${words} is ${want === '' ? 'not set' : want} (PGHERD_PG_CONFIG backup.s3): S3 backups go only where the configuration says.`,
    ]),
  );
}

export const backupPoliciesAdmin = defineAdmin({
  name: 'backup-policies',
  label: 'backup policy',
  labelPlural: 'backup policies',
  table: backupPolicies,
  id: backupPolicies.id,
  joins: [{ table: environments, on: eq(backupPolicies.environmentId, environments.id) }],
  labelSql: sql`${environments.name} || coalesce('/' || (SELECT h.name FROM herds h WHERE h.id = ${qualified(backupPolicies.herdId)}), '')`,
  environmentSql: backupPolicies.environmentId,
  sameEnvironment: ['herdId', 'repoServerId'],
  permissions: { add: 'admin', change: 'admin', delete: 'admin' },
  fields: {
    scope: {
      label: 'Applies to',
      sql: sql<string>`${environments.name} || coalesce('/' || (SELECT h.name FROM herds h WHERE h.id = ${qualified(backupPolicies.herdId)}), ' (every herd)')`,
      link: 'self',
      sortable: false,
    },
    environment: { label: 'Environment', sql: environments.name },
    repository: {
      label: 'Repository',
      sql: sql<string>`CASE WHEN ${qualified(backupPolicies.repoKind)} = 's3' THEN 's3://' || ${qualified(backupPolicies.s3Bucket)} || ${qualified(backupPolicies.repoPath)}
        ELSE (SELECT s.hostname FROM ${servers} s WHERE s.id = ${qualified(backupPolicies.repoServerId)}) || ':' || ${qualified(backupPolicies.repoPath)} END`,
      sortable: false,
    },
    retentionFull: { label: 'Full backups kept', sql: backupPolicies.retentionFull, format: 'number' },
    encrypt: {
      label: 'Encrypted',
      sql: sql<string>`CASE WHEN ${qualified(backupPolicies.encrypt)} THEN 'yes' ELSE 'no' END`,
      format: 'badge',
    },
    archiveTimeoutSeconds: { label: 'archive_timeout (s)', sql: backupPolicies.archiveTimeoutSeconds, format: 'number' },
    herds: {
      label: 'Herds configured',
      sql: sql<number>`(SELECT count(*) FROM herd_backup_setups s WHERE s.policy_id = ${qualified(backupPolicies.id)})::int`,
      format: 'number',
      sortable: false,
    },
  },
  listDisplay: ['scope', 'repository', 'retentionFull', 'encrypt', 'archiveTimeoutSeconds', 'herds'],
  listFilter: [
    { key: 'environment', label: 'Environment', kind: 'relation', sql: backupPolicies.environmentId, labelSql: environments.name },
  ],
  searchFields: ['environment'],
  ordering: ['environment'],
  form: tableForm(backupPolicies, {
    environmentId: { label: 'Environment', references: () => environmentsAdmin },
    herdId: {
      label: 'Herd',
      help: 'Empty: the policy of every herd of the environment. A herd: its own policy, in place of the environment\u2019s.',
      references: () => herdsAdmin,
      schema: f.optionalRelation(),
    },
    tool: { label: 'Tool', help: 'pgBackRest.' },
    repoKind: {
      label: 'Repository',
      help: 'posix: a directory on a backup host reached over SSH. s3: the environment\u2019s bucket as PGHERD_PG_CONFIG places it (backup.s3), always encrypted.',
      schema: z.enum(backupRepoKind.enumValues).default('posix'),
    },
    repoServerId: {
      label: 'Backup host',
      help: 'posix: the server holding the repository, in this environment, its SSH host key pinned.',
      references: () => serversAdmin,
      schema: f.optionalRelation(),
    },
    repoPath: {
      label: 'Repository path',
      help: 'posix: the directory on the backup host, for example /var/lib/pgbackrest. s3: the path in the bucket, for example /pgbackrest.',
      schema: f.path().refine((v) => v !== '' && v !== '/', 'Give the repository\u2019s directory (not /).'),
    },
    s3Bucket: { label: 'S3 bucket', schema: bucket },
    s3Endpoint: { label: 'S3 endpoint', help: 'For example s3.eu-west-1.amazonaws.com.', schema: f.address() },
    s3Region: {
      label: 'S3 region',
      schema: z
        .string()
        .trim()
        .max(40)
        .regex(/^[a-z0-9-]*$/, 'A region such as eu-west-1.')
        .default(''),
    },
    s3ConnectHost: {
      label: 'S3 connect to',
      help: 'An S3-compatible store or a private endpoint: the address to connect to instead of the endpoint (the store\u2019s certificate must name it). Empty: the endpoint.',
      schema: f.address(),
    },
    s3Port: { label: 'S3 port', help: '443 unless the store says otherwise.', schema: f.int(1, 65535) },
    s3CaFile: {
      label: 'S3 CA file',
      help: 'On the hosts: the CA that signed the store’s certificate. Empty: the system’s CAs.',
      schema: f.path(),
    },
    retentionFull: {
      label: 'Full backups kept',
      help: 'Older full backups, and the WAL only they need, expire after each backup.',
      schema: f.int(1, 100),
    },
    compressType: { label: 'Compression', schema: z.enum(['zst', 'lz4', 'gz', 'none']).default('zst') },
    encrypt: {
      label: 'Encrypt (aes-256-cbc)',
      help: 'With the environment\u2019s passphrase (PGHERD_PG_CONFIG backup.cipherPassFile), never shown.',
      ...yesNo,
    },
    fromStandby: {
      label: 'Back up from a replica',
      help: 'The data files are read from a replica; the primary is asked only for the backup\u2019s start and stop.',
      ...yesNo,
    },
    archiveTimeoutSeconds: {
      label: 'archive_timeout (s)',
      help: 'The longest a quiet primary keeps written WAL from the repository: the bound on what a restore can lose.',
      schema: f.int(10, 3600),
    },
  }),
  validate: async (tx, id): Promise<Record<string, string> | null> => {
    const r = await tx.execute<S3Row & { kind: string; server: number | null }>(
      sql`SELECT p.repo_kind AS kind, p.repo_server_id AS server, p.s3_bucket AS bucket, p.s3_endpoint AS endpoint, p.s3_region AS region,
                 p.s3_connect_host AS connect_host, p.s3_port AS port, p.s3_ca_file AS ca_file, p.encrypt, e.name AS environment
          FROM backup_policies p JOIN environments e ON e.id = p.environment_id WHERE p.id = ${id}`,
    );
    const p = r.rows[0];
    if (p?.kind === 'posix' && p.server === null) return { repoServerId: 'A posix repository needs its backup host.' };
    if (p?.kind === 's3') return s3Refusal(p);
    return null;
  },
  uniqueErrors: {
    backup_policies_environment_key: ['environmentId', 'This environment has a policy already: change it, or give a herd its own.'],
    backup_policies_herd_key: ['herdId', 'This herd has a policy of its own already.'],
  },
});
