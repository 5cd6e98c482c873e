// The admin declarations against real Postgres: pgherd's database seeded from the running lab fleet.
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, dnsRecords, environments, herds, instances, majorUpgrades, poolers, servers } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { query } from '@/lib/lab/postgres';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';
import { collectForDelete } from './collect';
import { isEditable } from './define-admin';
import { parseListParams } from './list-params';
import { changeList, matchingIds } from './list-query';
import { deleteObjects, saveObject } from './mutations';
import { getAdmin, getEditable } from './registry';
import { SYSTEM_ACCESS } from '@/lib/engine/access';

let t: TestDb;
const admin = (name: string) => getAdmin(name)!;
const editable = (name: string) => getEditable(name)!;
const actor = { id: null, username: 'tester', access: SYSTEM_ACCESS, remoteAddr: '127.0.0.9' };
const list = (model: string, raw: Record<string, string>) =>
  changeList(t.db, admin(model), parseListParams(admin(model), raw, SYSTEM_ACCESS));

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
});
afterAll(async () => ifAssigned(t)?.close());

describe('seeding from the lab', () => {
  it('records each herd with the system identifier its members really share, and their real roles', async () => {
    for (const herd of await t.db.select().from(herds)) {
      const members = t.lab.instances.filter((i) => i.herd === herd.name);
      for (const m of members.filter((x) => x.herd === herd.name && !isOpsTestHerd(x.environment, x.herd))) {
        const { id, rec } = (
          await query<{ id: string; rec: boolean }>(
            m.dsn,
            'SELECT system_identifier::text AS id, pg_is_in_recovery() AS rec FROM pg_control_system()',
          )
        )[0]!;
        if (m.environment === (await t.db.select().from(environments).where(eq(environments.id, herd.environmentId)))[0]!.name) {
          expect(id).toBe(herd.systemIdentifier);
          expect(rec).toBe(m.role === 'replica');
        }
      }
    }
    expect(await t.db.$count(instances)).toBe(t.lab.instances.length);
  });
});

