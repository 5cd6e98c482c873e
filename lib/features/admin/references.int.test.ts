// Environment isolation at every reference: a staging operator (signed in against the lab's slapd)
// tries, through the one save path the console's server actions and the API use, to reach production
// through what an object refers to. Each is refused, naming what is missing, and nothing is written.
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, backupPolicies, dnsRecords, environments, herds, instances, parameterGroups, poolers, servers } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { SYSTEM_ACCESS, loadAccess } from '@/lib/engine/access';
import { refusal, refusedAtBoundary } from '@/lib/testing/denials';
import { authenticate } from '@/lib/features/auth/authenticate';
import { ldapConfigSchema } from '@/lib/adapters/ldap/ldap';
import { refreshDnsAction } from '@/lib/actions/topology/refresh-dns.action';
import { planOperation } from '@/lib/engine/plan';
import { lookup } from '@/lib/adapters/dns/rfc2136';
import { deleteObjects, saveObject } from './mutations';
import type { Actor } from '@/lib/engine/access';
import { getEditable } from './registry';

let t: TestDb;
let bob: Actor;
const admin: Actor = { id: null, username: 'admin-test', access: SYSTEM_ACCESS };
const env = new Map<string, number>();
const def = (m: string) => getEditable(m)!;

async function firstOf<T>(q: Promise<T[]>): Promise<T> {
  return (await q)[0]!;
}
const serverIn = (e: string) =>
  firstOf(
    t.db
      .select()
      .from(servers)
      .where(eq(servers.environmentId, env.get(e)!))
      .orderBy(servers.id),
  );
const herdIn = (e: string) =>
  firstOf(
    t.db
      .select()
      .from(herds)
      .where(eq(herds.environmentId, env.get(e)!))
      .orderBy(herds.id),
  );
const count = async (table: typeof instances | typeof poolers | typeof dnsRecords) => t.db.$count(table);

beforeAll(async () => {
  t = await freshDatabase();
  process.env.PGHERD_DNS_CONFIG = t.lab.dns!.configFile;
  await seedLabFleet(t.db, t.lab);
  for (const e of await t.db.select().from(environments)) env.set(e.name, e.id);
  const l = t.lab.ldap!;
  const cfg = ldapConfigSchema.parse({
    urls: [l.url],
    bindDn: l.bindDn,
    bindPassword: l.bindPassword,
    userBase: l.userBase,
    groupBase: l.groupBase,
  });
  const res = await authenticate(t.db, 'bob', l.users.find((u) => u.username === 'bob')!.password, '10.9.0.1', cfg);
  if (!res.ok) throw new Error(res.code);
  bob = {
    id: res.user.id,
    username: 'bob',
    remoteAddr: '10.9.0.1',
    access: { ...(await loadAccess(t.db, res.user.id)), remoteAddr: '10.9.0.1' },
  };
});
afterAll(async () => ifAssigned(t)?.close());

