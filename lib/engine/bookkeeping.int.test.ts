// The engine's bookkeeping against a real pgherd database: the herd lease claim, the operation
// settling in the database (also when two targets end at the same moment), and the step records.
import { and, eq, inArray, sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { herdLeases, instances, operations, operationSteps, operationTargets, owedCleanups } from '@/db/schema';
import { claimOwedForCleanup } from '@/lib/engine/owed';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { waitFor } from '@/lib/testing/wait';
import { dbRecorder } from '@/lib/engine/db-recorder';
import { instanceWithHerd, loadInstanceWithHerd } from '@/lib/fleet/instance-ref';
import { FINISH } from '@/lib/engine/execute-target';
import { CLAIM, claimMany, claimTarget } from '@/lib/engine/lease';
import { operationView } from '@/lib/engine/operation-view';
import { herdNow } from '@/lib/fleet/herds/topology';
import { SYSTEM_ACCESS } from '@/lib/engine/access';

let t: TestDb;
let members: { id: number; herdId: number }[] = [];

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  members = await t.db.select({ id: instances.id, herdId: instances.herdId }).from(instances).orderBy(instances.id);
});
afterAll(async () => ifAssigned(t)?.close());

/** An operation with one queued target per instance given. */
async function operation(instanceIds: number[]) {
  const [op] = await t.db
    .insert(operations)
    .values({ action: 'reload', status: 'queued', planDigest: 'x', requestedByName: 'test' })
    .returning();
  const targets = await t.db
    .insert(operationTargets)
    .values(
      instanceIds.map((id) => ({
        operationId: op!.id,
        instanceId: id,
        herdId: members.find((m) => m.id === id)!.herdId,
        label: `i${id}`,
        status: 'queued' as const,
      })),
    )
    .returning();
  return { op, targets };
}

const opRow = async (id: number) => (await t.db.select().from(operations).where(eq(operations.id, id)))[0];

describe('claimTarget', () => {
  it('grants a herd\u2019s lease in target order, to one holder at a time, only to a queued target, with a new generation each time', async () => {
    const herd = members[0]!.herdId;
    const sameHerd = members.filter((m) => m.herdId === herd).map((m) => m.id);
    const {
      op,
      targets: [first, second],
    } = await operation(sameHerd.slice(0, 2));
    // The second target waits while the first is open, whoever asks (and reads no inventory).
    expect(await claimTarget(t.db, second!.id, 'w1')).toMatchObject({ attempts: null, members: null });
    const got = await claimTarget(t.db, first!.id, 'w1');
    expect(got).toMatchObject({ id: first!.id, operation_id: op!.id, action: 'reload', attempts: 1 });
    // The claim that grants reads the instance's herd as the inventory is now, as loadInstanceWithHerd does.
    expect(instanceWithHerd(first!.instanceId!, got!.members!)).toEqual(await loadInstanceWithHerd(t.db, first!.instanceId!));
    expect(got!.members!.map((m) => m.id)).toEqual(members.filter((m) => m.herdId === herd).map((m) => m.id));
    expect((await opRow(op!.id))!.status).toBe('running');
    // A second delivery of the same job, to another worker or to the same one, does not run it again.
    expect((await claimTarget(t.db, first!.id, 'w2'))?.attempts).toBeNull();
    expect((await claimTarget(t.db, first!.id, 'w1'))?.attempts).toBeNull();
    // Not even once its heartbeat has stopped for the TTL: a running target is never claimed again
    // (reconcile marks it interrupted; a retry plans it anew).
    await t.db
      .update(herdLeases)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(herdLeases.herdId, herd));
    expect((await claimTarget(t.db, first!.id, 'w2'))?.attempts).toBeNull();
    const [held] = await t.db.select().from(herdLeases).where(eq(herdLeases.herdId, herd));
    expect(held).toMatchObject({ targetId: first!.id, holder: 'w1' });
    // The next target of the herd takes over an expired lease once the first is no longer open, with a newer generation.
    await t.db.update(operationTargets).set({ status: 'interrupted' }).where(eq(operationTargets.id, first!.id));
    const next = await claimTarget(t.db, second!.id, 'w2');
    expect(next).toMatchObject({ attempts: 1 });
    expect(next!.generation).toBeGreaterThan(got!.generation!);
    const [lease] = await t.db.select().from(herdLeases).where(eq(herdLeases.herdId, herd));
    expect(lease).toMatchObject({ targetId: second!.id, holder: 'w2', generation: next!.generation });
  });

  it('does not take a lease for a target of a cancelled operation', async () => {
    const {
      op,
      targets: [one],
    } = await operation([members[3]!.id]);
    await t.db.update(operations).set({ cancelRequested: true }).where(eq(operations.id, op!.id));
    expect(await claimTarget(t.db, one!.id, 'w1')).toMatchObject({ cancel_requested: true, attempts: null });
    expect(await t.db.select().from(herdLeases).where(eq(herdLeases.targetId, one!.id))).toEqual([]);
  });
});

