import { describe, expect, it } from 'vitest';
import type { PoolerRef } from '@/lib/fleet/herd-ref';
import { Refusal } from '@/lib/fleet/refusal';
import { libpqMajorOf, ruledConninfo } from './libpq-rule';
import { replicationConninfoWith } from './replication-conninfo';
import { consoleConninfo } from './pooler-resume';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const base = {
  caPem: CA,
  caPath: '/var/lib/postgresql/15/main/pgherd-ca.crt',
  password: true,
  channelBinding: true,
  what: 'a subscription',
};
const words = (s: string) => Object.fromEntries([...s.matchAll(/(\w+)='((?:[^'\\]|\\.)*)'/g)].map((m) => [m[1], m[2]]));
const refusalOf = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err instanceof Refusal ? err.reason : `not a refusal: ${String(err)}`;
  }
  return 'nothing refused';
};

describe('connection strings written onto a host', () => {
  it('verify the server against the environment\u2019s CA and answer a password only through SCRAM', () => {
    const on17 = words(ruledConninfo({ host: '10.0.0.5', dbname: 'shop' }, { ...base, libpqMajor: 17 }));
    expect(on17).toMatchObject({
      sslmode: 'verify-full',
      sslrootcert: base.caPath,
      channel_binding: 'require',
      require_auth: 'scram-sha-256',
      dbname: 'shop',
    });
    // libpq 13-15 has no require_auth: channel binding alone refuses a password asked for in clear or as MD5.
    const on15 = words(ruledConninfo({ host: '10.0.0.5' }, { ...base, libpqMajor: 15 }));
    expect(on15).toMatchObject({ sslmode: 'verify-full', channel_binding: 'require' });
    expect(on15.require_auth).toBeUndefined();
    expect(refusalOf(() => ruledConninfo({}, { ...base, libpqMajor: 12 }))).toMatch(
      /libpq is 12, which cannot require SCRAM bound to the channel/,
    );
  });

  it('refuses a password without a CA to verify with', () => {
    expect(refusalOf(() => ruledConninfo({}, { ...base, caPem: null, libpqMajor: 17 }))).toMatch(
      /a password goes only over TLS that verifies/,
    );
  });

  it('quotes every value as data: a name with = or a quote stays one value', () => {
    const s = ruledConninfo({ dbname: "host=127.0.0.1 dbname=x' sslmode='disable" }, { ...base, libpqMajor: 17 });
    expect(words(s).dbname).toBe("host=127.0.0.1 dbname=x\\' sslmode=\\'disable");
    expect(words(s).sslmode).toBe('verify-full');
  });

  it('reads the major of psql --version', () => {
    expect(libpqMajorOf('psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)')).toBe(15);
    expect(libpqMajorOf('psql (PostgreSQL) 17.6')).toBe(17);
    expect(libpqMajorOf('command not found')).toBeNull();
  });
});

describe('the armed PgBouncer RESUME', () => {
  const p: PoolerRef = {
    id: 1,
    herdId: 1,
    label: 'pool-1:6432',
    host: '10.0.0.9',
    port: 6432,
    adminUser: 'pgbouncer',
    configFile: '/etc/pgbouncer/pgbouncer.ini',
    databases: ['shop'],
    ssh: { host: '10.0.0.9', port: 22, username: 'postgres', hostKeyFingerprint: null },
    serverEnvironmentId: 1,
    serverEnvironment: 'prod',
  };
  const tls = { rejectUnauthorized: true, ca: CA };

  it('verifies the pooler\u2019s certificate against the environment\u2019s CA, never sslmode=prefer', () => {
    const s = words(consoleConninfo(p, { libpqMajor: 16, caPath: '/home/postgres/.pgherd/ca-1.crt' }, { password: 'pw', tls }));
    expect(s).toMatchObject({ sslmode: 'verify-full', sslrootcert: '/home/postgres/.pgherd/ca-1.crt', require_auth: 'scram-sha-256' });
    // PgBouncer binds no channel to SCRAM: requiring it would fail every RESUME.
    expect(s.channel_binding).toBeUndefined();
  });

  it('refuses, saying why, where the host\u2019s libpq cannot refuse a password asked for in clear', () => {
    expect(refusalOf(() => consoleConninfo(p, { libpqMajor: 15, caPath: '/x' }, { password: 'pw', tls }))).toMatch(
      /pool-1:6432: the armed RESUME's connection from its host: the host's libpq is 15, which cannot refuse a password asked for in clear/,
    );
  });

  it('sends no TLS it cannot verify where the environment\u2019s poolers have none, and no password', () => {
    expect(words(consoleConninfo(p, { libpqMajor: 15, caPath: null }, { password: null, tls: null })).sslmode).toBe('disable');
    expect(words(consoleConninfo(p, { libpqMajor: 16, caPath: null }, { password: null, tls: null })).require_auth).toBe('none');
  });
});

describe('replication strings', () => {
  it('verify the upstream against the CA where there is one, quote every value, and hold no password', () => {
    const up = { host: "10.0.0.5' sslmode='disable", port: 5432, serverEnvironment: 'production' };
    const s = replicationConninfoWith(up, { user: 'replicator', application_name: 'db-2' }, '/home/postgres/.pgherd/ca-1.crt');
    expect(s).toBe(
      "host='10.0.0.5\\' sslmode=\\'disable' port='5432' user='replicator' application_name='db-2' sslmode='verify-full' sslrootcert='/home/postgres/.pgherd/ca-1.crt'",
    );
    expect(replicationConninfoWith({ ...up, host: '10.0.0.5' }, { user: 'r' }, null)).toBe("host='10.0.0.5' port='5432' user='r'");
  });
});