describe('a staging operator reaching production through a reference', () => {
  it('cannot put an instance of a staging herd on a production server', async () => {
    const before = await count(instances);
    const prodServer = await serverIn('production');
    const save = async () =>
      saveObject(
        t.db,
        def('instances'),
        null,
        { herdId: (await herdIn('staging')).id, serverId: prodServer.id, port: 6543, pgVersion: 15, role: 'unknown', state: 'stopped' },
        bob,
      );
    const denials = () =>
      t.db.$count(
        auditEntries,
        sql`${auditEntries.action} = 'access.denied' AND ${auditEntries.username} = 'bob' AND ${auditEntries.remoteAddr} = '10.9.0.1'`,
      );
    const denied = await denials();
    expect(await refusal(save())).toBe(
      `Adding this instance with server ${prodServer.hostname} needs the operator role in production (you have viewer there)`,
    );
    expect(await count(instances)).toBe(before);
    expect(await denials()).toBe(denied);
    // The boundary that answers it (the console's orAnswer, as the save form does) records it once, with where it came from.
    expect(await refusedAtBoundary(t.db, bob, save)).toMatch(/^Adding this instance with server /);
    expect(await denials()).toBe(denied + 1);
  });

  it('cannot put a pooler of a staging herd on a production server', async () => {
    const before = await count(poolers);
    const res = await refusal(
      saveObject(
        t.db,
        def('poolers'),
        null,
        {
          herdId: (await herdIn('staging')).id,
          serverId: (await serverIn('production')).id,
          port: 6432,
          adminUser: 'pgbouncer',
          configFile: '/etc/pgbouncer/pgbouncer.ini',
          databases: 'x',
        },
        bob,
      ),
    );
    expect(res).toMatch(/^Adding this PgBouncer with server .* needs the operator role in production \(you have viewer there\)/);
    expect(await count(poolers)).toBe(before);
  });

  it('cannot give a staging herd a production DNS name, and the zone is unchanged', async () => {
    const before = await count(dnsRecords);
    const name = `orders.production.db.${t.lab.dns!.zone}`;
    const answered = await lookup({ host: t.lab.dns!.server, port: t.lab.dns!.port }, name, 'CNAME');
    const res = await saveObject(
      t.db,
      def('dns-records'),
      null,
      {
        herdId: (await herdIn('staging')).id,
        name: `evil.production.db.${t.lab.dns!.zone}`,
        type: 'CNAME',
        zone: t.lab.dns!.zone,
        provider: 'rfc2136',
        ttl: 30,
        match: 'role',
        matchRole: 'primary',
      },
      bob,
    );
    expect(res).toEqual({
      ok: false,
      fieldErrors: { name: `Evil.production.db.${t.lab.dns!.zone} belongs to production, not to staging.` },
    });
    expect(await count(dnsRecords)).toBe(before);
    expect(await lookup({ host: t.lab.dns!.server, port: t.lab.dns!.port }, name, 'CNAME')).toEqual(answered);
  });

  it('cannot refresh DNS: an admin\u2019s act', async () => {
    await expect(planOperation(t.db, bob.access, refreshDnsAction, [(await herdIn('staging')).id])).rejects.toThrow(
      /^Refresh DNS needs the admin role in staging \(you have operator there\)$/,
    );
  });

  it('cannot move a server between environments', async () => {
    const s = await serverIn('staging');
    const res = await refusal(saveObject(t.db, def('servers'), s.id, { ...s, environmentId: env.get('production')! }, bob));
    expect(res).toMatch(/needs the operator role in production \(you have viewer there\)/);
    expect((await serverIn('staging')).id).toBe(s.id);
  });
});

describe('where pgherd connects to', () => {
  it('changing a server\u2019s address or SSH port or user needs admin; the change is audited old -> new', async () => {
    const s = await serverIn('staging');
    const moved = await refusal(saveObject(t.db, def('servers'), s.id, { ...s, address: '127.0.9.9' }, bob));
    expect(moved).toBe('Changing address of this server needs the admin role in staging (you have operator there)');
    expect((await serverIn('staging')).address).toBe(s.address);
    // What is not where pgherd connects stays an operator's.
    expect(await saveObject(t.db, def('servers'), s.id, { ...s, site: 'dc-moved' }, bob)).toMatchObject({ ok: true });
    expect(await saveObject(t.db, def('servers'), s.id, { ...s, site: 'dc-moved', address: '127.0.9.9' }, admin)).toMatchObject({
      ok: true,
    });
    const [entry] = await t.db
      .select()
      .from(auditEntries)
      .where(
        sql`${auditEntries.objectType} = 'servers' AND ${auditEntries.objectId} = ${String(s.id)} AND ${auditEntries.changes} ? 'address'`,
      );
    expect(entry!.changes.address).toEqual([s.address, '127.0.9.9']);
    await saveObject(t.db, def('servers'), s.id, { ...s }, admin);
    // The host name is where pgherd connects when the address is empty.
    expect(await refusal(saveObject(t.db, def('servers'), s.id, { ...s, hostname: '127.0.1.1' }, bob))).toMatch(
      /^Changing hostname of this server needs the admin role in staging/,
    );
  });

  it('undoing a fence, or calling another member the primary, in the inventory needs admin', async () => {
    const [i] = await t.db
      .select({ i: instances })
      .from(instances)
      .innerJoin(herds, eq(instances.herdId, herds.id))
      .where(and(eq(herds.environmentId, env.get('staging')!), eq(instances.role, 'replica')))
      .limit(1);
    const row = i!.i;
    await t.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, row.id));
    try {
      const values = {
        herdId: row.herdId,
        serverId: row.serverId,
        port: row.port,
        dataDirectory: row.dataDirectory,
        pgVersion: row.pgVersion,
        upstreamInstanceId: row.upstreamInstanceId ?? '',
      };
      const unfenced = await refusal(saveObject(t.db, def('instances'), row.id, { ...values, role: 'replica', state: 'stopped' }, bob));
      expect(unfenced).toBe('Changing state of this instance needs the admin role in staging (you have operator there)');
      const promoted = await refusal(saveObject(t.db, def('instances'), row.id, { ...values, role: 'primary', state: 'fenced' }, bob));
      expect(promoted).toMatch(/^Changing role of this instance needs the admin role/);
      expect((await t.db.select().from(instances).where(eq(instances.id, row.id)))[0]).toMatchObject({ role: 'replica', state: 'fenced' });
    } finally {
      await t.db.update(instances).set({ state: row.state }).where(eq(instances.id, row.id));
    }
  });
});

