// Lag history in pgherd's database: what a sample takes, how samples older than a day fold into
// 5-minute buckets (the worst lag kept), the retention, and what the charts read back.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { foldLagSamples, lagHistory, sampleLag } from '@/lib/fleet/lag-history';

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
});
afterAll(async () => {
  await ifAssigned(t)?.close();
});

const rows = async <T extends Record<string, unknown>>(q: ReturnType<typeof sql>) => (await t.db.execute<T>(q)).rows;
const replica = async () =>
  (await rows<{ id: number; herd_id: number }>(sql`SELECT id, herd_id FROM instances WHERE role = 'replica' ORDER BY id LIMIT 1`))[0]!;

describe('sampling', () => {
  it('takes every instance observed in the last 5 minutes (lag for replicas only), and the fleet by environment, role and state', async () => {
    await t.db.execute(sql`UPDATE instances SET last_observed_at = now(), lag_bytes = 4096, lag_seconds = 1.5`);
    const stale = (await rows<{ id: number }>(sql`SELECT id FROM instances ORDER BY id DESC LIMIT 1`))[0]!.id;
    await t.db.execute(sql`UPDATE instances SET last_observed_at = now() - interval '10 minutes' WHERE id = ${stale}`);
    const at = new Date();
    const n = await sampleLag(t.db, at);
    const total = (await rows<{ n: number }>(sql`SELECT count(*)::int AS n FROM instances`))[0]!.n;
    expect(n).toBe(total - 1);
    const taken = await rows<{ instance_id: number; role: string; lag_bytes: string | null }>(
      sql`SELECT instance_id, role::text, lag_bytes FROM lag_samples WHERE at = ${at}::timestamptz`,
    );
    expect(taken.map((r) => r.instance_id)).not.toContain(stale);
    expect(taken.filter((r) => r.role === 'primary').every((r) => r.lag_bytes === null)).toBe(true);
    expect(taken.filter((r) => r.role === 'replica').every((r) => Number(r.lag_bytes) === 4096)).toBe(true);
    const fleet = await rows<{ n: number }>(sql`SELECT sum(instances)::int AS n FROM fleet_samples WHERE at = ${at}::timestamptz`);
    expect(fleet[0]!.n).toBe(total);
    // The same moment again adds nothing.
    expect(await sampleLag(t.db, at)).toBe(0);
  });
});

describe('folding and retention', () => {
  it('folds samples older than a day into 5-minute buckets with the worst lag and the last state; deletes what is past the retention', async () => {
    const r = await replica();
    await t.db.execute(sql`DELETE FROM lag_samples`);
    const now = new Date('2026-11-20T12:00:00Z');
    const old = new Date('2026-11-18T10:00:00Z'); // two days before: a bucket boundary
    const at = (base: Date, s: number) => new Date(base.getTime() + s * 1000).toISOString();
    const put = (when: string, lag: number, state = 'running') =>
      t.db.execute(
        sql`INSERT INTO lag_samples (instance_id, herd_id, at, lag_bytes, lag_seconds, role, state) VALUES (${r.id}, ${r.herd_id}, ${when}::timestamptz, ${lag}, ${lag / 1000}, 'replica', ${state}::instance_state)`,
      );
    for (const [s, lag, state] of [
      [0, 10, 'running'],
      [60, 50, 'running'],
      [120, 20, 'running'],
      [240, 30, 'unreachable'],
      [300, 5, 'running'], // the next bucket
    ] as const)
      await put(at(old, s), lag, state);
    await put(at(now, -8 * 86_400), 999); // past the 7-day retention
    await put(at(now, -3600), 77); // within the last day: kept as it is
    const res = await foldLagSamples(t.db, now, 7);
    // Six fine samples folded (the 8-day-old one too), then that one's bucket deleted with the retention.
    expect(res).toEqual({ folded: 6, deleted: 1 });
    const after = await rows<{ at: Date; lag_bytes: string; state: string; coarse: boolean }>(
      sql`SELECT at, lag_bytes, state::text, coarse FROM lag_samples WHERE instance_id = ${r.id} ORDER BY at`,
    );
    expect(after.map((x) => [new Date(x.at).toISOString(), Number(x.lag_bytes), x.state, x.coarse])).toEqual([
      ['2026-11-18T10:00:00.000Z', 50, 'unreachable', true],
      ['2026-11-18T10:05:00.000Z', 5, 'running', true],
      [at(now, -3600).replace(/\.\d+Z$/, '.000Z'), 77, 'running', false],
    ]);
    // Again: nothing more to fold, nothing changed.
    expect(await foldLagSamples(t.db, now, 7)).toEqual({ folded: 0, deleted: 0 });
    // A late fine sample in a folded bucket joins it, keeping the worst.
    await put(at(old, 30), 80);
    await foldLagSamples(t.db, now, 7);
    const bucket = await rows<{ lag_bytes: string; n: number }>(
      sql`SELECT max(lag_bytes)::text AS lag_bytes, count(*)::int AS n FROM lag_samples WHERE instance_id = ${r.id} AND at < '2026-11-18T10:05:00Z'`,
    );
    expect(bucket[0]).toEqual({ lag_bytes: '80', n: 1 });
  });
});

