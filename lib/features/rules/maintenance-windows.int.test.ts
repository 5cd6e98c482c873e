// Maintenance windows: a rule marked insideWindow acts on a herd only while one of its windows is open,
// and a rolling operation it started waits between waves for the next wave's herds' window, then goes
// on by itself (the conductor resumes it, audited as the system's). No worker runs: a wave's target is
// ended by hand, as a worker would end it.
import { and, asc, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditEntries,
  environments,
  herds,
  instances,
  maintenanceWindows,
  operations,
  operationTargets,
  ruleRuns,
  users,
} from '@/db/schema';
import { loadAccess } from '@/lib/engine/access';
import { seedLabFleet } from '@/lib/lab/seed';
import { conductWaves } from '@/lib/engine/conductor';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { fireRequested } from './fire';
import { ruleBody } from './rule-body';
import { createRule, requestRun } from './rules';
import type { Actor } from '@/lib/engine/access';
import { createWindow, windowBody } from './maintenance-windows';

let t: TestDb;
let root: Actor;
/** One replica in each of two staging herds. */
let a: { id: number; herdId: number; herd: string };
let b: { id: number; herdId: number; herd: string };
const deps = () => ({ db: t.db, queue: null, log: () => {} });
const hhmm = (d: Date) => d.toISOString().slice(11, 16);

/** A window open now (opened five minutes ago, for an hour), or one that is not (another day). */
const openNow = (name: string, herdId: number) => {
  const from = new Date(Date.now() - 5 * 60_000);
  return windowBody.parse({ name, herdId, days: [from.getUTCDay()], starts: hhmm(from), durationMinutes: 60, timezone: 'UTC' });
};
const closedNow = (name: string, herdId: number) =>
  windowBody.parse({ name, herdId, days: [(new Date().getUTCDay() + 3) % 7], starts: '12:00', durationMinutes: 1, timezone: 'UTC' });

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  const [r] = await t.db.insert(users).values({ username: 'root', source: 'local', isSuperuser: true }).returning();
  root = { id: r!.id, username: 'root', access: await loadAccess(t.db, r!.id) };
  const rows = await t.db
    .select({ id: instances.id, herdId: instances.herdId, herd: herds.name })
    .from(instances)
    .innerJoin(herds, eq(herds.id, instances.herdId))
    .innerJoin(environments, eq(environments.id, herds.environmentId))
    .where(and(eq(environments.name, 'staging'), eq(instances.role, 'replica')))
    .orderBy(asc(instances.id));
  a = rows[0]!;
  b = rows.find((x) => x.herdId !== a.herdId)!;
});
afterAll(async () => {
  await ifAssigned(t)?.close();
});

const runNow = async (ruleId: number) => {
  const { runId } = await requestRun(t.db, root, ruleId);
  await fireRequested(deps(), runId);
  return (await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, runId)))[0]!;
};

describe('maintenance windows', () => {
  it('a rule inside the windows skips a herd outside them and one with none, saying when the next opens', async () => {
    const made = await createWindow(t.db, root, openNow('a open', a.herdId));
    // A herd's window is filed under the herd's environment in the audit log (its environment's admins see it there).
    const [entry] = await t.db
      .select({ env: auditEntries.environmentId })
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'maintenance_window.created'), eq(auditEntries.objectId, String(made.id))));
    const [herd] = await t.db.select({ env: herds.environmentId }).from(herds).where(eq(herds.id, a.herdId));
    expect(entry!.env).toBe(herd!.env);
    const rule = await createRule(
      t.db,
      root,
      ruleBody.parse({
        name: 'inside only',
        action: 'reload',
        instanceIds: [a.id, b.id],
        insideWindow: true,
        schedule: { cron: ['0 3 * * *'], timezone: 'UTC' },
      }),
    );
    let run = await runNow(rule.id);
    expect(run.status).toBe('started');
    expect(run.targets).toEqual([
      { id: a.id, label: expect.any(String) },
      { id: b.id, label: expect.any(String), skipped: `herd ${b.herd} has no maintenance window (the rule fires only inside one)` },
    ]);
    const [op] = await t.db.select().from(operations).where(eq(operations.id, run.operationId!));
    expect(op!.windowBound).toBe(true);
    await t.db.update(operations).set({ status: 'succeeded', finishedAt: new Date() }).where(eq(operations.id, op!.id));
    await createWindow(t.db, root, closedNow('b closed', b.herdId));
    run = await runNow(rule.id);
    expect(run.targets[1]!.skipped).toMatch(
      new RegExp(`^outside herd ${b.herd}'s maintenance windows \\(the next opens at \\d{4}-\\d\\d-\\d\\dT12:00:00\\.000Z\\)$`),
    );
  });

  it("a rolling operation waits between waves while the next wave's herd is outside its windows, and goes on once one opens", async () => {
    await t.db.delete(maintenanceWindows);
    await createWindow(t.db, root, openNow('a open', a.herdId));
    await createWindow(t.db, root, closedNow('b closed', b.herdId));
    // Wave 1 (a) inside its window at the fire; b fires inside one too (its herd open a moment for the fire).
    const [bOpen] = await t.db
      .insert(maintenanceWindows)
      .values({ ...openNow('b for the fire', b.herdId), createdBy: 'test' })
      .returning();
    const rule = await createRule(
      t.db,
      root,
      ruleBody.parse({
        name: 'rolling inside',
        action: 'reload',
        instanceIds: [a.id, b.id],
        insideWindow: true,
        waves: { size: 1, order: 'listed' },
        schedule: { cron: ['0 3 * * *'], timezone: 'UTC' },
      }),
    );
    const run = await runNow(rule.id);
    expect(run.status, run.reason ?? '').toBe('started');
    await t.db.delete(maintenanceWindows).where(eq(maintenanceWindows.id, bOpen!.id));
    const opId = run.operationId!;
    const targetsOf = () =>
      t.db.select().from(operationTargets).where(eq(operationTargets.operationId, opId)).orderBy(asc(operationTargets.wave));
    const [first, second] = await targetsOf();
    expect([first!.instanceId, first!.wave, second!.instanceId, second!.wave, second!.held]).toEqual([a.id, 1, b.id, 2, true]);
    // Wave 1 ends (as its worker would end it); b's herd has no window open: the operation waits, paused with why.
    await t.db.update(operationTargets).set({ status: 'succeeded' }).where(eq(operationTargets.id, first!.id));
    await conductWaves(t.db, null);
    let [op] = await t.db.select().from(operations).where(eq(operations.id, opId));
    expect(op!.pausedReason).toMatch(new RegExp(`^maintenance window: wave 2 waits: outside herd ${b.herd}'s maintenance windows`));
    expect(op!.currentWave).toBe(1);
    await conductWaves(t.db, null); // still closed: still waiting
    expect((await t.db.select().from(operations).where(eq(operations.id, opId)))[0]!.pausedAt).not.toBeNull();
    // b's window opens: the next round resumes it (the system, audited) and starts wave 2.
    await createWindow(t.db, root, openNow('b open', b.herdId));
    await conductWaves(t.db, null);
    [op] = await t.db.select().from(operations).where(eq(operations.id, opId));
    expect([op!.pausedAt, op!.currentWave]).toEqual([null, 2]);
    expect((await targetsOf())[1]!.held).toBe(false);
    const resumed = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'operation.resume'), inArray(auditEntries.objectId, [String(opId)])));
    expect(resumed.map((e) => e.username)).toEqual(['system']);
  });
});