describe('instances changelist', () => {
  it('filters by herd and role and matches the lab', async () => {
    const [herd] = await t.db
      .select({ id: herds.id })
      .from(herds)
      .innerJoin(environments, eq(herds.environmentId, environments.id))
      .where(and(eq(herds.name, 'orders'), eq(environments.name, 'staging')));
    const page = await list('instances', { herd: String(herd!.id), role: 'replica' });
    const expected = t.lab.instances
      .filter((i) => i.environment === 'staging' && i.herd === 'orders' && i.role === 'replica')
      .map((i) => i.server)
      .sort();
    expect(page.total).toBe(2);
    expect(page.rows.map((r) => r.server).sort()).toEqual(expected);
    expect(
      page.rows.every(
        (r) =>
          r.upstream ===
          `${t.lab.instances.find((i) => i.environment === 'staging' && i.herd === 'orders' && i.role === 'primary')!.server}:${String(r.port)}`,
      ),
    ).toBe(true);
  });

  it('counts facets under the other filters', async () => {
    const def = admin('instances');
    const [prod] = await t.db.select().from(environments).where(eq(environments.name, 'production'));
    const f = (await changeList(t.db, def, parseListParams(def, { environment: String(prod!.id), role: 'replica' }, SYSTEM_ACCESS))).facets;
    const role = f.find((x) => x.key === 'role')!;
    expect(role.options).toEqual([
      { value: 'primary', label: 'primary', count: 3 },
      { value: 'replica', label: 'replica', count: 6 },
      { value: 'unknown', label: 'unknown', count: 0 },
    ]);
    const env = f.find((x) => x.key === 'environment')!;
    // staging's count is whatever the operations tests left (they promote in staging/identity): ask the table.
    const [stg] = await t.db.select().from(environments).where(eq(environments.name, 'staging'));
    const stagingReplicas = await t.db.$count(
      instances,
      and(eq(instances.role, 'replica'), sql`${instances.herdId} IN (SELECT id FROM herds WHERE environment_id = ${stg!.id})`),
    );
    expect(env.options.map((o) => [o.label, o.count])).toEqual([
      ['production', 6],
      ['staging', stagingReplicas],
    ]);
    const herd = f.find((x) => x.key === 'herd')!;
    expect(herd.searchable).toBe(true);
    expect(herd.options).toEqual([]); // a searchable facet lists only its selection
  });

  it('sorts by several columns with the id as the last tie-breaker, and pages without overlap', async () => {
    const all = await list('instances', { sort: '-site,server', per: '25' });
    const sites = all.rows.map((r) => r.site as string);
    expect(sites).toEqual([...sites].sort().reverse());
    const a = await list('instances', { sort: 'site', per: '25' });
    const firstTwo = [...a.rows];
    expect(new Set(firstTwo.map((r) => r.__id)).size).toBe(firstTwo.length);
    const p1 = await changeList(t.db, admin('instances'), {
      ...parseListParams(admin('instances'), { sort: 'site' }, SYSTEM_ACCESS),
      per: 5,
      page: 1,
    });
    const p2 = await changeList(t.db, admin('instances'), {
      ...parseListParams(admin('instances'), { sort: 'site' }, SYSTEM_ACCESS),
      per: 5,
      page: 2,
    });
    expect(p1.rows.map((r) => r.__id).filter((id) => p2.rows.some((x) => x.__id === id))).toEqual([]);
    expect(p1.pages).toBe(Math.ceil(t.lab.instances.length / 5));
  });

  it('shows the last page for a page past the end', async () => {
    const p = await changeList(t.db, admin('instances'), { ...parseListParams(admin('instances'), {}, SYSTEM_ACCESS), per: 5, page: 999 });
    expect(p.page).toBe(p.pages);
    expect(p.rows.length).toBe(t.lab.instances.length - 5 * (p.pages - 1));
  });

  it('searches by host name fragment, treating LIKE wildcards and SQL as text', async () => {
    expect((await list('instances', { q: 'stg-billing' })).total).toBe(3);
    expect((await list('instances', { q: '%' })).total).toBe(0);
    expect((await list('instances', { q: "' OR 1=1 --" })).total).toBe(0);
  });

  it('selects all N matching across pages, bounded', async () => {
    const def = admin('instances');
    const ids = await matchingIds(t.db, def, parseListParams(def, { role: 'replica' }, SYSTEM_ACCESS), 1000);
    const replicas = await t.db.select({ id: instances.id }).from(instances).where(eq(instances.role, 'replica')).orderBy(instances.id);
    expect(ids).toEqual(replicas.map((r) => r.id));
    expect(ids.length).toBeGreaterThanOrEqual(11);
    await expect(matchingIds(t.db, def, parseListParams(def, {}, SYSTEM_ACCESS), 5)).rejects.toThrow(
      /More than 5 objects match: narrow the selection./,
    );
  });
});

describe('counts in other tables', () => {
  it('counts each environment\u2019s own herds and servers (correlated subqueries stay qualified)', async () => {
    const page = await list('environments', {});
    // production: 9 database servers, the PgBouncer server in front of billing, a backup host and two
    // scratch servers; staging the same without the PgBouncer.
    expect(page.rows.map((r) => [r.name, r.herds, r.servers])).toEqual([
      ['production', 3, 13],
      ['staging', 3, 12],
    ]);
  });
});

