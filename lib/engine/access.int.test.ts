// Roles per environment, from the lab's real directory: users sign in against slapd (their groups are
// recorded), and every entry point refuses what their roles do not allow, naming what is missing.
import { and, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, environments, herds, instances, operations, roleBindings } from '@/db/schema';
import { getEditable } from '@/lib/features/admin/registry';
import { seedLabFleet } from '@/lib/lab/seed';
import { parseListParams } from '@/lib/features/admin/list-params';
import { changeList, matchingIds } from '@/lib/features/admin/list-query';
import { deleteObjects, saveObject } from '@/lib/features/admin/mutations';
import { restartAction } from '@/lib/actions/control/restart.action';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { cancelOperation, retryInput } from '@/lib/features/operations/operation-control';
import { planOperation } from '@/lib/engine/plan';
import { submitOperation } from '@/lib/engine/submit';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { AccessDenied, accessFrom, can, loadAccess, SYSTEM_ACCESS, type Access } from '@/lib/engine/access';
import { refusal, refusedAtBoundary } from '@/lib/testing/denials';
import { operationView } from '@/lib/engine/operation-view';
import type { LdapConfig } from '@/lib/adapters/ldap/ldap';
import { labLdapConfig, signInLab } from '@/lib/testing/lab-people';

let t: TestDb;
let cfg: LdapConfig;
const env = new Map<string, number>();
const instancesIn = async (name: string) =>
  (
    await t.db
      .select({ id: instances.id })
      .from(instances)
      .innerJoin(herds, eq(instances.herdId, herds.id))
      .where(eq(herds.environmentId, env.get(name)!))
      .orderBy(instances.id)
  ).map((r) => r.id) as [number, ...number[]];

/** Signs in against slapd (as the console does) and returns what the user may do. */
async function signIn(username: string): Promise<{ id: number; username: string; access: Access; remoteAddr: string }> {
  return signInLab(t.db, t.lab, cfg, username, '10.7.0.1');
}

beforeAll(async () => {
  t = await freshDatabase();
  cfg = labLdapConfig(t.lab);
  await seedLabFleet(t.db, t.lab);
  for (const e of await t.db.select().from(environments)) env.set(e.name, e.id);
});
afterAll(async () => ifAssigned(t)?.close());

describe('the audit log', () => {
  it('cannot be changed or deleted, even with SQL from pgherd\u2019s own connection', async () => {
    await t.db.insert(auditEntries).values({ username: 'x', action: 'test.entry', objectType: 'test' });
    await expect(t.db.update(auditEntries).set({ username: 'y' }).where(eq(auditEntries.action, 'test.entry'))).rejects.toThrow();
    await expect(t.db.delete(auditEntries).where(eq(auditEntries.action, 'test.entry'))).rejects.toThrow();
    const [e] = await t.db.select().from(auditEntries).where(eq(auditEntries.action, 'test.entry'));
    expect(e!.username).toBe('x');
  });
});

