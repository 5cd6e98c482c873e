// The directory is asked again: a person taken out of a group, then out of the lab's real slapd, loses
// the group's role, their API token and their rule's next fire, without signing in or out. API tokens
// live no longer than PGHERD_API_TOKEN_MAX_DAYS when it is set.
import { randomBytes } from 'node:crypto';
import { and, asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiTokens, auditEntries, environments, instances, operations, roleBindings, ruleRuns, users } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { addPerson, leaveGroup, removePerson } from '@/lib/lab/ldap-admin';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { fireDue } from '@/lib/features/rules/fire';
import { ruleBody } from '@/lib/features/rules/rule-body';
import { createRule } from '@/lib/features/rules/rules';
import { can, loadAccess } from '@/lib/engine/access';
import { createApiToken, verifyApiToken } from '@/lib/features/auth/api-tokens';
import { authenticate } from '@/lib/features/auth/authenticate';
import { ldapConfig } from '@/lib/adapters/ldap/ldap';

let t: TestDb;
let staging: number;
let replica: number;

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  // Asked every time: the test sees each change of the directory at its next use.
  process.env.PGHERD_LDAP_CONFIG = t.lab.ldap!.configFile;
  process.env.PGHERD_LDAP_RECHECK_SECONDS = '0';
  staging = (await t.db.select().from(environments).where(eq(environments.name, 'staging')))[0]!.id;
  replica = (
    await t.db
      .select({ id: instances.id })
      .from(instances)
      .where(and(eq(instances.environmentId, staging), eq(instances.role, 'replica')))
      .orderBy(asc(instances.id))
      .limit(1)
  )[0]!.id;
  // The lab's seed binds dba-staging to operator in staging.
  expect(await t.db.$count(roleBindings, eq(roleBindings.subject, t.lab.ldap!.groups['dba-staging']!))).toBeGreaterThan(0);
});
afterAll(async () => {
  delete process.env.PGHERD_LDAP_CONFIG;
  delete process.env.PGHERD_LDAP_RECHECK_SECONDS;
  delete process.env.PGHERD_API_TOKEN_MAX_DAYS;
  await ifAssigned(t)?.close();
});

describe('the directory asked again', () => {
  it('a person taken out of their group loses its role; taken out of the directory, their token and their rule are refused', async () => {
    const l = t.lab.ldap!;
    const name = `erin-${randomBytes(3).toString('hex')}`;
    const password = `pw-${randomBytes(8).toString('hex')}`;
    const dn = await addPerson(l, name, password, ['dba-staging']);
    const signedIn = await authenticate(t.db, name, password, '10.8.0.1', ldapConfig(l.configFile));
    if (!signedIn.ok) throw new Error(`sign-in failed: ${signedIn.reason}`);
    const id = signedIn.user.id;
    const { token } = await createApiToken(t.db, id, 'ci', 'operate');
    expect(await verifyApiToken(t.db, token)).toMatchObject({ id, scope: 'operate' });
    const access = await loadAccess(t.db, id);
    expect(can(access, 'operator', staging)).toBe(true);
    const rule = await createRule(
      t.db,
      { id, username: name, access },
      ruleBody.parse({
        name: `${name} nightly`,
        action: 'reload',
        instanceIds: [replica],
        schedule: { cron: ['0 3 * * *'], timezone: 'UTC' },
      }),
    );

    // Out of the group (pgherd's record of the groups is that of the sign-in): the role goes, now.
    await leaveGroup(l, dn, 'dba-staging');
    expect(can(await loadAccess(t.db, id), 'operator', staging)).toBe(false);
    expect((await t.db.select({ groups: users.groups }).from(users).where(eq(users.id, id)))[0]!.groups).toEqual([]);
    // Out of the directory: the token is refused, and the rule's next fire is refused, saying why.
    await removePerson(l, dn);
    expect(await verifyApiToken(t.db, token)).toBeNull();
    const now = new Date();
    const runId = await fireDue({ db: t.db, queue: null, log: () => {} }, rule.id, null, now, 'schedule', 60_000, now);
    const [run] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, runId!));
    expect(run).toMatchObject({ status: 'refused', operationId: null });
    expect(run!.reason).toBe(`refused: its owner ${name} is gone from the directory (no longer in the directory)`);
    expect(await t.db.$count(operations, eq(operations.ruleId, rule.id))).toBe(0);
    expect(await t.db.$count(auditEntries, and(eq(auditEntries.action, 'rule.refused'), eq(auditEntries.objectId, String(rule.id))))).toBe(
      1,
    );
  });

  it('API tokens live at most PGHERD_API_TOKEN_MAX_DAYS: capped when made, refused when older', async () => {
    const [u] = await t.db.insert(users).values({ username: 'tina', source: 'local' }).returning();
    const old = await createApiToken(t.db, u!.id, 'made before the limit', 'read');
    await t.db.execute(sql`UPDATE api_tokens SET created_at = now() - interval '31 days' WHERE id = ${old.id}`);
    expect(await verifyApiToken(t.db, old.token)).not.toBeNull(); // no limit set: as before
    process.env.PGHERD_API_TOKEN_MAX_DAYS = '30';
    try {
      expect(await verifyApiToken(t.db, old.token)).toBeNull();
      const made = await createApiToken(t.db, u!.id, 'made under the limit', 'read', new Date(Date.now() + 400 * 86_400_000));
      const [row] = await t.db.select().from(apiTokens).where(eq(apiTokens.id, made.id));
      const days = (row!.expiresAt!.getTime() - row!.createdAt.getTime()) / 86_400_000;
      expect(days).toBeGreaterThan(29.99);
      expect(days).toBeLessThan(30.01);
      expect(await verifyApiToken(t.db, made.token)).toMatchObject({ id: u!.id });
    } finally {
      delete process.env.PGHERD_API_TOKEN_MAX_DAYS;
    }
  });
});
