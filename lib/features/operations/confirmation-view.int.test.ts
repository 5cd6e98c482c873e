// The confirmation page's view model against the lab's inventory: what the page would show for a
// selection, and that "all matching" never reaches past where the user may run the action.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Access } from '@/lib/engine/access';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { confirmationView } from './confirmation-view';

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
});
afterAll(async () => {
  await ifAssigned(t)?.close();
});

const instances = async () =>
  (
    await t.db.execute<{ id: number; env: string; env_id: number; role: string }>(
      sql`SELECT i.id, e.name AS env, e.id AS env_id, i.role::text AS role FROM instances i JOIN herds h ON h.id = i.herd_id
          JOIN environments e ON e.id = h.environment_id ORDER BY i.id`,
    )
  ).rows;

describe('the confirmation view', () => {
  it('says an unknown action is not found, and an empty selection that nothing has been changed', async () => {
    expect(await confirmationView(t.db, SYSTEM_ACCESS, { action: 'drop-everything', ids: '1' })).toEqual({ kind: 'unknown-action' });
    const none = await confirmationView(t.db, SYSTEM_ACCESS, { action: 'restart' });
    expect(none).toMatchObject({ kind: 'nothing', title: 'Nothing to restart', back: '/admin/instances' });
    const twice = await confirmationView(t.db, SYSTEM_ACCESS, { action: 'restart', ids: ['1', '2'] });
    expect(twice).toMatchObject({ kind: 'nothing', message: expect.stringMatching(/given twice.*Nothing has been changed/) });
  });

  it('plans the ticked instances and hands the confirm form the plan’s digest, action and ids', async () => {
    const replica = (await instances()).find((i) => i.role === 'replica')!;
    const view = await confirmationView(t.db, SYSTEM_ACCESS, { action: 'reload', ids: String(replica.id) });
    if (view.kind !== 'plan') throw new Error(`expected a plan, got ${view.kind}`);
    expect(view.title).toBe('Reload configuration: 1 of 1 instance');
    expect(view.targets.map((x) => x.href)).toEqual([`/admin/instances/${String(replica.id)}`]);
    const hidden = Object.fromEntries(view.confirm?.hidden ?? []);
    expect(hidden).toMatchObject({ action: 'reload', ids: String(replica.id), digest: expect.stringMatching(/^[0-9a-f]{16,}$/) });
  });

  it('asks for the parameters of an action that needs them, planning nothing', async () => {
    const replica = (await instances()).find((i) => i.role === 'replica')!;
    const view = await confirmationView(t.db, SYSTEM_ACCESS, { action: 'resize', ids: String(replica.id) });
    expect(view).toMatchObject({ kind: 'params', problem: null, form: { fields: expect.arrayContaining([expect.anything()]) } });
  });

  it('takes "all matching" as all the user may run the action on: an operator of staging gets staging’s instances only', async () => {
    const all = await instances();
    const staging = all.filter((i) => i.env === 'staging');
    expect(staging.length).toBeGreaterThan(0);
    expect(all.length).toBeGreaterThan(staging.length);
    const operator: Access = {
      userId: null,
      username: 'staging-operator',
      superuser: false,
      global: 'viewer',
      byEnvironment: new Map([[staging[0]!.env_id, 'operator']]),
    };
    const view = await confirmationView(t.db, operator, { action: 'reload', all: '1' });
    if (view.kind !== 'plan') throw new Error(`expected a plan, got ${view.kind}`);
    expect(view.targets.map((x) => x.target.instanceId).sort()).toEqual(staging.map((i) => i.id).sort());
  });
});
