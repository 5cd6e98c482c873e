// The backup repositories' secrets: per environment (never `default`'s), per herd where given, read from their
// files by the worker alone and never while PGHERD_PG_CONFIG is parsed (the web process parses it too).
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePgAccess } from '@/lib/fleet/pg-access';
import { memberConfig } from './pgbackrest';
import { credentialFilesOf, readBackupSecrets, readBackupSecretsInThisProcess, s3PlaceOf } from './secrets';
import type { AppliedPolicy } from './tool';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgherd-secrets-'));
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, `${text}\n`, { mode: 0o600 });
  return f;
};
const envCipher = file('prod.cipher', 'environment-passphrase');
const envKey = file('prod.key', 'ENVKEY');
const envSecret = file('prod.secret', 'env-secret');
const ordersCipher = file('orders.cipher', 'orders-passphrase');
const ordersKey = file('orders.key', 'ORDERSKEY');
const ordersSecret = file('orders.secret', 'orders-secret');
const s3 = { bucket: 'prod-backups', endpoint: 's3.eu-west-1.amazonaws.com', region: 'eu-west-1' };
const json = {
  environments: {
    prod: {
      user: 'pgherd',
      backup: {
        cipherPassFile: envCipher,
        s3KeyFile: envKey,
        s3SecretFile: envSecret,
        s3,
        herds: { orders: { cipherPassFile: ordersCipher, s3KeyFile: ordersKey, s3SecretFile: ordersSecret } },
      },
    },
    roles: { user: 'pgherd', backup: { cipherPassFile: envCipher, s3KeyType: 'auto', s3 } },
  },
};

describe('backup secrets', () => {
  it('refuses a backup block in default: it would hand one environment\u2019s keys to every environment not listed', () => {
    expect(() => parsePgAccess({ default: { user: 'u', backup: { cipherPassFile: envCipher } } })).toThrow(
      /default\.backup: no backup block in default/,
    );
    // default still serves connections to environments not listed.
    expect(parsePgAccess({ default: { user: 'u' } }).fallback?.backup).toBeNull();
  });

  it('are not read when PGHERD_PG_CONFIG is parsed (the web process parses it): only the file names are kept', () => {
    const read: string[] = [];
    const config = parsePgAccess(json, (f) => {
      read.push(f);
      return '';
    });
    expect(read).toEqual([]);
    expect(JSON.stringify(config.environments.get('prod'))).not.toMatch(/environment-passphrase|env-secret|orders-/);
  });

  it('are read by the worker only: elsewhere the read throws, saying so', () => {
    const config = parsePgAccess(json);
    expect(() => readBackupSecrets('prod', 'billing', config)).toThrow(/read by the worker only/);
    readBackupSecretsInThisProcess();
    expect(readBackupSecrets('prod', 'billing', config)).toEqual({
      cipherPass: 'environment-passphrase',
      s3Key: 'ENVKEY',
      s3Secret: 'env-secret',
      s3KeyType: 'shared',
    });
  });

  it('a herd with its own files gets them, and its member\u2019s configuration holds no other herd\u2019s', () => {
    const config = parsePgAccess(json);
    readBackupSecretsInThisProcess();
    const own = readBackupSecrets('prod', 'orders', config);
    expect(own).toEqual({ cipherPass: 'orders-passphrase', s3Key: 'ORDERSKEY', s3Secret: 'orders-secret', s3KeyType: 'shared' });
    const policy: AppliedPolicy = {
      tool: 'pgbackrest',
      repoKind: 's3',
      repoHost: null,
      repoPath: '/pgbackrest',
      s3: s3PlaceOf('prod', config),
      retentionFull: 2,
      compressType: 'zst',
      encrypt: true,
      fromStandby: false,
      archiveTimeoutSeconds: 60,
    };
    const m = {
      label: 'db-1',
      host: '10.0.0.1',
      sshPort: 22,
      sshUser: 'postgres',
      port: 5432,
      dataDirectory: '/d/data',
      socketDirectory: '/run',
    };
    const text = memberConfig(policy, 'prod-orders', m, own);
    expect(text).toContain('repo1-s3-key=ORDERSKEY');
    expect(text).toContain('repo1-cipher-pass=orders-passphrase');
    expect(text).not.toMatch(/ENVKEY|env-secret|environment-passphrase/);
    // An environment that says "auto" (the hosts' instance role): no key is written anywhere.
    const auto = memberConfig(policy, 'roles-x', m, readBackupSecrets('roles', 'x', config));
    expect(auto).toContain('repo1-s3-key-type=auto');
    expect(auto).not.toContain('repo1-s3-key=');
  });

  it('an S3 repository is where the configuration says, and always encrypted', () => {
    const config = parsePgAccess(json);
    expect(s3PlaceOf('prod', config)).toEqual({ ...s3, connectHost: '', port: 443, caFile: '' });
    expect(s3PlaceOf('other', config)).toBeNull();
    expect(credentialFilesOf('other', 'x', config)).toEqual({ s3KeyType: 'shared' });
    const policy = {
      tool: 'pgbackrest' as const,
      repoKind: 's3' as const,
      repoHost: null,
      repoPath: '/p',
      s3: s3PlaceOf('prod', config),
      retentionFull: 1,
      compressType: 'zst' as const,
      encrypt: false,
      fromStandby: false,
      archiveTimeoutSeconds: 60,
    };
    const m = { label: 'db-1', host: 'h', sshPort: 22, sshUser: 'postgres', port: 5432, dataDirectory: '/d/data', socketDirectory: '/run' };
    expect(() => memberConfig(policy, 's', m, { cipherPass: null, s3Key: 'k', s3Secret: 's' })).toThrow(/always encrypted/);
    expect(() => parsePgAccess({ environments: { p: { user: 'u', backup: { s3: { ...s3, endpoint: 'evil host; rm' } } } } })).toThrow(
      /environments\.p\.backup\.s3\.endpoint/,
    );
  });
});
