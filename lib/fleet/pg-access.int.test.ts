// pgherd's connections to the fleet, against servers that are not what they claim: who it connects as
// in each environment, over what, and what a server that is not the one at the address gets from it
// (never the password).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { readLab, type LabInfo } from '@/lib/lab/lab';
import { labIdentity, mkdirOwned } from '@/lib/lab/proc';
import { issueCertificate, makeCa } from '@/lib/lab/tls';
import { startImpostor, type Impostor } from '@/lib/testing/pg-impostor';
import { observe } from '@/lib/fleet/observe';
import { instanceClient } from '@/lib/fleet/pg-access';
import { query } from '@/lib/lab/postgres';
import { metrics } from '@/lib/adapters/metrics/registry';
import { scramCacheCounts } from '@/lib/fleet/scram-cache';

let lab: LabInfo;
let dir: string;
const impostors: Impostor[] = [];
const savedConfig = process.env.PGHERD_PG_CONFIG;

beforeAll(() => {
  lab = readLab(inject('labFile'));
  dir = path.join(lab.dir, `access-test-${process.pid}`);
  mkdirOwned(labIdentity(), dir, 0o755);
});
afterEach(async () => {
  process.env.PGHERD_PG_CONFIG = savedConfig;
  delete process.env.PGPASSWORD;
  await Promise.all(impostors.splice(0).map((i) => i.close()));
});
afterAll(() => {
  process.env.PGHERD_PG_CONFIG = savedConfig;
});

// An address on loopback no lab server uses: where a host that is not the real one answers.
const STRANGER = '127.0.1.236';
const production = () => lab.instances.find((i) => i.environment === 'production' && i.herd === 'billing' && i.role === 'primary')!;
const staging = () => lab.instances.find((i) => i.environment === 'staging' && i.herd === 'billing' && i.role === 'primary')!;
const password = (env: string) => lab.pgAccess!.roles[env]!.password;

async function who(e: { host: string; port: number; serverEnvironment: string }) {
  const c = instanceClient(e, { connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query('SELECT current_user AS "user", s.ssl, s.version FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()')).rows[0];
  } finally {
    await c.end();
  }
}

async function impostor(tls?: 'lab-ca' | 'copied' | 'other-ca', ask?: 'cleartext' | 'md5') {
  let cert: { cert: string; key: string } | undefined;
  if (tls === 'copied') {
    // The real production primary's certificate and key, copied to another host.
    const conf = path.join(lab.dir, 'pg', production().server, 'tls');
    cert = { cert: readFileSync(path.join(conf, 'server.pem'), 'utf8'), key: readFileSync(path.join(conf, 'server.key'), 'utf8') };
  } else if (tls) {
    const id = labIdentity();
    const ca = tls === 'lab-ca' ? lab.tls! : await makeCa(id, path.join(dir, 'other-ca'), 'not the lab CA');
    const issued = await issueCertificate(id, ca, path.join(dir, tls), 'stranger', { ips: [STRANGER], names: [] });
    cert = { cert: readFileSync(issued.certFile, 'utf8'), key: readFileSync(issued.keyFile, 'utf8') };
  }
  const i = await startImpostor(STRANGER, { tls: cert, ask });
  impostors.push(i);
  return i;
}