describe('forms', () => {
  it('refuses invalid input with field errors and saves nothing', async () => {
    const before = await t.db.$count(herds);
    const res = await saveObject(
      t.db,
      editable('herds'),
      null,
      { environmentId: 'x', name: '', defaultPort: '70000', pgVersion: '15', controlDriver: 'telnet', automation: 'enabled' },
      actor,
    );
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(Object.keys(res.fieldErrors).sort()).toEqual(['controlDriver', 'defaultPort', 'environmentId', 'name']);
    expect(res.fieldErrors.defaultPort).toBe('At most 65535.');
    expect(await t.db.$count(herds)).toBe(before);
  });

  it('stores markup, quotes and SQL exactly as typed, and audits the change set', async () => {
    const name = `<script>alert("x")</script>'; DROP TABLE herds; --`;
    const created = await saveObject(t.db, editable('environments'), null, { name, description: 'O\'Brien "test"' }, actor);
    expect(created.ok).toBe(true);
    if (!created.ok) return;
    const [row] = await t.db.select().from(environments).where(eq(environments.id, created.id));
    expect(row!.name).toBe(name);
    const upd = await saveObject(t.db, editable('environments'), created.id, { name, description: 'changed' }, actor);
    expect(upd.ok).toBe(true);
    const audit = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.objectType, 'environments'), eq(auditEntries.objectId, String(created.id))))
      .orderBy(auditEntries.id);
    expect(audit.map((a) => a.action)).toEqual(['inventory.create', 'inventory.update']);
    expect(audit[1]!.changes).toEqual({ description: ['O\'Brien "test"', 'changed'] });
    expect(audit[1]!.username).toBe('tester');
    expect(audit[1]!.remoteAddr).toBe('127.0.0.9');
  });

  it('refuses a data directory that is not a plain absolute path, and saves nothing', async () => {
    const [i] = await t.db.select().from(instances).limit(1);
    for (const bad of ['/data; touch /tmp/x', 'relative/dir', '/a/../etc', '/x\ny', '/$(id)']) {
      const res = await saveObject(
        t.db,
        editable('instances'),
        i!.id,
        {
          herdId: String(i!.herdId),
          serverId: String(i!.serverId),
          port: String(i!.port),
          dataDirectory: bad,
          pgVersion: '15',
          role: i!.role,
          state: i!.state,
          upstreamInstanceId: '',
        },
        actor,
      );
      expect(!res.ok && res.fieldErrors.dataDirectory, bad).toMatch(/absolute path/);
    }
    const [after] = await t.db.select().from(instances).where(eq(instances.id, i!.id));
    expect(after!.dataDirectory).toBe(i!.dataDirectory);
  });

  it('turns a unique violation into an error on the field', async () => {
    const [env] = await t.db.select().from(environments).where(eq(environments.name, 'staging'));
    const res = await saveObject(
      t.db,
      editable('herds'),
      null,
      {
        environmentId: String(env!.id),
        name: 'billing',
        description: '',
        defaultPort: '5432',
        defaultDataDirectory: '',
        pgVersion: '15',
        controlDriver: 'pg_ctl',
        dnsName: '',
        automation: 'enabled',
      },
      actor,
    );
    expect(res).toEqual({ ok: false, fieldErrors: { name: 'A herd with this name already exists in this environment.' } });
    const srv = await saveObject(
      t.db,
      editable('servers'),
      null,
      { hostname: 'not a host!', environmentId: String(env!.id), address: '', site: '', sshPort: '22', sshUser: 'postgres' },
      actor,
    );
    expect(!srv.ok && srv.fieldErrors.hostname).toMatch(/host name/);
  });

  it('registers a PgBouncer with its [databases] entries, refusing names that could not be PAUSEd and paths that are not plain', async () => {
    const [p] = await t.db.select().from(poolers).limit(1);
    const form = (databases: string, configFile = '/etc/pgbouncer/pgbouncer.ini') => ({
      herdId: String(p!.herdId),
      serverId: String(p!.serverId),
      port: '6433',
      adminUser: 'pgbouncer',
      configFile,
      databases,
    });
    const bad = await saveObject(t.db, editable('poolers'), null, form('billing, x; RELOAD', '../etc/x'), actor);
    expect(!bad.ok && bad.fieldErrors).toEqual({
      databases: expect.stringMatching(/Entry names are/),
      configFile: expect.stringMatching(/absolute path/),
    });
    expect(await saveObject(t.db, editable('poolers'), null, form('a, a'), actor)).toMatchObject({
      ok: false,
      fieldErrors: { databases: 'An entry is named twice.' },
    });
    expect(await t.db.select().from(poolers)).toHaveLength(1);
    const ok = await saveObject(t.db, editable('poolers'), null, form(' billing , billing_ro '), actor);
    expect(ok.ok).toBe(true);
    const [saved] = await t.db.select().from(poolers).where(eq(poolers.port, 6433));
    expect(saved!.databases).toEqual(['billing', 'billing_ro']);
    const dup = await saveObject(t.db, editable('poolers'), null, form('billing'), actor);
    expect(dup).toEqual({ ok: false, fieldErrors: { port: 'A PgBouncer on this server and port is registered already.' } });
  });
});

