import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePasswordFile } from '@/lib/fleet/pg-access';
import { forgetRotatingPasswords, passwordForSalt, rotatingPassword } from '@/lib/fleet/scram-cache';
import { ownSecretsOf, promoteNext, promotePassword, readPasswordFile, stageNext, stagePassword } from './own-credentials';

const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-own-'));
const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
  forgetRotatingPasswords();
});

function config(environments: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const file = path.join(dir, `pg-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ environments, ...extra }));
  process.env.PGHERD_PG_CONFIG = file;
}
const tls = { mode: 'verify-full', caFile: '/etc/ca.pem' };

describe('a password file while pgherd rotates it', () => {
  it('reads the password in force and the next ones by salt; any other line is not read', () => {
    expect(parsePasswordFile('old-password\n', 'f')).toEqual({ password: 'old-password', next: new Map(), later: [] });
    const r = parsePasswordFile('old-password\nscram-salt:c2FsdHNhbHQ=:new-password\n', 'f');
    expect(r.password).toBe('old-password');
    expect([...r.next]).toEqual([['c2FsdHNhbHQ=', 'new-password']]);
    // Patroni's REST password has no salt: the next one is tried where the one in force is refused.
    expect(parsePasswordFile('old-password\nnext:rest-password\n', 'f').later).toEqual(['rest-password']);
    // Any other line (blank, a comment, a bad staged line) is not read: no environment's access breaks on it.
    expect(parsePasswordFile('old-password\n\n# kept by ops\nnext:\nscram-salt::x\n', 'f')).toEqual({
      password: 'old-password',
      next: new Map(),
      later: [],
    });
    expect(() => parsePasswordFile('\n', '/run/pw')).toThrow('/run/pw is empty');
  });

  it('answers a server by the salt it offers: the next password for its verifier, the one in force for any other', () => {
    const salt = Buffer.from('0123456789abcdef');
    expect(rotatingPassword('old-password', new Map())).toBe('old-password');
    const token = rotatingPassword('old-password', new Map([[salt.toString('base64'), 'new-password']]));
    expect(token).toMatch(/^pgherd-rotating:[0-9a-f]{32}$/);
    expect(passwordForSalt(token, salt)).toBe('new-password');
    expect(passwordForSalt(token, Buffer.from('another salt....'))).toBe('old-password');
    // A password given for a login of its own (the old one too) is never swapped.
    expect(passwordForSalt('old-password', salt)).toBe('old-password');
    forgetRotatingPasswords();
    expect(passwordForSalt(token, salt)).toBe(token);
  });

  it('is staged beside the old one and promoted alone; written 0600', () => {
    const file = path.join(dir, 'staging.password');
    writeFileSync(file, 'an-old-password-of-20\n', { mode: 0o600 });
    const { password, salt } = stagePassword(file);
    expect(readPasswordFile(file).password).toBe('an-old-password-of-20');
    expect(readPasswordFile(file).next.get(salt.toString('base64'))).toBe(password);
    expect(promotePassword(file, salt.toString('base64'))).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(`${password}\n`);
    expect(promotePassword(file, 'bm8gc3VjaCBzYWx0')).toBe(false);
    // A REST password staged beside it, then a SCRAM one: both kept until one is put in force.
    const rest = stageNext(file);
    const again = stagePassword(file);
    expect(readPasswordFile(file)).toEqual({
      password,
      next: new Map([[again.salt.toString('base64'), again.password]]),
      later: [rest, again.password],
    });
    expect(promoteNext(file, rest)).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(`${rest}\n`);
  });

  it('refuses to rotate from a password pgherd could not have set (too short, not printable ASCII)', () => {
    const file = path.join(dir, 'short.password');
    writeFileSync(file, 'short\n');
    expect(() => stagePassword(file)).toThrow(/shorter than 16 characters: pgherd rotates from printable ASCII passwords only/);
    expect(readFileSync(file, 'utf8')).toBe('short\n');
  });
});

describe('what pgherd can rotate of its own in an environment', () => {
  it("is the environment's own files only: a file shared with another environment or the default is refused, saying whose", () => {
    config(
      {
        staging: { user: 'pgherd', passwordFile: '/s/pw', tls },
        production: { user: 'pgherd', passwordFile: '/s/pw', tls },
        qa: { user: 'pgherd', password: 'inline-password', tls },
      },
      { default: { user: 'pgherd', passwordFile: '/d/pw', tls } },
    );
    process.env.PGHERD_SSH_KEYS = JSON.stringify({ staging: '/k/staging', qa: '/k/shared', dev: '/k/shared' });
    process.env.PGHERD_SSH_KEY = '/k/default';
    const staging = ownSecretsOf('staging');
    expect(staging.passwordFile).toBeNull();
    expect(staging.passwordWhyNot).toBe("its password file /s/pw is also production's: give each its own file");
    expect(staging.keyFile).toBe('/k/staging');
    expect(staging.authorizedKeys).toBe('.ssh/authorized_keys');
    const qa = ownSecretsOf('qa');
    expect(qa.passwordWhyNot).toMatch(/written in PGHERD_PG_CONFIG itself/);
    expect(qa.keyWhyNot).toBe("its key file /k/shared is also dev's: give each environment its own");
    const other = ownSecretsOf('other');
    expect(other.passwordWhyNot).toMatch(/no entry for other/);
    expect(other.keyWhyNot).toMatch(/PGHERD_SSH_KEYS lists no key of its own for other/);
  });

  it("knows a file by itself, not its spelling: a symlink or another path to another environment's file is refused", () => {
    const real = path.join(dir, 'prod.pw');
    writeFileSync(real, 'a-production-password\n');
    const link = path.join(dir, 'link.pw');
    symlinkSync(real, link);
    config({ production: { user: 'pgherd', passwordFile: real, tls }, staging: { user: 'pgherd', passwordFile: link, tls } });
    expect(ownSecretsOf('staging').passwordWhyNot).toBe(`its password file ${link} is also production's: give each its own file`);
    config({
      production: { user: 'pgherd', passwordFile: `${dir}//prod.pw`, tls },
      staging: { user: 'pgherd', passwordFile: '/s/pw', tls, patroni: { user: 'r', passwordFile: `${dir}/./prod.pw`, caFile: '/ca' } },
    });
    expect(ownSecretsOf('staging').patroniWhyNot).toMatch(/is also production's/);
  });

  it("takes the hosts' authorized keys file from PGHERD_SSH_AUTHORIZED_KEYS", () => {
    config({ staging: { user: 'pgherd', passwordFile: '/s/pw', tls } });
    process.env.PGHERD_SSH_AUTHORIZED_KEYS = JSON.stringify({ staging: '/etc/ssh/keys/pgherd' });
    expect(ownSecretsOf('staging').authorizedKeys).toBe('/etc/ssh/keys/pgherd');
    process.env.PGHERD_SSH_AUTHORIZED_KEYS = JSON.stringify({ staging: '/etc/ssh/keys/$(reboot)' });
    expect(() => ownSecretsOf('staging')).toThrow(/PGHERD_SSH_AUTHORIZED_KEYS/);
  });
});