describe('connections to the fleet', () => {
  it("resolve no unqualified name to another role's object: a database's owner who set its search_path gets nothing run as pgherd", async () => {
    const s = staging();
    const su = (db: string) => s.dsn.replace(/\/postgres(\?|$)/, `/${db}$1`);
    const isSuper = async () =>
      (await query<{ s: boolean }>(s.dsn, "SELECT rolsuper AS s FROM pg_roles WHERE rolname = 'mallory_sp'"))[0]!.s;
    await query(s.dsn, 'CREATE ROLE mallory_sp LOGIN');
    await query(s.dsn, 'CREATE DATABASE appdb_sp OWNER mallory_sp');
    try {
      // As the database's owner could: a schema of its own first in the database's search_path, with a view
      // shadowing a catalog view and a function that makes its owner a superuser when whoever reads it is one.
      await query(
        su('appdb_sp'),
        `SET ROLE mallory_sp;
         CREATE SCHEMA evil;
         CREATE FUNCTION evil.pwn() RETURNS text LANGUAGE plpgsql AS $$BEGIN ALTER ROLE mallory_sp SUPERUSER; RETURN 'x'; END$$;
         CREATE VIEW evil.pg_sequences AS SELECT evil.pwn() AS schemaname, 'x'::text AS sequencename;
         ALTER DATABASE appdb_sp SET search_path = evil, pg_catalog;
         RESET ROLE;`,
      );
      const c = instanceClient({ host: s.address, port: s.port, serverEnvironment: 'staging' }, { database: 'appdb_sp' });
      await c.connect();
      try {
        expect((await c.query<{ p: string }>("SELECT current_setting('search_path') AS p")).rows[0]!.p).toBe('pg_catalog,pg_temp');
        await c.query('SELECT schemaname, sequencename FROM pg_sequences');
      } finally {
        await c.end();
      }
      expect(await isSuper()).toBe(false);
    } finally {
      await query(s.dsn, 'DROP DATABASE IF EXISTS appdb_sp WITH (FORCE)');
      await query(s.dsn, 'DROP ROLE IF EXISTS mallory_sp');
    }
  });

  it("connect to each environment as its own role, over TLS whose certificate was verified; one environment's role is refused by the other's instances", async () => {
    const p = production();
    const s = staging();
    expect(await who({ host: p.address, port: p.port, serverEnvironment: 'production' })).toMatchObject({
      user: 'pgherd_production',
      ssl: true,
    });
    expect(await who({ host: s.address, port: s.port, serverEnvironment: 'staging' })).toMatchObject({ user: 'pgherd_staging', ssl: true });
    // The production credentials at a staging address: the role is not there (nor its password).
    const crossed = await observe({ host: s.address, port: s.port, serverEnvironment: 'production' });
    expect(crossed).toMatchObject({ reachable: false, error: 'role "pgherd_production" does not exist' });
    // Not a fence: only a refused connection is.
    expect(crossed.refused).toBeFalsy();
  });

  it("log in again to an instance without computing SCRAM's salted password again, and compute it anew once the password changed", async () => {
    const s = staging();
    const at = { host: s.address, port: s.port, serverEnvironment: 'staging' };
    await who(at);
    const before = scramCacheCounts();
    expect(await who(at)).toMatchObject({ user: 'pgherd_staging', ssl: true });
    const after = scramCacheCounts();
    expect(after.derived - before.derived).toBe(0);
    expect(after.reused - before.reused).toBe(1);
    // The same password set again: the server draws a new salt, so what was kept no longer fits.
    const verifier = async () =>
      (await query<{ v: string }>(s.dsn, "SELECT rolpassword AS v FROM pg_authid WHERE rolname = 'pgherd_staging'"))[0]!.v;
    const old = await verifier();
    await query(s.dsn, `ALTER ROLE pgherd_staging PASSWORD '${password('staging').replaceAll("'", "''")}'`);
    expect(await verifier()).not.toBe(old);
    const mid = scramCacheCounts();
    expect(await who(at)).toMatchObject({ user: 'pgherd_staging', ssl: true });
    const changed = scramCacheCounts();
    expect(changed.derived - mid.derived).toBe(1);
    expect(changed.reused - mid.reused).toBe(0);
  });

  it("give a server without TLS, or whose certificate is not the address's (another CA, or a real one copied), nothing: no password, not even asked", async () => {
    for (const kind of [undefined, 'other-ca', 'copied'] as const) {
      const i = await impostor(kind);
      const o = await observe({ host: i.host, port: i.port, serverEnvironment: 'production' });
      expect(o.reachable, String(kind)).toBe(false);
      expect(o.refused, String(kind)).toBeFalsy();
      expect(o.error, String(kind)).toMatch(
        kind === undefined
          ? /does not support SSL/
          : kind === 'other-ca'
            ? /self.signed|unable to verify|unable to get local issuer/
            : /IP: 127\.0\.1\.236 is not in the cert's list/,
      );
      expect(i.received().includes(password('production')), String(kind)).toBe(false);
      // Not even the startup message (user name, database): the client stopped at the SSL request.
      expect(i.received().includes('pgherd_production'), String(kind)).toBe(false);
    }
  });

  it('give a server the CA signed for its address no password when it asks in clear text or for MD5: closed, recorded, nothing sent', async () => {
    for (const ask of ['cleartext', 'md5'] as const) {
      const i = await impostor('lab-ca', ask);
      const refusedBefore = (await metrics().weakAuthRefused.get()).values.find((v) => v.labels.method === ask)?.value ?? 0;
      const o = await observe({ host: i.host, port: i.port, serverEnvironment: 'production' }, 3000);
      expect(o.reachable, ask).toBe(false);
      expect(o.error, ask).toBe(
        `${STRANGER}:${i.port} asked for the password ${ask === 'md5' ? 'as an MD5 hash' : 'by cleartext'}: pgherd gives passwords only through SCRAM; nothing was sent`,
      );
      // It got as far as the startup message over verified TLS (the request was made), and no further.
      expect(i.received().includes('pgherd_production'), ask).toBe(true);
      expect(i.received().includes(password('production')), ask).toBe(false);
      expect(i.received().includes('md5'), ask).toBe(false);
      const refusedAfter = (await metrics().weakAuthRefused.get()).values.find((v) => v.labels.method === ask)?.value ?? 0;
      expect(refusedAfter, ask).toBe(refusedBefore + 1);
    }
  });

  it('answer a password request with an error where none is configured: never PGPASSWORD, never in clear', async () => {
    const file = path.join(dir, 'no-password.json');
    writeFileSync(file, JSON.stringify({ default: { user: 'observer' } }));
    process.env.PGHERD_PG_CONFIG = file;
    process.env.PGPASSWORD = 'from-the-environment';
    const i = await impostor();
    const o = await observe({ host: i.host, port: i.port, serverEnvironment: 'production' });
    expect(o).toMatchObject({
      reachable: false,
      error: `${STRANGER}:${i.port} asked for a password; pgherd has none configured for it (PGHERD_PG_CONFIG)`,
    });
    expect(i.received().includes('from-the-environment')).toBe(false);
    // It did get as far as the startup message (this is the no-TLS configuration): the request was refused, not missed.
    expect(i.received().includes('observer')).toBe(true);
  });

  it('connect nowhere for an environment the configuration does not name (no default): the reason, never a fence', async () => {
    const o = await observe({ host: production().address, port: production().port, serverEnvironment: 'qa' });
    expect(o).toEqual({ reachable: false, error: 'no Postgres credentials for environment "qa" in PGHERD_PG_CONFIG (and no "default")' });
  });
});