describe('what an admin alone gives a new instance', () => {
  it('a staging operator adds one as the refresher will find it; its role, state, Patroni address or group are refused, nothing added', async () => {
    const h = await herdIn('staging');
    const s = await serverIn('staging');
    const [group] = await t.db.insert(parameterGroups).values({ name: 'refs-group', settings: '' }).returning({ id: parameterGroups.id });
    const base = { herdId: h.id, serverId: s.id, port: 6547, pgVersion: 15, role: 'unknown', state: 'stopped' };
    const before = await count(instances);
    for (const [over, field] of [
      [{ role: 'primary' }, 'role'],
      [{ state: 'running' }, 'state'],
      [{ patroniUrl: `https://${s.address}:8008` }, 'patroniUrl'],
      [{ parameterGroupId: String(group!.id) }, 'parameterGroupId'],
    ] as const) {
      expect(await refusal(saveObject(t.db, def('instances'), null, { ...base, ...over }, bob)), field).toBe(
        `Setting ${field} of a new instance needs the admin role in staging (you have operator there)`,
      );
      expect(await count(instances)).toBe(before);
    }
    const added = await saveObject(t.db, def('instances'), null, base, bob);
    expect(added).toMatchObject({ ok: true });
    const [row] = await t.db
      .select()
      .from(instances)
      .where(eq(instances.id, (added as { id: number }).id));
    expect(row).toMatchObject({ role: 'unknown', state: 'stopped', patroniUrl: '', parameterGroupId: null });
    await deleteObjects(t.db, def('instances'), [row!.id], admin);
  });
});

describe('a herd with a backup policy of its own', () => {
  it('cannot move to another environment, even by an admin; without one, it can', async () => {
    const [h] = await t.db
      .insert(herds)
      .values({ name: 'refs-movable', environmentId: env.get('staging')!, controlDriver: 'pg_ctl' })
      .returning();
    const [policy] = await t.db
      .insert(backupPolicies)
      .values({ environmentId: env.get('staging')!, herdId: h!.id, repoKind: 's3', repoPath: '/refs', s3Bucket: 'refs-bucket' })
      .returning({ id: backupPolicies.id });
    const move = () => saveObject(t.db, def('herds'), h!.id, { ...h!, environmentId: env.get('production')! }, admin);
    expect(await move()).toEqual({
      ok: false,
      fieldErrors: {
        environmentId:
          'This herd has a backup policy of its own, which stays in its environment: an admin there deletes it before the herd can move.',
      },
    });
    expect((await t.db.select({ e: herds.environmentId }).from(herds).where(eq(herds.id, h!.id)))[0]!.e).toBe(env.get('staging'));
    await t.db.delete(backupPolicies).where(eq(backupPolicies.id, policy!.id));
    expect(await move()).toMatchObject({ ok: true });
    await t.db.delete(herds).where(eq(herds.id, h!.id));
  });
});