describe('claims made together (claimMany)', () => {
  it('grant each herd once, to its earliest open target, start each operation granted, and grant a target asked twice once', async () => {
    // Three herds of pgherd's own (no lab member in them): A with two targets of one operation, B with
    // one of another, C with one of an operation being cancelled.
    const { rows: hs } = await t.db.execute<{ id: number }>(sql`
      INSERT INTO herds (environment_id, name) SELECT (SELECT min(id) FROM environments), 'together-' || g FROM generate_series(1, 3) g RETURNING id`);
    const [ha, hb, hc] = hs.map((h) => h.id);
    const op = async (herdIds: number[], cancel = false) => {
      const [o] = await t.db
        .insert(operations)
        .values({ action: 'reload', status: 'queued', planDigest: 'x', requestedByName: 'test', cancelRequested: cancel })
        .returning();
      const ts = await t.db
        .insert(operationTargets)
        .values(herdIds.map((herdId) => ({ operationId: o!.id, herdId, label: `h${herdId}`, status: 'queued' as const })))
        .returning();
      return { op: o!, ids: ts.map((x) => x.id) };
    };
    const a = await op([ha!, ha!]);
    const b = await op([hb!]);
    const c = await op([hc!], true);
    const [a1, a2] = a.ids;
    const asked = [a2!, a1!, b.ids[0]!, a1!, c.ids[0]!];
    const rows = await claimMany(
      t.db,
      asked.map((id) => ({ id, holder: 'w-together' })),
    );
    expect(rows.map((r) => [r?.id, r?.attempts])).toEqual([
      [a2, null], // A's later target waits for the earlier one
      [a1, 1],
      [b.ids[0], 1],
      [a1, null], // asked twice: granted once
      [c.ids[0], null], // its operation is being cancelled
    ]);
    const leases = await t.db
      .select()
      .from(herdLeases)
      .where(inArray(herdLeases.herdId, [ha!, hb!, hc!]));
    expect(leases.map((l) => [l.herdId, l.targetId, l.holder]).sort()).toEqual(
      [
        [ha, a1, 'w-together'],
        [hb, b.ids[0], 'w-together'],
      ].sort(),
    );
    expect([(await opRow(a.op.id))!.status, (await opRow(b.op.id))!.status, (await opRow(c.op.id))!.status]).toEqual([
      'running',
      'running',
      'queued',
    ]);
    const statuses = await t.db
      .select({ id: operationTargets.id, status: operationTargets.status, attempts: operationTargets.attempts })
      .from(operationTargets)
      .where(inArray(operationTargets.id, [a1!, a2!, b.ids[0]!, c.ids[0]!]))
      .orderBy(operationTargets.id);
    expect(statuses.map((x) => [x.status, x.attempts])).toEqual([
      ['running', 1],
      ['queued', 0],
      ['running', 1],
      ['queued', 0],
    ]);
  });
});