describe('what the charts read', () => {
  it("gives a herd's members' samples in the range, bucketed for a week, and the operations on the herd that ran then", async () => {
    const r = await replica();
    await t.db.execute(sql`DELETE FROM lag_samples`);
    const now = new Date();
    const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
    for (const [s, lag] of [
      [600, 100],
      [540, 200],
      [480, 400],
      [7200, 1],
    ] as const)
      await t.db.execute(
        sql`INSERT INTO lag_samples (instance_id, herd_id, at, lag_bytes, lag_seconds, role, state) VALUES (${r.id}, ${r.herd_id}, ${ago(s)}::timestamptz, ${lag}, 0, 'replica', 'running')`,
      );
    const op = async (herdId: number, startedAgo: number, endedAgo: number | null) => {
      const [o] = (
        await t.db.execute<{ id: number }>(sql`
          INSERT INTO operations (action, plan_digest, requested_by_name, status, created_at, started_at, finished_at)
          VALUES ('restart', 'x', 'alice', ${endedAgo === null ? 'running' : 'succeeded'}, ${ago(startedAgo)}::timestamptz, ${ago(startedAgo)}::timestamptz, ${endedAgo === null ? null : ago(endedAgo)}::timestamptz)
          RETURNING id`)
      ).rows;
      await t.db.execute(
        sql`INSERT INTO operation_targets (operation_id, herd_id, label, status) VALUES (${o!.id}, ${herdId}, 'x', ${endedAgo === null ? 'running' : 'succeeded'})`,
      );
      return o!.id;
    };
    const during = await op(r.herd_id, 500, 450);
    const running = await op(r.herd_id, 30, null);
    const before = await op(r.herd_id, 3 * 86_400, 3 * 86_400 - 60);
    const other = (await rows<{ id: number }>(sql`SELECT id FROM herds WHERE id <> ${r.herd_id} LIMIT 1`))[0]!.id;
    const elsewhere = await op(other, 500, 450);

    const hour = await lagHistory(t.db, { herdId: r.herd_id }, 'hour', now);
    const mine = hour.series.find((s) => s.instanceId === r.id)!;
    expect(mine.points.map((p) => p.bytes)).toEqual([100, 200, 400]);
    expect(hour.operations.map((o) => o.id)).toEqual([during, running]);
    expect(hour.operations.find((o) => o.id === running)!.to).toBeNull();
    expect(hour.operations).not.toContainEqual(expect.objectContaining({ id: elsewhere }));
    // An instance that moved to another herd is that herd's to show, not this one's.
    await t.db.execute(sql`UPDATE instances SET herd_id = ${other} WHERE id = ${r.id}`);
    expect((await lagHistory(t.db, { herdId: r.herd_id }, 'hour', now)).series.map((s) => s.instanceId)).not.toContain(r.id);
    await t.db.execute(sql`UPDATE instances SET herd_id = ${r.herd_id} WHERE id = ${r.id}`);
    const week = await lagHistory(t.db, { instanceId: r.id }, 'week', now);
    expect(week.series).toHaveLength(1);
    // 30-minute buckets: the three recent samples may share one or straddle two; the worst is kept.
    expect(Math.max(...week.series[0]!.points.map((p) => p.bytes ?? 0))).toBe(400);
    expect(week.series[0]!.points.length).toBeLessThanOrEqual(3);
    expect(week.operations.map((o) => o.id)).toEqual([before, during, running]);
  });
});
