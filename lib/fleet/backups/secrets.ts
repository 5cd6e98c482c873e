// A repository's secrets (its cipher passphrase and S3 keys), read from the files PGHERD_PG_CONFIG names, by
// the worker only and only when a step writes pgBackRest's configuration: the web process plans with the
// file names (is one configured?) and never holds a secret. A herd's own files (`backup.herds.<herd>`) are
// used for its stanza in place of its environment's, so a superuser of one herd, who can read the
// configuration pgherd wrote on its members, holds that herd's keys and no other's.
import { readFileSync } from 'node:fs';
import { pgAccessConfig, type BackupConfig, type BackupCredentialFiles } from '@/lib/fleet/pg-access';
import type { BackupSecrets, S3Repository } from './tool';

let readsSecrets = false;

/** The worker process says so at start: the one process where backup secrets are read. */
export function readBackupSecretsInThisProcess(): void {
  readsSecrets = true;
}

/** The environment's own backup entry (never `default`'s: it may hold none). */
export function backupConfigOf(environment: string, config = pgAccessConfig()): BackupConfig | null {
  return config.environments.get(environment)?.backup ?? null;
}

/** The files a herd's stanza takes its secrets from: the herd's own where given, else its environment's. */
export function credentialFilesOf(
  environment: string,
  herd: string,
  config = pgAccessConfig(),
): BackupCredentialFiles & { s3KeyType: 'shared' | 'auto' } {
  const b = backupConfigOf(environment, config);
  if (!b) return { s3KeyType: 'shared' };
  const own = b.herds[herd] ?? {};
  const keys = own.s3KeyFile ? own : b;
  return {
    cipherPassFile: own.cipherPassFile ?? b.cipherPassFile,
    s3KeyFile: keys.s3KeyFile,
    s3SecretFile: keys.s3SecretFile,
    s3KeyType: b.s3KeyType,
  };
}

/** Where the environment's S3 repositories are, as the configuration says (null: none configured). */
export function s3PlaceOf(environment: string, config = pgAccessConfig()): S3Repository | null {
  const s3 = backupConfigOf(environment, config)?.s3;
  if (!s3) return null;
  return {
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    region: s3.region,
    connectHost: s3.connectHost ?? '',
    port: s3.port,
    caFile: s3.caFile ?? '',
  };
}

function readSecret(file: string | undefined): string | null {
  if (!file) return null;
  const v = readFileSync(/*turbopackIgnore: true*/ file, 'utf8').replace(/\r?\n$/, '');
  if (!v) throw new Error(`${file} is empty`);
  return v;
}

/** The secrets of a herd's stanza, read now (the worker only: anywhere else this throws). */
export function readBackupSecrets(environment: string, herd: string, config = pgAccessConfig()): BackupSecrets {
  if (!readsSecrets) throw new Error('backup secrets are read by the worker only, and this process is not the worker');
  const f = credentialFilesOf(environment, herd, config);
  try {
    return {
      cipherPass: readSecret(f.cipherPassFile),
      s3Key: readSecret(f.s3KeyFile),
      s3Secret: readSecret(f.s3SecretFile),
      s3KeyType: f.s3KeyType,
    };
  } catch (err) {
    throw new Error(`PGHERD_PG_CONFIG: environments.${environment}.backup: ${(err as Error).message}`);
  }
}