describe('claiming the targets of a large operation', () => {
  it.each([
    ['statistics taken while every target was queued', 'queued'],
    ['statistics taken while every target was running', 'running'],
  ] as const)('20 at a time, %s, reads by index only: no sequential scan of the targets, operations or leases', async (_, analyzed) => {
    const [op] = await t.db
      .insert(operations)
      .values({ action: 'reload', status: 'queued', planDigest: 'x', requestedByName: 'test' })
      .returning();
    await t.db.execute(sql`
      WITH h AS (INSERT INTO herds (environment_id, name) SELECT (SELECT min(id) FROM environments), 'claim-' || ${op!.id}::int || '-' || g
                 FROM generate_series(1, 2000) g RETURNING id)
      INSERT INTO operation_targets (operation_id, herd_id, label, status) SELECT ${op!.id}, h.id, 'claim-' || h.id, ${analyzed}::operation_status FROM h`);
    // A history of operations, as a fleet that has used pgherd for a while has (a table of five rows
    // is best read whole, and the planner would be right to).
    if (analyzed === 'queued')
      await t.db.execute(sql`
        INSERT INTO operations (action, status, plan_digest, requested_by_name, finished_at)
        SELECT 'reload', 'succeeded', 'x', 'history', now() FROM generate_series(1, 20000)`);
    await t.db.execute(sql`ANALYZE operation_targets`);
    await t.db.execute(sql`ANALYZE herd_leases`);
    await t.db.execute(sql`ANALYZE operations`);
    await t.db.execute(sql`UPDATE operation_targets SET status = 'queued' WHERE operation_id = ${op!.id}`);
    const ids = (await t.db.select({ id: operationTargets.id }).from(operationTargets).where(eq(operationTargets.operationId, op!.id))).map(
      (r) => r.id,
    );
    const client = await t.db.$client.connect();
    const counts = async () =>
      (
        await client.query<{ relname: string; seq_scan: string; idx_tup_fetch: string }>(
          `SELECT relname, seq_scan, idx_tup_fetch FROM pg_stat_xact_user_tables
           WHERE relname IN ('operation_targets', 'herd_leases', 'operations') ORDER BY relname`,
        )
      ).rows.map((r) => ({ relname: r.relname, seq_scan: Number(r.seq_scan), idx_tup_fetch: Number(r.idx_tup_fetch) }));
    let granted = 0;
    try {
      await client.query('BEGIN');
      const before = await counts();
      for (let i = 0; i < ids.length; i += 20) {
        const { rows } = await client.query<{ attempts: number | null }>({
          name: CLAIM.name,
          text: CLAIM.text,
          values: [ids.slice(i, i + 20), 'w-large', 15_000, false],
        });
        granted += rows.filter((r) => r.attempts === 1).length;
      }
      const after = await counts();
      await client.query('COMMIT');
      // A scan of a whole table for each claim would be quadratic in the fleet's history; a few rows
      // fetched a target, where reading every open target of the operation would fetch thousands.
      expect(
        after.map((r, i) => [
          r.relname,
          r.seq_scan - before[i]!.seq_scan <= 2,
          r.idx_tup_fetch - before[i]!.idx_tup_fetch <= 10 * ids.length,
        ]),
      ).toEqual([
        ['herd_leases', true, true],
        ['operation_targets', true, true],
        ['operations', true, true],
      ]);
    } finally {
      client.release();
    }
    expect(granted).toBe(2000);
    expect((await opRow(op!.id))!.status).toBe('running');
  });
});