describe('delete', () => {
  it('lists what goes with a herd: its instances and DNS records, and what only loses a reference', async () => {
    const [herd] = await t.db.select().from(herds).where(eq(herds.name, 'identity')).limit(1);
    const c = await collectForDelete(t.db, admin('herds'), [herd!.id]);
    const byModel = Object.fromEntries(c.deleted.map((g) => [g.model, g.items.map((i) => i.label)]));
    expect(byModel.herds).toHaveLength(1);
    expect(byModel.instances).toHaveLength(3);
    expect(byModel['dns-records']).toEqual([`${herd!.dnsName} CNAME`]);
    expect(c.protectedBy).toEqual([]);
  });

  it('keeps a herd an open major upgrade holds, and its environment: the upgrade can always be finished or abandoned', async () => {
    const [blue] = await t.db.select().from(herds).where(eq(herds.name, 'identity')).limit(1);
    const [green] = await t.db
      .insert(herds)
      .values({ environmentId: blue!.environmentId, name: 'identity-green', pgVersion: 17 })
      .returning();
    const [u] = await t.db
      .insert(majorUpgrades)
      .values({ blueHerdId: blue!.id, greenHerdId: green!.id, toVersionNum: 170010, databases: ['postgres'], status: 'ready' })
      .returning();
    try {
      for (const [model, id] of [
        ['herds', green!.id],
        ['herds', blue!.id],
        ['environments', blue!.environmentId],
      ] as const) {
        const c = await collectForDelete(t.db, admin(model), [id]);
        expect(c.protectedBy.map((g) => [g.label, g.ids])).toEqual([['major upgrades', [u!.id]]]);
        await expect(deleteObjects(t.db, editable(model), [id], actor)).rejects.toThrow(
          /cannot delete: 1 major upgrades still refer to it/,
        );
      }
      expect(await t.db.$count(herds, sql`${herds.id} IN (${blue!.id}, ${green!.id})`)).toBe(2);
      // Cleaned up, the upgrade no longer holds them.
      await t.db.update(majorUpgrades).set({ status: 'cleaned' }).where(eq(majorUpgrades.id, u!.id));
      expect((await collectForDelete(t.db, admin('herds'), [green!.id])).protectedBy).toEqual([]);
    } finally {
      await t.db.delete(majorUpgrades).where(eq(majorUpgrades.id, u!.id));
      await t.db.delete(herds).where(eq(herds.id, green!.id));
    }
  });

  it('deletes an environment with everything in it, and audits each object that went', async () => {
    const [env] = await t.db.select().from(environments).where(eq(environments.name, 'staging'));
    const c = await collectForDelete(t.db, admin('environments'), [env!.id]);
    const counts = Object.fromEntries(c.deleted.map((g) => [g.model, g.ids.length]));
    // The role bindings scoped to staging (dba-prod and dba-staging operate it, admins-staging administer it) go with it too.
    // And its backup policy, its backup host and scratch servers.
    expect(counts).toEqual({
      environments: 1,
      herds: 3,
      servers: 12,
      instances: 9,
      'dns-records': 3,
      'role-bindings': 3,
      'backup-policies': 1,
    });
    const res = await deleteObjects(t.db, editable('environments'), [env!.id, 999999], actor);
    expect(res).toEqual({ deleted: 1, cascaded: 31 });
    // Gone already, or never there: nothing deleted, nothing counted, nothing audited.
    expect(await deleteObjects(t.db, editable('environments'), [env!.id, 999999], actor)).toEqual({ deleted: 0, cascaded: 0 });
    expect(await t.db.$count(environments, eq(environments.id, env!.id))).toBe(0);
    expect(await t.db.$count(servers, eq(servers.environmentId, env!.id))).toBe(0);
    expect(await t.db.$count(instances)).toBe(t.lab.instances.length - 9);
    expect(await t.db.$count(dnsRecords)).toBe(3);
    const audit = await t.db
      .select({ action: auditEntries.action, type: auditEntries.objectType, n: sql<number>`count(*)::int` })
      .from(auditEntries)
      .where(sql`${auditEntries.action} LIKE 'inventory.delete%'`)
      .groupBy(auditEntries.action, auditEntries.objectType)
      .orderBy(auditEntries.objectType);
    expect(audit).toEqual([
      { action: 'inventory.delete_cascade', type: 'backup-policies', n: 1 },
      { action: 'inventory.delete_cascade', type: 'dns-records', n: 3 },
      { action: 'inventory.delete', type: 'environments', n: 1 },
      { action: 'inventory.delete_cascade', type: 'herds', n: 3 },
      { action: 'inventory.delete_cascade', type: 'instances', n: 9 },
      { action: 'inventory.delete_cascade', type: 'role-bindings', n: 3 },
      { action: 'inventory.delete_cascade', type: 'servers', n: 12 },
    ]);
  });
});

