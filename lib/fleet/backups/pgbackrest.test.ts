// pgBackRest's files and listing as pgherd makes and reads them: values that could start another
// option or run a shell command are refused, secrets go only where pgBackRest needs them, and the
// listing's 64-bit system identifier survives JSON.
import { describe, expect, it } from 'vitest';
import { archiveCommand, memberConfig, parseInfo, repoConfig, stanzaOf } from './pgbackrest';
import type { AppliedPolicy, BackupMember } from './tool';

const policy: AppliedPolicy = {
  tool: 'pgbackrest',
  repoKind: 'posix',
  repoHost: { hostname: 'backup-1', ssh: { host: '10.0.0.9', port: 22, username: 'postgres', hostKeyFingerprint: 'SHA256:x' } },
  repoPath: '/var/lib/pgbackrest',
  s3: null,
  retentionFull: 2,
  compressType: 'zst',
  encrypt: true,
  fromStandby: true,
  archiveTimeoutSeconds: 60,
};
const member = (n: number): BackupMember => ({
  label: `db-${n}:5432`,
  host: `10.0.0.${n}`,
  sshPort: 22,
  sshUser: 'postgres',
  port: 5432,
  dataDirectory: '/var/lib/postgresql/15/main',
  socketDirectory: '/var/run/postgresql',
});
const secrets = { cipherPass: 'pass-phrase', s3Key: null, s3Secret: null };

describe('pgBackRest configuration', () => {
  it('a member knows its backup host, not the passphrase; the backup host knows every member and the passphrase', () => {
    const m = memberConfig(policy, 'prod-billing', member(1), secrets);
    expect(m).toContain('repo1-host=10.0.0.9');
    expect(m).toContain('[prod-billing]\npg1-path=/var/lib/postgresql/15/main');
    expect(m).not.toContain('pass-phrase');
    const r = repoConfig(policy, 'prod-billing', [member(1), member(2)], secrets);
    expect(r).toContain('repo1-cipher-pass=pass-phrase');
    expect(r).toContain('pg2-host=10.0.0.2');
    expect(r).toContain('backup-standby=y');
    // A backup never expires by count alone: pgherd's own expire step keeps the time floor.
    expect(r).toContain('expire-auto=n');
    // One member: there is no replica to read from.
    expect(repoConfig(policy, 's', [member(1)], secrets)).toContain('backup-standby=n');
  });

  it('refuses a value that would start another line, and an encrypted repository without a passphrase', () => {
    expect(() => memberConfig(policy, 's', { ...member(1), dataDirectory: '/data\nrepo1-path=/tmp' }, secrets)).toThrow(
      /control characters/,
    );
    expect(() => repoConfig(policy, 's', [member(1)], { ...secrets, cipherPass: null })).toThrow(/passphrase/);
  });

  it('archive_command takes no path a shell would read as more than a path', () => {
    expect(archiveCommand('/var/lib/postgresql/15/main', 'prod-billing')).toBe(
      'pgbackrest --config=/var/lib/postgresql/15/pgbackrest/pgbackrest.conf --stanza=prod-billing archive-push %p',
    );
    // The configuration sits beside the data directory: its parent goes into the command.
    for (const bad of ['/data;rm -rf ~/main', '/$(id)/main', '/da ta/main', "/q'x/main"])
      expect(() => archiveCommand(bad, 'prod-billing')).toThrow(/cannot go into archive_command/);
    expect(stanzaOf('prod env', 'bill;ing')).toBe('prod_env-bill_ing');
  });
});

describe('pgbackrest info', () => {
  const text = `[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000005","min":"000000010000000000000001"}],
    "backup":[{"archive":{"start":"000000010000000000000003","stop":"000000010000000000000003"},"database":{"id":1,"repo-key":1},"error":false,
    "info":{"delta":23058088,"repository":{"delta":2837920,"size":2837920},"size":23058088},"label":"20261125-205935F",
    "lsn":{"start":"0/3000028","stop":"0/3000100"},"prior":null,"reference":null,"timestamp":{"start":1795640375,"stop":1795640377},"type":"full"}],
    "cipher":"aes-256-cbc","db":[{"id":1,"repo-key":1,"system-id":7712216673620587554,"version":"15"}],"name":"s1",
    "repo":[{"cipher":"aes-256-cbc","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"message":"ok"}}]`;

  it('reads each backup, the archive range, and the system identifier exactly', () => {
    const l = parseInfo(text, 's1');
    expect(l.systemIdentifier).toBe('7712216673620587554');
    expect(l.archive).toEqual({ min: '000000010000000000000001', max: '000000010000000000000005' });
    expect(l.backups).toEqual([
      expect.objectContaining({
        label: '20261125-205935F',
        type: 'full',
        sizeBytes: 23058088,
        repoSizeBytes: 2837920,
        lsnStart: '0/3000028',
        walStop: '000000010000000000000003',
        startedAt: new Date(1795640375 * 1000),
      }),
    ]);
  });

  it('says which stanza it could not find, and what it read when it is not JSON', () => {
    expect(() => parseInfo(text, 'other')).toThrow(/does not list stanza other/);
    expect(() => parseInfo('ERROR: [055]: unable to load info file', 's1')).toThrow(/did not answer JSON: ERROR: \[055\]/);
  });
});
