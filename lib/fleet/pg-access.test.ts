import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { accessFor, parsePgAccess, pgAccessConfig } from '@/lib/fleet/pg-access';

const files: Record<string, string> = { '/ca.pem': 'CA', '/pw': 'secret\n', '/empty': '\n', '/c.pem': 'CERT', '/c.key': 'KEY' };
const read = (f: string) => {
  if (!(f in files)) throw new Error(`ENOENT: ${f}`);
  return files[f]!;
};
const parse = (json: unknown) => parsePgAccess(json, read);

describe('PGHERD_PG_CONFIG', () => {
  it('refuses a password that would go without TLS verifying the server (inline, from a file, and for PgBouncer)', () => {
    expect(() => parse({ environments: { production: { user: 'pgherd', password: 'x' } } })).toThrow(
      'environments.production: a password is only sent over TLS that verifies the server\'s certificate: set tls.mode to "verify-full"',
    );
    expect(() => parse({ environments: { production: { user: 'pgherd', passwordFile: '/pw', tls: { mode: 'disable' } } } })).toThrow(
      'verify-full',
    );
    expect(() => parse({ default: { user: 'pgherd', pgbouncer: { password: 'x' } } })).toThrow(
      'default.pgbouncer: a password is only sent over TLS',
    );
  });

  it("refuses a password for a server verified by the system's CAs only (Postgres, PgBouncer and Patroni alike): a CA must be named", () => {
    expect(() => parse({ environments: { p: { user: 'u', password: 'x', tls: { mode: 'verify-full' } } } })).toThrow(
      'environments.p: a password is only sent to a server whose certificate a CA you name signed',
    );
    expect(() => parse({ default: { user: 'u', pgbouncer: { password: 'x', tls: { mode: 'verify-full' } } } })).toThrow(
      'default.pgbouncer: a password is only sent to a server whose certificate a CA you name signed',
    );
    expect(() => parse({ default: { user: 'u', patroni: { user: 'r', password: 'x' } } })).toThrow(/default.patroni: .*set caFile/);
    // Without a password, the system's CAs still verify a server (certificate authentication, say).
    expect(() => parse({ default: { user: 'u', tls: { mode: 'verify-full' } } })).not.toThrow();
  });

  it('refuses what it cannot use as written: unknown keys, half a client certificate, a relative path, two passwords, an empty password file', () => {
    expect(() => parse({ environments: { p: { user: 'u', sslmode: 'require' } } })).toThrow('Unrecognized key');
    expect(() => parse({ environments: { p: { user: 'u', tls: { mode: 'verify-full', certFile: '/c.pem' } } } })).toThrow(
      'give both certFile and keyFile, or neither',
    );
    expect(() => parse({ environments: { p: { user: 'u', passwordFile: 'pw', tls: { mode: 'verify-full' } } } })).toThrow(
      'an absolute path',
    );
    expect(() => parse({ environments: { p: { user: 'u', password: 'a', passwordFile: '/pw', tls: { mode: 'verify-full' } } } })).toThrow(
      'not both',
    );
    expect(() =>
      parse({ environments: { p: { user: 'u', passwordFile: '/empty', tls: { mode: 'verify-full', caFile: '/ca.pem' } } } }),
    ).toThrow('environments.p: /empty is empty');
    expect(() => parse({ environments: { p: { user: 'u\nx' } } })).toThrow('no control characters');
  });

  it('gives each environment its own user, password and verified TLS; others the default, or nothing', () => {
    const cfg = parse({
      environments: {
        production: {
          user: 'pgherd_prod',
          passwordFile: '/pw',
          tls: { mode: 'verify-full', caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/c.key' },
        },
        staging: { user: 'pgherd_stg' },
      },
    });
    expect(accessFor('production', cfg).postgres).toEqual({
      user: 'pgherd_prod',
      password: 'secret',
      tls: { rejectUnauthorized: true, ca: 'CA', cert: 'CERT', key: 'KEY' },
    });
    expect(accessFor('staging', cfg).postgres).toEqual({ user: 'pgherd_stg', password: null, tls: null });
    expect(() => accessFor('qa', cfg)).toThrow('no Postgres credentials for environment "qa" in PGHERD_PG_CONFIG (and no "default")');
    const withDefault = parse({ default: { user: 'observer' } });
    expect(accessFor('qa', withDefault).postgres.user).toBe('observer');
  });

  it("takes Patroni's REST credentials per environment: a user and a password (inline or from a file), a CA to verify the members with", () => {
    const cfg = parse({
      environments: {
        production: { user: 'pgherd', patroni: { user: 'pgherd-rest', passwordFile: '/pw', caFile: '/ca.pem' } },
        staging: { user: 'pgherd' },
      },
    });
    expect(accessFor('production', cfg).patroni).toEqual({
      user: 'pgherd-rest',
      password: 'secret',
      next: [],
      caFile: '/ca.pem',
      configFile: '/etc/patroni/patroni.yml',
    });
    expect(accessFor('staging', cfg).patroni).toBeNull();
    expect(() => parse({ default: { user: 'u', patroni: { user: 'rest' } } })).toThrow('default.patroni: give password or passwordFile');
    expect(() => parse({ default: { user: 'u', patroni: { user: 'a:b', password: 'x' } } })).toThrow('no colon');
    expect(() => parse({ default: { user: 'u', patroni: { user: 'r', password: 'x', caFile: 'ca.pem' } } })).toThrow('an absolute path');
    expect(() => parse({ default: { user: 'u', patroni: { user: 'r', password: 'x', insecure: true } } })).toThrow('Unrecognized key');
    // Where each member's patroni.yml is: an absolute path, or one under its data directory; nothing a shell would read.
    const at = (configFile: string) => () =>
      parse({ default: { user: 'u', patroni: { user: 'r', password: 'x', caFile: '/ca', configFile } } });
    expect(at('{data_directory}/../patroni.yml')).not.toThrow();
    expect(at('patroni.yml')).toThrow('an absolute path, or one under {data_directory}');
    expect(at('/etc/patroni/$(reboot).yml')).toThrow('an absolute path, or one under {data_directory}');
  });

  describe('without a file', () => {
    const saved = { ...process.env };
    afterEach(() => {
      for (const k of ['PGHERD_PG_CONFIG', 'PGHERD_PG_USER', 'PGHERD_PG_PASSWORD', 'PGHERD_PGBOUNCER_PASSWORD']) {
        if (saved[k] === undefined) Reflect.deleteProperty(process.env, k);
        else process.env[k] = saved[k];
      }
    });

    it('connects as PGHERD_PG_USER without a password; PGHERD_PG_PASSWORD and PGHERD_PGBOUNCER_PASSWORD (sent in clear before) are refused, saying where a password goes now', () => {
      delete process.env.PGHERD_PG_CONFIG;
      process.env.PGHERD_PG_USER = 'observer';
      expect(accessFor('anything').postgres).toEqual({ user: 'observer', password: null, tls: null });
      process.env.PGHERD_PG_PASSWORD = 'hunter2';
      expect(() => pgAccessConfig()).toThrow('PGHERD_PG_PASSWORD is not read any more: a password is only sent over TLS');
      delete process.env.PGHERD_PG_PASSWORD;
      process.env.PGHERD_PGBOUNCER_PASSWORD = 'hunter2';
      expect(() => pgAccessConfig()).toThrow('PGHERD_PGBOUNCER_PASSWORD is not read any more');
    });

    it('names the file when it cannot be read or parsed', () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'pgherd-access-'));
      process.env.PGHERD_PG_CONFIG = path.join(dir, 'missing.json');
      expect(() => pgAccessConfig()).toThrow(`PGHERD_PG_CONFIG: cannot read ${dir}/missing.json`);
      writeFileSync(path.join(dir, 'bad.json'), '{"environments": {"p": {"user": "u", "password": "x"}}}');
      process.env.PGHERD_PG_CONFIG = path.join(dir, 'bad.json');
      expect(() => pgAccessConfig()).toThrow('verify-full');
    });
  });
});
