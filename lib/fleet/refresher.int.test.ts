import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environments, herds, instances, servers } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';
import { recordPass, refreshFleet } from '@/lib/fleet/refresher';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { observe } from '@/lib/fleet/observe';

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
});
afterAll(async () => ifAssigned(t)?.close());

describe('refreshFleet', () => {
  it('replaces a wrong inventory with what the instances say: role, state, LSN, lag and upstream', async () => {
    await t.db.update(instances).set({
      role: 'unknown',
      state: 'unreachable',
      lsn: null,
      lagBytes: null,
      lagSeconds: null,
      upstreamInstanceId: null,
      timeline: null,
    });
    const summary = await refreshFleet(t.db, { concurrency: 4 });
    expect(summary.observed).toBe(t.lab.instances.length);
    const rows = await t.db
      .select({ i: instances, server: servers.hostname, env: environments.name, herd: herds.name })
      .from(instances)
      .innerJoin(servers, eq(instances.serverId, servers.id))
      .innerJoin(herds, eq(instances.herdId, herds.id))
      .innerJoin(environments, eq(herds.environmentId, environments.id));
    for (const { i, server, env, herd } of rows.filter((x) => !isOpsTestHerd(x.env, x.herd))) {
      const lab = t.lab.instances.find((l) => l.server === server)!;
      expect([server, i.role, i.state]).toEqual([server, lab.role, 'running']);
      expect(i.lsn).toBeGreaterThan(0);
      expect(i.timeline).toBe(1);
      if (lab.role === 'replica') {
        const up = rows.find((x) => x.server === lab.upstream)!;
        expect(i.upstreamInstanceId).toBe(up.i.id);
        expect(i.lagBytes).toBeGreaterThanOrEqual(0);
        // Unknown (null) only while WAL is in flight to a replica that has not replayed a transaction yet.
        expect(i.lagSeconds === null || i.lagSeconds >= 0).toBe(true);
      } else {
        expect([i.lagBytes, i.upstreamInstanceId]).toEqual([0, null]);
      }
      expect(`${env}/${herd}`).toBeTruthy();
    }
  });

  it('keeps the states pgherd set on purpose', async () => {
    const [one] = await t.db.select().from(instances).limit(1);
    await t.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, one!.id));
    await refreshFleet(t.db, { ids: [one!.id] });
    expect((await t.db.select({ s: instances.state }).from(instances).where(eq(instances.id, one!.id)))[0]!.s).toBe('fenced');
    expect(await t.db.$count(instances, sql`${instances.lastObservedAt} IS NULL`)).toBe(0);
  });

  it('does not write over a fence set while its pass was under way (a refresh that started before the failover)', async () => {
    const [one] = await t.db.select().from(instances).where(eq(instances.state, 'running')).limit(1);
    // The pass is read and observed while the instance is still "running"...
    const [ref] = await loadInstanceRefs(t.db, [one!.id]);
    const seen = [{ r: ref!, o: await observe(ref!, 2000) }];
    expect(ref!.state).toBe('running');
    // ...a failover fences it before the pass is written...
    await t.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, one!.id));
    await recordPass(t.db, seen);
    // ...and the fence stays.
    expect((await t.db.select({ s: instances.state }).from(instances).where(eq(instances.id, one!.id)))[0]!.s).toBe('fenced');
  });

  it('fences a silent old primary superseded on a later timeline, but not one an operation recorded otherwise meanwhile', async () => {
    const herdRows = await t.db.select().from(instances).where(eq(instances.state, 'running'));
    const byHerd = new Map<number, typeof herdRows>();
    for (const r of herdRows) byHerd.set(r.herdId, [...(byHerd.get(r.herdId) ?? []), r]);
    const [a, b] = [...byHerd.values()].filter((rows) => rows.length >= 2).slice(0, 2);
    for (const rows of [a!, b!]) await t.db.update(instances).set({ role: 'primary', timeline: 1 }).where(eq(instances.id, rows[0]!.id));
    // Read as the pass reads them: each herd's old primary silent, another member the primary on timeline 2.
    const pass = async (rows: typeof herdRows) => {
      const refs = await loadInstanceRefs(t.db, [rows[0]!.id, rows[1]!.id]);
      const old = refs.find((r) => r.id === rows[0]!.id)!;
      const neu = refs.find((r) => r.id === rows[1]!.id)!;
      return [
        { r: old, o: { reachable: false as const, refused: true, error: 'connect ECONNREFUSED' } },
        { r: neu, o: { ...(await observe(neu, 2000)), reachable: true as const, inRecovery: false, timeline: 2 } },
      ];
    };
    const seenA = await pass(a!);
    const seenB = await pass(b!);
    // While b's pass was under way, its switchover ended and recorded its old primary a replica.
    await t.db.update(instances).set({ role: 'replica' }).where(eq(instances.id, b![0]!.id));
    await recordPass(t.db, [...seenA, ...seenB]);
    const row = async (id: number) => (await t.db.select().from(instances).where(eq(instances.id, id)))[0]!;
    expect(await row(a![0]!.id)).toMatchObject({ role: 'replica', state: 'fenced' });
    expect((await row(b![0]!.id)).state).not.toBe('fenced');
    await t.db.update(instances).set({ state: 'running' }).where(eq(instances.id, a![0]!.id));
    await refreshFleet(t.db, { ids: [...a!, ...b!].map((r) => r.id) });
  });
});