describe('facet counts agree with separate counting', () => {
  it('gives, for every facet, the same counts as one COUNT per option', async () => {
    const def = admin('instances');
    for (const raw of [{}, { role: 'replica' }, { q: 'prod', state: 'running' }, { site: 'dc-east', version: '15' }]) {
      const p = parseListParams(def, raw, SYSTEM_ACCESS);
      const cl = await changeList(t.db, def, p);
      for (const f of cl.facets) {
        for (const o of f.options) {
          const alone = await changeList(t.db, def, { ...p, filters: { ...p.filters, [f.key]: o.value }, per: 10, page: 1 });
          expect([f.key, o.value, o.count]).toEqual([f.key, o.value, alone.total]);
        }
      }
      const sum = cl.facets.find((f) => f.key === 'role')!.options.reduce((n, o) => n + o.count, 0);
      if (!p.filters.role) expect(sum).toBe(cl.total);
    }
  });
});

describe('every declared model', () => {
  it('serves its changelist, filters, search, sort by every sortable field, form data and delete collection', async () => {
    const { adminModels } = await import('./registry');
    const { operations, operationTargets } = await import('@/db/schema');
    const [op] = await t.db.insert(operations).values({ action: 'restart', planDigest: 'x', requestedByName: 'tester' }).returning();
    const [someInstance] = await t.db.select().from(instances).limit(1);
    await t.db
      .insert(operationTargets)
      .values({ operationId: op!.id, instanceId: someInstance!.id, herdId: someInstance!.herdId, label: 'x' });
    const { approvalPolicies, autoReplacePolicies, environments: envs, objectSets } = await import('@/db/schema');
    const [someEnv] = await t.db.select().from(envs).limit(1);
    await t.db.insert(approvalPolicies).values({ environmentId: someEnv!.id, actions: ['restart'] });
    await t.db.insert(autoReplacePolicies).values({ environmentId: someEnv!.id, afterSeconds: 600 });
    await t.db.insert(objectSets).values({ name: 'app', declaration: 'role app login' });
    const { loadObject, relationOptions } = await import('./change-form-data');
    for (const def of adminModels) {
      const all = await changeList(t.db, def, parseListParams(def, {}, SYSTEM_ACCESS));
      expect(all.total, def.name).toBeGreaterThan(0);
      for (const f of all.facets) {
        const first = f.options.find((o) => o.count > 0);
        if (!first) continue;
        const one = await changeList(t.db, def, parseListParams(def, { [f.key]: first.value }, SYSTEM_ACCESS));
        expect(one.total, `${def.name}.${f.key}=${first.value}`).toBe(first.count);
      }
      for (const [k, fd] of Object.entries(def.fields)) {
        if (fd.sortable === false) continue;
        await changeList(t.db, def, parseListParams(def, { sort: `-${k}`, q: 'lab' }, SYSTEM_ACCESS));
      }
      if (isEditable(def)) {
        const obj = await loadObject(t.db, def, all.rows[0]!.__id);
        expect(obj?.label, def.name).toBeTruthy();
        expect(def.form.schema.safeParse(obj!.values).success, `${def.name} form accepts its own stored values`).toBe(true);
        await relationOptions(t.db, def, null);
      }
      const c = await collectForDelete(t.db, def, [all.rows[0]!.__id]);
      expect(c.deleted[0]!.ids).toEqual([all.rows[0]!.__id]);
    }
  });
});