describe('one environment per server and what runs on it, even for an admin', () => {
  it('refuses an instance of a production herd on a staging server, naming both', async () => {
    const s = await serverIn('staging');
    const res = await saveObject(
      t.db,
      def('instances'),
      null,
      { herdId: (await herdIn('production')).id, serverId: s.id, port: 6544, pgVersion: 15, role: 'replica', state: 'stopped' },
      admin,
    );
    expect(res).toEqual({
      ok: false,
      fieldErrors: { serverId: `${s.hostname} is in staging, and this instance in production: they must be in one environment.` },
    });
  });

  it('refuses to move a server, or a herd, away from the environment of what runs on it', async () => {
    const s = await serverIn('staging');
    const moved = await saveObject(t.db, def('servers'), s.id, { ...s, environmentId: env.get('production')! }, admin);
    expect(moved).toMatchObject({
      ok: false,
      fieldErrors: {
        environmentId: expect.stringMatching(
          /^This server runs members or poolers of herds in other environments: staging\/\w+ on port \d+ \(staging\)/,
        ),
      },
    });
    const h = await herdIn('staging');
    const herdMoved = await saveObject(
      t.db,
      def('herds'),
      h.id,
      { ...h, name: `${h.name}-moved`, environmentId: env.get('production')! },
      admin,
    );
    expect(herdMoved).toMatchObject({
      ok: false,
      fieldErrors: { environmentId: expect.stringMatching(/^Members or poolers of this herd run on servers of other environments/) },
    });
    expect((await serverIn('staging')).id).toBe(s.id);
    expect((await herdIn('staging')).id).toBe(h.id);
  });

  it('refuses a DNS name another herd has, and one outside any environment\u2019s part of the zone', async () => {
    const prod = await herdIn('production');
    const [taken] = await t.db.select().from(dnsRecords).where(eq(dnsRecords.herdId, prod.id));
    const other = (
      await t.db
        .select()
        .from(herds)
        .where(eq(herds.environmentId, env.get('production')!))
        .orderBy(herds.id)
    )[1];
    const dup = await saveObject(
      t.db,
      def('dns-records'),
      null,
      {
        herdId: other!.id,
        name: taken!.name,
        type: 'A',
        zone: t.lab.dns!.zone,
        provider: 'rfc2136',
        ttl: 30,
        match: 'role',
        matchRole: 'replica',
      },
      admin,
    );
    expect(dup).toEqual({
      ok: false,
      fieldErrors: { name: `${taken!.name} is already a name of production/${prod.name}: one name, one herd.` },
    });
    const nobody = await saveObject(
      t.db,
      def('dns-records'),
      null,
      {
        herdId: other!.id,
        name: `x.db.${t.lab.dns!.zone}`,
        type: 'CNAME',
        zone: t.lab.dns!.zone,
        provider: 'rfc2136',
        ttl: 30,
        match: 'role',
        matchRole: 'primary',
      },
      admin,
    );
    expect(nobody).toMatchObject({ ok: false, fieldErrors: { name: expect.stringMatching(/belongs to no environment: assign zone/) } });
  });
});

describe('what the referenced rows are, checked before anything is written', () => {
  it('names the field whose row does not exist, and writes nothing', async () => {
    const s = await serverIn('staging');
    const before = await count(instances);
    const res = await saveObject(
      t.db,
      def('instances'),
      null,
      { herdId: 999999, serverId: s.id, port: 6545, pgVersion: 15, role: 'replica', state: 'stopped', upstreamInstanceId: 888888 },
      admin,
    );
    expect(res).toEqual({
      ok: false,
      fieldErrors: { herdId: 'There is no herd with id 999999.', upstreamInstanceId: 'There is no instance with id 888888.' },
    });
    expect(await count(instances)).toBe(before);
  });

  it('refuses a replica streaming from itself or from another herd, and a DNS record following another herd\u2019s member', async () => {
    const h = await herdIn('staging');
    const [member, other] = await Promise.all([
      firstOf(t.db.select().from(instances).where(eq(instances.herdId, h.id)).orderBy(instances.id)),
      firstOf(
        t.db
          .select({ i: instances })
          .from(instances)
          .innerJoin(herds, eq(herds.id, instances.herdId))
          .where(and(eq(herds.environmentId, env.get('staging')!), sql`${instances.herdId} <> ${h.id}`))
          .orderBy(instances.id),
      ),
    ]);
    const asIs = { ...member, dataDirectory: member.dataDirectory };
    const self = await saveObject(t.db, def('instances'), member.id, { ...asIs, upstreamInstanceId: member.id }, admin);
    expect(self).toEqual({ ok: false, fieldErrors: { upstreamInstanceId: 'An instance cannot stream from itself.' } });
    const across = await saveObject(t.db, def('instances'), member.id, { ...asIs, upstreamInstanceId: other.i.id }, admin);
    expect(across).toEqual({
      ok: false,
      fieldErrors: { upstreamInstanceId: `Instance ${other.i.id} is in another herd: a replica streams from a member of its own herd.` },
    });
    const [after] = await t.db.select().from(instances).where(eq(instances.id, member.id));
    expect(after!.upstreamInstanceId).toBe(member.upstreamInstanceId);

    const [record] = await t.db.select().from(dnsRecords).where(eq(dnsRecords.herdId, h.id));
    const follows = await saveObject(
      t.db,
      def('dns-records'),
      record!.id,
      { ...record, match: 'instance', matchInstanceId: other.i.id },
      admin,
    );
    expect(follows).toEqual({
      ok: false,
      fieldErrors: { matchInstanceId: 'This instance is in another herd: a record follows a member of its own herd.' },
    });
    const [unchanged] = await t.db.select().from(dnsRecords).where(eq(dnsRecords.id, record!.id));
    expect(unchanged!.matchInstanceId).toBe(record!.matchInstanceId);
  });
});