describe('an operation settles in the database', () => {
  it('when two of its targets end in transactions that overlap, the later one settles it', async () => {
    const {
      op,
      targets: [a, b],
    } = await operation([members[6]!.id, members[9]!.id]);
    await t.db.update(operationTargets).set({ status: 'running' }).where(eq(operationTargets.operationId, op!.id));
    const ca = new pg.Client({ connectionString: t.url });
    const cb = new pg.Client({ connectionString: t.url });
    await ca.connect();
    await cb.connect();
    try {
      const bPid = (await cb.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await ca.query('BEGIN');
      await cb.query('BEGIN');
      await ca.query(`UPDATE operation_targets SET status = 'failed' WHERE id = $1`, [a!.id]);
      // B's update waits for A (both settle through the operation's row), then sees A ended.
      const bDone = cb.query(`UPDATE operation_targets SET status = 'succeeded' WHERE id = $1`, [b!.id]);
      await waitFor(
        "B waiting for A's lock",
        async () =>
          (await t.db.execute(sql`SELECT 1 FROM pg_stat_activity WHERE pid = ${bPid} AND wait_event_type = 'Lock'`)).rows.length > 0,
      );
      expect((await opRow(op!.id))!.finishedAt).toBeNull();
      await ca.query('COMMIT');
      await bDone;
      await cb.query('COMMIT');
    } finally {
      await ca.end();
      await cb.end();
    }
    const settled = await opRow(op!.id);
    expect(settled!.status).toBe('partial');
    expect(settled!.finishedAt).not.toBeNull();
  });

  it('as succeeded, failed or cancelled, and not while a target is open', async () => {
    const {
      op,
      targets: [a, b],
    } = await operation([members[12]!.id, members[15]!.id]);
    await t.db.update(operationTargets).set({ status: 'succeeded' }).where(eq(operationTargets.id, a!.id));
    expect((await opRow(op!.id))!.finishedAt).toBeNull();
    await t.db.update(operationTargets).set({ status: 'succeeded' }).where(eq(operationTargets.id, b!.id));
    expect((await opRow(op!.id))!.status).toBe('succeeded');

    const cancelled = await operation([members[1]!.id, members[4]!.id]);
    await t.db.update(operationTargets).set({ status: 'cancelled' }).where(eq(operationTargets.operationId, cancelled.op!.id));
    expect((await opRow(cancelled.op!.id))!.status).toBe('cancelled');

    const failed = await operation([members[2]!.id]);
    await t.db.update(operationTargets).set({ status: 'interrupted' }).where(eq(operationTargets.operationId, failed.op!.id));
    expect((await opRow(failed.op!.id))!.status).toBe('failed');
  });
});

describe('ending the targets of a large operation', () => {
  // A rolling operation's settling also asks whether the target's wave is still open (its last target
  // ending wakes the conductor): one wave of 2,000, the next one's targets held behind it.
  // Statistics taken while every target runs: the planner believes nearly every target of the
  // operation is open. Taken while they were all queued (as submit takes them, just after inserting
  // them): it believes none runs, and the index of running targets the smallest way to one of them.
  it.each([
    ['at once', null, 'running', 1],
    ['in one wave of a rolling operation', { size: 2000 }, 'running', 1],
    ['at once, statistics taken while every target was queued', null, 'queued', 1],
    ['at once, ended 20 at a time', null, 'running', 20],
    ['in one wave of a rolling operation, ended 20 at a time', { size: 2000 }, 'running', 20],
    ['at once, ended 20 at a time, statistics taken while every target was queued', null, 'queued', 20],
  ] as const)(
    '%s, probes indexes only: no sequential scan of its targets (settling) or of the leases (giving one back)',
    async (_, waves, analyzed, together) => {
      // 2,000 one-target herds, every target running and holding its herd's lease.
      const [op] = await t.db
        .insert(operations)
        .values({ action: 'reload', status: 'running', planDigest: 'x', requestedByName: 'test', waves })
        .returning();
      if (waves)
        await t.db.execute(sql`
        INSERT INTO operation_targets (operation_id, label, status, wave, held)
        SELECT ${op!.id}, 'later-' || g, 'queued', 2, true FROM generate_series(1, 2000) g`);
      await t.db.execute(sql`
      WITH h AS (INSERT INTO herds (environment_id, name) SELECT (SELECT min(id) FROM environments), 'probe-' || ${op!.id}::int || '-' || g
                 FROM generate_series(1, 2000) g RETURNING id),
           tg AS (INSERT INTO operation_targets (operation_id, herd_id, label, status, attempts)
                  SELECT ${op!.id}, h.id, 'probe-' || h.id, ${analyzed}::operation_status, 1 FROM h RETURNING id, herd_id)
      INSERT INTO herd_leases (herd_id, target_id, holder, expires_at) SELECT herd_id, id, 'w1', now() + interval '1 hour' FROM tg`);
      await t.db.execute(sql`ANALYZE operation_targets`);
      await t.db.execute(sql`ANALYZE herd_leases`);
      if (analyzed === 'queued')
        await t.db.execute(sql`UPDATE operation_targets SET status = 'running' WHERE operation_id = ${op!.id} AND herd_id IS NOT NULL`);
      const ids = (
        await t.db
          .select({ id: operationTargets.id })
          .from(operationTargets)
          .where(and(eq(operationTargets.operationId, op!.id), eq(operationTargets.status, 'running')))
      ).map((r) => r.id);
      expect(ids).toHaveLength(2000);
      const client = await t.db.$client.connect();
      // This transaction's counts: what the connection did before it (an earlier test's statements)
      // may not have been reported yet, and Postgres counts it here until it is (Postgres 15).
      const counts = async () =>
        (
          await client.query<{ relname: string; seq_scan: string; idx_tup_fetch: string }>(
            `SELECT relname, seq_scan, idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname IN ('operation_targets', 'herd_leases') ORDER BY relname`,
          )
        ).rows.map((r) => ({ relname: r.relname, seq_scan: Number(r.seq_scan), idx_tup_fetch: Number(r.idx_tup_fetch) }));
      try {
        await client.query('BEGIN');
        const before = await counts();
        // As a worker ends each: execute-target's statement (the target's status, then its lease by
        // target), alone or for several targets at once, each with its step's end.
        for (let i = 0; i < ids.length; i += together) {
          const batch = ids.slice(i, i + together);
          const at = new Date();
          const many = (v: unknown) => batch.map(() => v);
          // Alone, with no step's end to write (as a target refused before its first step); together, each with its step's end.
          const steps =
            together === 1
              ? [[], [], [], [], [], [], [], [], [], []]
              : [batch, many(1), many('nothing'), many('succeeded'), many(''), many(0), many(''), many(''), many(at), many(at)];
          await client.query({
            name: FINISH.name,
            text: FINISH.text,
            values: [batch, many('succeeded'), many(null), many(null), many(null), ...steps],
          });
        }
        const after = await counts();
        await client.query('COMMIT');
        // A sequential scan for each target that ends is a scan of the operation (or of every lease) a
        // target: quadratic in the operation's size. Once, the settling's final tally may scan.
        // Nor an index walked past the ended targets (rows fetched quadratic in the operation's size):
        // a handful of rows a target (measured: 4 at once, 5 in a rolling operation), where a walk past the
        // ended ones would fetch a million.
        const scans = after.map((r, i) => ({
          relname: r.relname,
          seq_scan: r.seq_scan - before[i]!.seq_scan,
          idx_tup_fetch: r.idx_tup_fetch - before[i]!.idx_tup_fetch,
        }));
        expect(scans.map((r) => [r.relname, r.seq_scan <= 2, r.idx_tup_fetch <= 10 * ids.length])).toEqual([
          ['herd_leases', true, true],
          ['operation_targets', true, true],
        ]);
      } finally {
        client.release();
      }
      // At once, the operation is settled; rolling, the next wave is still to come.
      expect((await opRow(op!.id))!.status).toBe(waves ? 'running' : 'succeeded');
      expect(await t.db.select().from(herdLeases).where(inArray(herdLeases.targetId, ids))).toEqual([]);
    },
  );
});

describe('dbRecorder', () => {
  it('shows a step running once it lasts, writes a quick one once (when the next starts), and keeps each start time', async () => {
    const {
      targets: [target],
    } = await operation([members[5]!.id]);
    const rec = dbRecorder(t.db, target!.id, { startDelayMs: 50, secrets: ['s3cret'] });
    const steps = () => t.db.select().from(operationSteps).where(eq(operationSteps.targetId, target!.id)).orderBy(operationSteps.seq);

    await rec.start(1, 'quick');
    await rec.finish(1, { name: 'quick', status: 'succeeded', command: 'echo s3cret', exitCode: 0, stdout: 'ok' });
    await rec.start(2, 'slow');
    const during = await waitFor('the slow step shown running', async () => {
      const s = await steps();
      return s.length === 2 && s;
    });
    expect(during.map((s) => [s.seq, s.name, s.status])).toEqual([
      [1, 'quick', 'succeeded'],
      [2, 'slow', 'running'],
    ]);
    expect(during[0]!.command).toBe('echo ***');
    const slowStart = during[1]!.startedAt;
    const finishing = new Date();
    await rec.finish(2, { name: 'slow', status: 'failed', exitCode: 3, stderr: 'boom' });
    // The last step's end is held for the statement that ends the target (here: flushed).
    expect((await steps())[1]).toMatchObject({ status: 'running' });
    expect(rec.held()?.slice(0, 3)).toEqual([2, 'slow', 'failed']);
    await rec.flush();
    expect(rec.held()).toBeNull();
    const after = await steps();
    expect(after[1]).toMatchObject({ status: 'failed', exitCode: 3, stderrTail: 'boom' });
    expect(after[1]!.startedAt).toEqual(slowStart);
    // Its end is when it finished, past the time it was shown running.
    expect(after[1]!.finishedAt!.getTime()).toBeGreaterThanOrEqual(finishing.getTime());
    expect(after[1]!.finishedAt!.getTime()).toBeGreaterThan(slowStart.getTime());
  });
});

describe('the operation page polling for what changed', () => {
  it('sends, after a cursor, only the targets whose status changed or whose steps moved, with every id in order', async () => {
    const { op, targets } = await operation(members.slice(0, 6).map((m) => m.id));
    const ids = targets.map((x) => x.id);
    // Nothing has happened to these for a minute.
    await t.db.execute(sql`UPDATE operation_targets SET updated_at = now() - interval '1 minute' WHERE operation_id = ${op!.id}`);
    const first = await operationView(t.db, op!.id, SYSTEM_ACCESS);
    expect(first!.targets.map((x) => x.id)).toEqual(ids);
    const cursor = new Date(first!.cursor);
    expect((await operationView(t.db, op!.id, SYSTEM_ACCESS, cursor))!.targets).toEqual([]);
    // One target ends; another's step starts (written by the recorder, as a worker does).
    await t.db.update(operationTargets).set({ status: 'succeeded' }).where(eq(operationTargets.id, ids[1]!));
    await t.db.insert(operationSteps).values({ targetId: ids[4]!, seq: 1, name: 'reload', status: 'running' });
    const delta = await operationView(t.db, op!.id, SYSTEM_ACCESS, cursor);
    expect(delta!.targets.map((x) => [x.id, x.status, x.steps.map((s) => s.name)])).toEqual([
      [ids[1], 'succeeded', []],
      [ids[4], 'queued', ['reload']],
    ]);
    expect(delta!.order).toEqual(ids);
    expect(new Date(delta!.cursor).getTime()).toBeGreaterThanOrEqual(cursor.getTime());
  });
});

describe("a herd's recent operations", () => {
  it('lists an operation once however many of its targets are the herd\u2019s members', async () => {
    const herdId = members[0]!.herdId;
    const mine = members.filter((m) => m.herdId === herdId).map((m) => m.id);
    expect(mine.length).toBeGreaterThan(1);
    const { op } = await operation(mine);
    const now = await herdNow(t.db, herdId);
    expect(now!.operations.filter((o) => o.id === op!.id)).toHaveLength(1);
    expect(new Set(now!.operations.map((o) => o.id)).size).toBe(now!.operations.length);
  });
});

describe("a cleanup's claim of what its target owes", () => {
  it('is refused while another target holds the herd, and once the row is settled or claimed; granted otherwise', async () => {
    const herd = members[1]!.herdId;
    const sameHerd = members.filter((m) => m.herdId === herd).map((m) => m.id);
    const {
      targets: [owing, next],
    } = await operation(sameHerd.slice(0, 2));
    const owe = async () =>
      (
        await t.db
          .insert(owedCleanups)
          .values({
            targetId: owing!.id,
            herdId: herd,
            kind: 'pooler-resume',
            says: 'RESUME',
            databases: ['app'],
            resumeToken: `t${Date.now()}`,
            dueBy: new Date(Date.now() + 60_000),
          })
          .returning()
      )[0]!.id;
    // The herd another target's now (the owing worker frozen past its lease, the next target granted):
    // not this cleanup's to give back, and the row is left for reconcile.
    await t.db.delete(herdLeases).where(eq(herdLeases.herdId, herd));
    await t.db.insert(herdLeases).values({ herdId: herd, targetId: next!.id, holder: 'w2', expiresAt: new Date(Date.now() + 60_000) });
    const held = await owe();
    expect(await claimOwedForCleanup(t.db, held)).toBe('not ours');
    expect((await t.db.select().from(owedCleanups).where(eq(owedCleanups.id, held)))[0]!.claimedUntil).toBeNull();
    // The other's lease expired (no one holds the herd), or its own lease: the cleanup's, once.
    await t.db
      .update(herdLeases)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(herdLeases.herdId, herd));
    expect(await claimOwedForCleanup(t.db, held)).toBe('ours');
    expect(await claimOwedForCleanup(t.db, held)).toBe('not ours');
    await t.db
      .update(herdLeases)
      .set({ targetId: owing!.id, expiresAt: new Date(Date.now() + 60_000) })
      .where(eq(herdLeases.herdId, herd));
    const own = await owe();
    expect(await claimOwedForCleanup(t.db, own)).toBe('ours');
    // Settled by reconcile: not ours.
    const settled = await owe();
    await t.db.update(owedCleanups).set({ settledAt: new Date(), settledHow: 'reconcile' }).where(eq(owedCleanups.id, settled));
    expect(await claimOwedForCleanup(t.db, settled)).toBe('not ours');
    await t.db.delete(herdLeases).where(eq(herdLeases.herdId, herd));
  });
});