describe('roles from the directory', () => {
  it('gives each lab group the roles the demo binds, per environment', async () => {
    const bob = await signIn('bob'); // dba-staging
    expect(bob.access.global).toBeNull();
    expect(can(bob.access, 'operator', env.get('staging')!)).toBe(true);
    expect(can(bob.access, 'operator', env.get('production')!)).toBe(false);
    expect(can(bob.access, 'viewer', env.get('production')!)).toBe(true);
    const alice = await signIn('alice'); // dba-prod
    expect(can(alice.access, 'admin', env.get('production')!)).toBe(true);
    expect(can(alice.access, 'admin', env.get('staging')!)).toBe(false);
    const carol = await signIn('carol'); // readonly
    expect(carol.access.global).toBe('viewer');
    expect(can(carol.access, 'operator', env.get('staging')!)).toBe(false);
  });

  it('lets a staging operator plan and submit a restart in staging, and refuses production naming the missing role', async () => {
    const bob = await signIn('bob');
    const [staging] = await instancesIn('staging');
    const [production] = await instancesIn('production');
    const plan = await planOperation(t.db, bob.access, restartAction, [staging]);
    expect(plan.targets.map((x) => x.refused ?? null)).toEqual([null]);
    const { id } = await submitOperation(
      t.db,
      null,
      restartAction,
      { instanceIds: [staging], digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: 'bob-staging-1' },
      bob,
    );
    const [op] = await t.db.select().from(operations).where(eq(operations.id, id));
    expect(op).toMatchObject({ action: 'restart', requestedByName: 'bob', status: 'queued' });
    // The instance's own history (read from the audit log) names the operation.
    const [hist] = await t.db
      .select()
      .from(auditEntries)
      .where(
        and(
          eq(auditEntries.objectType, 'instances'),
          eq(auditEntries.objectId, String(staging)),
          eq(auditEntries.action, 'operation.restart'),
        ),
      );
    expect(hist).toMatchObject({ username: 'bob', remoteAddr: '10.7.0.1', environmentId: env.get('staging') });
    expect(hist!.changes.operation).toEqual([null, id]);

    await expect(planOperation(t.db, bob.access, restartAction, [production])).rejects.toThrow(
      /^Restart needs the operator role in production \(you have viewer there\)$/,
    );
    // One forbidden target refuses the whole request, not just that target.
    await expect(planOperation(t.db, bob.access, restartAction, [staging, production])).rejects.toBeInstanceOf(AccessDenied);
    // A forged confirmation (a digest computed by someone allowed) is refused the same way and writes no operation;
    // submitOperation only throws: the boundary that answers it (the console, the API) records it, once.
    const forged = await planOperation(t.db, SYSTEM_ACCESS, restartAction, [production]);
    const before = await t.db.select({ n: sql<number>`count(*)::int` }).from(operations);
    const denials = () => t.db.$count(auditEntries, and(eq(auditEntries.action, 'access.denied'), eq(auditEntries.username, 'bob')));
    const deniedBefore = await denials();
    const submitForged = () =>
      submitOperation(
        t.db,
        null,
        restartAction,
        { instanceIds: [production], digest: forged.digest, confirmation: 'production', idempotencyKey: 'bob-forged-1' },
        bob,
      );
    expect(await refusal(submitForged())).toMatch(/Restart needs the operator role in production/);
    expect(await denials()).toBe(deniedBefore);
    expect(await refusedAtBoundary(t.db, bob, submitForged)).toMatch(/Restart needs the operator role in production/);
    expect(await denials()).toBe(deniedBefore + 1);
    expect(await t.db.select({ n: sql<number>`count(*)::int` }).from(operations)).toEqual(before);
    const [denied] = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'access.denied'), eq(auditEntries.username, 'bob')));
    expect(denied).toMatchObject({ objectType: 'access', remoteAddr: '10.7.0.1' });
    expect(denied!.changes.reason![1]).toMatch(/operator role in production/);

    // Herd actions declare admin: an operator in staging may not switch a staging herd over.
    const [stagingHerd] = await t.db
      .select({ id: herds.id })
      .from(herds)
      .where(eq(herds.environmentId, env.get('staging')!))
      .limit(1);
    await expect(planOperation(t.db, bob.access, switchoverAction, [stagingHerd!.id])).rejects.toThrow(
      'Switchover needs the admin role in staging (you have operator there)',
    );
  });

  it('shows a staging-only user only the staging targets of an operation that spans environments', async () => {
    const [staging] = await instancesIn('staging');
    const [production] = await instancesIn('production');
    const plan = await planOperation(t.db, SYSTEM_ACCESS, restartAction, [staging, production]);
    const { id } = await submitOperation(
      t.db,
      null,
      restartAction,
      { instanceIds: [staging, production], digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: 'mixed-1' },
      { id: null, username: 'admin-test', access: SYSTEM_ACCESS },
    );
    const stagingOnly = accessFrom({ id: null, username: 'stg', superuser: false }, [
      { role: 'operator', environmentId: env.get('staging')! },
    ]);
    const seen = (await operationView(t.db, id, stagingOnly))!;
    expect(seen.targets.map((x) => x.instanceId)).toEqual([staging]);
    expect(seen.hiddenTargets).toBe(1);
    expect(JSON.stringify(seen)).not.toContain(plan.targets.find((x) => x.instanceId === production)!.label);
    expect((await operationView(t.db, id, SYSTEM_ACCESS))!.targets).toHaveLength(2);
  });

  it('answers an idempotency key only with its own user\u2019s operation, and only once authorized', async () => {
    const bob = await signIn('bob');
    const [staging] = await instancesIn('staging');
    const [production] = await instancesIn('production');
    const asAdmin = { id: null, username: 'admin-test', access: SYSTEM_ACCESS };
    const prod = await planOperation(t.db, SYSTEM_ACCESS, restartAction, [production]);
    const admins = await submitOperation(
      t.db,
      null,
      restartAction,
      { instanceIds: [production], digest: prod.digest, confirmation: 'production', idempotencyKey: 'shared-key-1' },
      asAdmin,
    );
    // Bob, refused in production, learns nothing from the key: refused, not told the admin's operation.
    await expect(
      submitOperation(
        t.db,
        null,
        restartAction,
        { instanceIds: [production], digest: prod.digest, confirmation: 'production', idempotencyKey: 'shared-key-1' },
        bob,
      ),
    ).rejects.toBeInstanceOf(AccessDenied);
    // In staging, where he may, the same key is just his own new key.
    const stg = await planOperation(t.db, bob.access, restartAction, [staging]);
    const his = await submitOperation(
      t.db,
      null,
      restartAction,
      { instanceIds: [staging], digest: stg.digest, confirmation: stg.typeToConfirm ?? '', idempotencyKey: 'shared-key-1' },
      bob,
    );
    expect(his).toMatchObject({ duplicate: false });
    expect(his.id).not.toBe(admins.id);
    expect(
      await submitOperation(
        t.db,
        null,
        restartAction,
        { instanceIds: [staging], digest: stg.digest, confirmation: stg.typeToConfirm ?? '', idempotencyKey: 'shared-key-1' },
        bob,
      ),
    ).toEqual({ id: his.id, duplicate: true, status: 'queued' });
    // The same key for another action: a 409 naming the earlier operation, nothing made.
    const reload = await planOperation(t.db, bob.access, reloadAction, [staging]);
    await expect(
      submitOperation(
        t.db,
        null,
        reloadAction,
        { instanceIds: [staging], digest: reload.digest, confirmation: reload.typeToConfirm ?? '', idempotencyKey: 'shared-key-1' },
        bob,
      ),
    ).rejects.toMatchObject({ status: 409, message: expect.stringContaining(`used for operation #${his.id} (restart) with another plan`) });
    // The same key and digest with other targets: another request too, not the earlier operation.
    const [, second] = await instancesIn('staging');
    await expect(
      submitOperation(
        t.db,
        null,
        restartAction,
        { instanceIds: [staging, second!], digest: stg.digest, confirmation: '', idempotencyKey: 'shared-key-1' },
        bob,
      ),
    ).rejects.toMatchObject({ status: 409, message: expect.stringContaining(`used for operation #${his.id} (restart) with another plan`) });
  });

  it('plans a retry again: a cancelled staging target whose instance has since moved into a production herd is refused, naming the role', async () => {
    const bob = await signIn('bob');
    const [staging] = await instancesIn('staging');
    const plan = await planOperation(t.db, bob.access, restartAction, [staging]);
    const { id } = await submitOperation(
      t.db,
      null,
      restartAction,
      { instanceIds: [staging], digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: 'bob-retry-1' },
      bob,
    );
    await cancelOperation(t.db, id, bob);
    const [prodHerd] = await t.db
      .select({ id: herds.id })
      .from(herds)
      .where(eq(herds.environmentId, env.get('production')!))
      .limit(1);
    const { herdId: before } = (await t.db.select({ herdId: instances.herdId }).from(instances).where(eq(instances.id, staging)))[0]!;
    await t.db.update(instances).set({ herdId: prodHerd!.id }).where(eq(instances.id, staging));
    try {
      const input = (await retryInput(t.db, bob.access, id))!;
      expect(input.ids).toEqual([staging]);
      const ops = await t.db.$count(operations);
      await expect(planOperation(t.db, bob.access, restartAction, input.ids, input.params)).rejects.toThrow(
        /^Restart needs the operator role in production \(you have viewer there\)$/,
      );
      expect(await t.db.$count(operations)).toBe(ops);
    } finally {
      await t.db.update(instances).set({ herdId: before }).where(eq(instances.id, staging));
    }
  });

  it('gives a read-only user nothing to run anywhere, and a user without bindings nothing at all', async () => {
    const carol = await signIn('carol');
    const [staging] = await instancesIn('staging');
    await expect(planOperation(t.db, carol.access, restartAction, [staging])).rejects.toThrow(
      'Restart needs the operator role in staging (you have viewer there)',
    );
    const dave = await loadAccess(t.db, 0);
    await expect(planOperation(t.db, dave, restartAction, [staging])).rejects.toThrow('(you have no role there)');
  });

  it('scopes changelists and "select all matching" to what the user may see, whatever the query string says', async () => {
    const def = getEditable('instances')!;
    const bob = await signIn('bob');
    const all = await changeList(t.db, def, parseListParams(def, {}, SYSTEM_ACCESS));
    // bob sees staging and production (viewer there) but cannot reach an environment with no binding.
    const [dev] = await t.db.insert(environments).values({ name: 'dev-access-test' }).returning();
    const [devHerd] = await t.db.insert(herds).values({ name: 'scratch', environmentId: dev!.id }).returning();
    const seen = await changeList(t.db, def, parseListParams(def, { environment: String(dev!.id) }, bob.access));
    expect(seen.total).toBe(0);
    expect((await changeList(t.db, def, parseListParams(def, {}, bob.access))).total).toBe(all.total);
    // "All matching" for a restart: only what bob may restart (staging), even with production in the filter.
    const runnable = await matchingIds(
      t.db,
      def,
      { ...parseListParams(def, { environment: String(env.get('production')) }, bob.access), scope: [env.get('staging')!] },
      1000,
    );
    expect(runnable).toEqual([]);
    expect((await matchingIds(t.db, def, { ...parseListParams(def, {}, bob.access), scope: [env.get('staging')!] }, 1000)).sort()).toEqual(
      (await instancesIn('staging')).sort(),
    );
    // Role bindings are for admins only: bob's list of them is refused at the page and empty here.
    const rb = getEditable('role-bindings')!;
    expect((await changeList(t.db, rb, parseListParams(rb, {}, bob.access))).total).toBe(0);
    expect((await changeList(t.db, rb, parseListParams(rb, {}, SYSTEM_ACCESS))).total).toBeGreaterThan(0);
    await t.db.delete(herds).where(eq(herds.id, devHerd!.id));
    await t.db.delete(environments).where(eq(environments.id, dev!.id));
  });

  it('checks inventory writes in the environment before and after, and deletes need admin', async () => {
    const bob = await signIn('bob');
    const def = getEditable('herds')!;
    const added = await saveObject(
      t.db,
      def,
      null,
      {
        name: 'bobs-herd',
        environmentId: String(env.get('staging')),
        controlDriver: 'pg_ctl',
        automation: 'enabled',
        pgVersion: '15',
        defaultPort: '5432',
        defaultDataDirectory: '',
        dnsName: '',
        description: '',
      },
      bob,
    );
    expect(added).toMatchObject({ ok: true });
    const id = (added as { id: number }).id;
    // Moving it to production needs operator there too: refused, unchanged.
    const moved = await refusal(
      saveObject(
        t.db,
        def,
        id,
        {
          name: 'bobs-herd',
          environmentId: String(env.get('production')),
          controlDriver: 'pg_ctl',
          automation: 'enabled',
          pgVersion: '15',
          defaultPort: '5432',
          defaultDataDirectory: '',
          dnsName: '',
          description: '',
        },
        bob,
      ),
    );
    expect(moved).toContain('needs the operator role in production (you have viewer there)');
    expect((await t.db.select({ env: herds.environmentId }).from(herds).where(eq(herds.id, id)))[0]!.env).toBe(env.get('staging'));
    await expect(deleteObjects(t.db, def, [id], bob)).rejects.toThrow(
      'Deleting herds needs the admin role in staging (you have operator there)',
    );
    expect(await t.db.select().from(herds).where(eq(herds.id, id))).toHaveLength(1);
    await deleteObjects(t.db, def, [id], { id: null, username: 'test', access: SYSTEM_ACCESS });
  });

  it('lets admins bind roles only where they are admins, audited under access.*', async () => {
    const alice = await signIn('alice'); // admin in production only
    const rb = getEditable('role-bindings')!;
    const prod = await saveObject(
      t.db,
      rb,
      null,
      { role: 'operator', subjectType: 'user', subject: 'erin', environmentId: String(env.get('production')) },
      alice,
    );
    expect(prod).toMatchObject({ ok: true });
    const global = await refusal(
      saveObject(t.db, rb, null, { role: 'admin', subjectType: 'user', subject: 'alice', environmentId: '' }, alice),
    );
    expect(global).toContain('needs the admin role globally (you have no global role: roles in single environments do not count)');
    const bad = await saveObject(t.db, rb, null, { role: 'viewer', subjectType: 'group', subject: 'not a dn', environmentId: '' }, alice);
    expect(bad).toMatchObject({ ok: false, fieldErrors: { subject: expect.stringContaining('DN') } });
    const [entry] = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'access.create'), eq(auditEntries.username, 'alice')));
    expect(entry).toMatchObject({ objectType: 'role-bindings', environmentId: env.get('production') });
    expect(entry!.changes.subject).toEqual([null, 'erin']);
  });

  it('takes a removed binding away at once, and cancelling needs the action\u2019s role', async () => {
    const bob = await signIn('bob');
    const [staging] = await instancesIn('staging');
    const plan = await planOperation(t.db, bob.access, restartAction, [staging]);
    const { id } = await submitOperation(
      t.db,
      null,
      restartAction,
      { instanceIds: [staging], digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: 'bob-staging-2' },
      bob,
    );
    const carol = await signIn('carol');
    await expect(cancelOperation(t.db, id, carol)).rejects.toThrow(
      'Pausing, resuming, aborting or retrying Restart needs the operator role in staging (you have viewer there)',
    );
    const dbaStaging = t.lab.ldap!.groups['dba-staging']!;
    const removed = await t.db
      .delete(roleBindings)
      .where(and(eq(roleBindings.subject, dbaStaging), inArray(roleBindings.role, ['operator'])))
      .returning();
    expect(removed).toHaveLength(1);
    const now = await loadAccess(t.db, bob.id);
    expect(can(now, 'operator', env.get('staging')!)).toBe(false);
    await expect(cancelOperation(t.db, id, { ...bob, access: now })).rejects.toBeInstanceOf(AccessDenied);
    await t.db.insert(roleBindings).values(removed);
  });
});
