// Rolling operations on a lab of their own (environment "wave", herds a-d of a primary and two
// replicas each, 12 instances on 127.0.7.x over sites dc-east and dc-west): waves and their health
// gate, the failure budget, pause/resume, abort, and the sites' caps, asserted from the step records
// and from the instances themselves.
import { randomBytes } from 'node:crypto';
import { renameSync } from 'node:fs';
import path from 'node:path';
import { asc, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { environments, operations, operationSteps, operationTargets, operationWaves, sites } from '@/db/schema';
import { seededDatabase } from '@/lib/lab/seed';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { labIdentity, run as runAs } from '@/lib/lab/proc';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { waitFor } from '@/lib/testing/wait';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { restartAction } from '@/lib/actions/control/restart.action';
import { defineAction, type InstanceAction } from '@/lib/engine/define-action';
import { cancelOperation, pauseOperation, resumeOperation } from '@/lib/features/operations/operation-control';
import { runSql } from '@/lib/fleet/observe';
import { planOperation } from '@/lib/engine/plan';
import { producerConnection, targetQueue } from '@/lib/engine/queue';
import { registerAction } from '@/lib/actions/registry';
import { StalePlanError, submitOperation } from '@/lib/engine/submit';
import { wavesSchema } from '@/lib/engine/waves';
import { conductWaves } from '@/lib/engine/conductor';
import { startWorker } from '@/jobs/start-worker';
import { asks } from '@/lib/actions/drivers';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-waves-${process.pid}.json`);
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
let queue: ReturnType<typeof targetQueue>;
let producer: ReturnType<typeof producerConnection>;
const actor = { id: null, username: 'waves-test', access: SYSTEM_ACCESS };

/**
 * The touches a test holds: while `holding`, each touch waits after its query until the test releases it
 * (work that takes as long as the test says, so "running" is a state the test reads, never a race with a
 * clock). The worker runs in this process: the test sees who waits.
 */
const hold = {
  holding: false,
  /** The touches waiting, by target id. */
  waiting: new Map<number, () => void>(),
  released: 0,
  releasedIds: new Set<number>(),
  /** What happened, in order (printed when a test fails). */
  events: [] as string[],
  /** Releases one waiting touch (the first that began waiting). */
  releaseOne() {
    const [first] = this.waiting;
    if (!first) return false;
    this.waiting.delete(first[0]);
    this.released++;
    this.releasedIds.add(first[0]);
    this.events.push(`${String(Date.now() % 100_000)} release target ${String(first[0])}`);
    first[1]();
    return true;
  },
  releaseAll() {
    while (this.releaseOne());
  },
  reset(holding: boolean) {
    this.releaseAll();
    this.holding = holding;
    this.released = 0;
    this.releasedIds = new Set();
    this.events = [];
  },
};

/**
 * Runs the operations' held targets to the end one release at a time, never releasing before as many as
 * may run at once are waiting: the cap, or fewer when fewer can run (a herd runs its targets one after
 * another, in target order, so of the targets not released yet only the first of each herd can be
 * running). Each target is seen waiting, and how many wait at once is never above the cap: a cap broken
 * would show here as more waiting than the cap (they cannot end until released).
 */
async function releaseInTurn(operationIds: number[], cap: number) {
  const all = await db
    .select({ id: operationTargets.id, herdId: operationTargets.herdId })
    .from(operationTargets)
    .where(inArray(operationTargets.operationId, operationIds));
  while (hold.released < all.length) {
    const left = all.filter((t) => !hold.releasedIds.has(t.id));
    const firstOfHerd = left.filter((t) => !left.some((o) => o.herdId === t.herdId && o.id < t.id));
    const want = Math.min(cap, firstOfHerd.length);
    await waitFor(`${String(want)} held at once`, async () => hold.waiting.size >= want || undefined, WAIT_MS);
    expect(hold.waiting.size).toBeLessThanOrEqual(cap);
    hold.releaseOne();
  }
}

/** Real work that takes a while (a query on the instance, then as long as the test holds it), with a cleanup that always runs. */
const slowAction: InstanceAction = defineAction({
  name: 'waves-test-slow',
  control: asks(null),
  label: 'Slow touch',
  permission: 'operator',
  dangerous: false,
  plan: (t) => ({
    steps: [
      {
        name: 'touch',
        does: { kind: 'touch' },
        says: 'run SELECT 1 on it, then wait while the test holds it',
        timeoutMs: 60_000,
        run: async (x) => {
          await runSql(t, 'SELECT 1');
          if (!hold.holding) return;
          const key = x.deps.targetId ?? -t.id;
          hold.events.push(`${String(Date.now() % 100_000)} hold target ${String(key)}`);
          await new Promise<void>((r) => {
            hold.waiting.set(key, r);
            x.signal.addEventListener('abort', () => r(), { once: true });
          });
        },
        always: {
          name: 'clean up (always)',
          does: { kind: 'clean-up-always' },
          says: 'run SELECT 1 on it, whatever happened',
          timeoutMs: 10_000,
          run: () => runSql(t, 'SELECT 1'),
        },
      },
      {
        name: 'touch again',
        does: { kind: 'touch-again' },
        says: 'run SELECT 1 on it again',
        timeoutMs: 10_000,
        run: () => runSql(t, 'SELECT 1'),
      },
    ],
    warnings: [],
  }),
});

beforeAll(async () => {
  lab = await startLab({
    aws: false,
    file: LAB_FILE,
    fleet: { environments: ['wave'], herds: ['a', 'b', 'c', 'd'], replicas: 2, sites: ['dc-east', 'dc-west'], subnet: '127.0.7' },
    dns: false,
    ldap: false,
    pgbouncer: [],
  });
  const c = await seededDatabase(lab, 6);
  db = c.db;
  closeDb = () => c.pool.end();
  registerAction(slowAction);
  producer = producerConnection(lab.redis!.url);
  queue = targetQueue(producer, 'waves');
  worker = await startWorker({
    databaseUrl: lab.database.url,
    redisUrl: lab.redis!.url,
    sshKeyPath: lab.ssh!.privateKeyPath,
    concurrency: 8,
    refreshEveryMs: 0,
    reconcileEveryMs: 1000,
    waveRoundMs: 200,
    queuePrefix: 'waves',
    quiet: true,
  });
}, 180_000);

afterAll(async () => {
  try {
    await worker?.close();
    await ifAssigned(queue)?.close();
    ifAssigned(producer)?.disconnect();
    await ifAssigned(closeDb)?.();
  } finally {
    await stopLab(LAB_FILE);
  }
});

const idOf = async (i: LabInstance) =>
  (await db.execute<{ id: number }>(sql`SELECT i.id FROM instances i JOIN servers s ON s.id = i.server_id WHERE s.hostname = ${i.server}`))
    .rows[0]!.id;
const url = (i: LabInstance) => `postgres://postgres@${i.address}:${i.port}/postgres`;
const member = (herd: string, n: number) => lab.instances.filter((i) => i.herd === herd)[n]!;

async function submit(action: InstanceAction, members: LabInstance[], waves: unknown) {
  const ids = await Promise.all(members.map(idOf));
  const spec = waves === null ? null : wavesSchema.parse(waves);
  const plan = await planOperation(db, SYSTEM_ACCESS, action, ids, {}, spec);
  const { id } = await submitOperation(
    db,
    queue,
    action,
    {
      instanceIds: ids,
      digest: plan.digest,
      confirmation: plan.typeToConfirm ?? '',
      idempotencyKey: randomBytes(8).toString('hex'),
      waves: spec,
    },
    actor,
  );
  return id;
}

/** How long a state is waited for here: waves, their gates' soaks and restarts over SSH. */
const WAIT_MS = 90_000;
/**
 * One round of the wave conductor, the only thing that starts a wave (the worker runs one every 200
 * ms): run by a test, it is the event after which a wave it should not start would have started.
 */
const conductorRound = () => conductWaves(db, queue);
const operation = async (id: number) => (await db.select().from(operations).where(eq(operations.id, id)))[0]!;
const settled = (id: number, ms = WAIT_MS) =>
  waitFor(`operation ${id} settled`, async () => (await operation(id)).finishedAt && operation(id), ms);
/** How an operation ended, with its targets' errors (so a failure says why). */
const howEnded = async (id: number) => {
  const ts = await targets((await settled(id)).id);
  const errors = ts.flatMap((t) => (t.error === null ? [] : [`target ${String(t.id)} ${t.status}: ${t.error}`]));
  return { status: (await operation(id)).status, errors: errors.length ? [...errors, ...hold.events] : [] };
};
const targets = (id: number) =>
  db.select().from(operationTargets).where(eq(operationTargets.operationId, id)).orderBy(asc(operationTargets.id));

/** Each target's window, from its first step's start to its last step's end. */
async function windows(operationIds: number[]) {
  const rows = await db
    .select({
      targetId: operationTargets.id,
      site: operationTargets.site,
      wave: operationTargets.wave,
      herdId: operationTargets.herdId,
      from: sql`min(${operationSteps.startedAt})`.mapWith((v) => new Date(v as string).getTime()),
      to: sql`max(${operationSteps.finishedAt})`.mapWith((v) => new Date(v as string).getTime()),
    })
    .from(operationTargets)
    .innerJoin(operationSteps, eq(operationSteps.targetId, operationTargets.id))
    .where(inArray(operationTargets.operationId, operationIds))
    .groupBy(operationTargets.id)
    .orderBy(asc(operationTargets.id));
  return rows;
}

/** The most windows open at one instant. */
function mostAtOnce(ws: { from: number; to: number }[]): number {
  const events = ws.flatMap((w) => [
    [w.from, 1],
    [w.to, -1],
  ]);
  // An end and a start at the same millisecond: the end first.
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let now = 0;
  let most = 0;
  for (const [, d] of events) most = Math.max(most, (now += d!));
  return most;
}

/**
 * Samples every replica's health from outside pgherd: replay lag in bytes behind its primary, or down.
 * Each herd on its own loop, its replicas at once: one herd's slow connection (a busy machine opens
 * them in hundreds of ms) must not leave another herd's soak window without a sample.
 */
function startLagSampler(members: LabInstance[]) {
  const samples: { at: number; herd: string; server: string; ok: boolean; lag: number | null }[] = [];
  const run = { stop: false };
  const sampleHerd = async (herd: string) => {
    while (!run.stop) {
      const [p, ...rs] = lab.instances.filter((i) => i.herd === herd);
      const at = Date.now();
      const head = await query<{ l: string }>(url(p!), 'SELECT pg_current_wal_lsn()::text AS l').catch(() => null);
      await Promise.all(
        rs.map(async (r) => {
          const row = await query<{ lag: string | null; s: string | null; paused: boolean }>(
            url(r),
            `SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::text AS lag,
                    (SELECT status FROM pg_stat_wal_receiver) AS s, pg_is_wal_replay_paused() AS paused`,
            [head?.[0]?.l ?? '0/0'],
          ).catch(() => null);
          const x = row?.[0];
          const ok = !!head && !!x && x.s === 'streaming' && !x.paused;
          samples.push({ at, herd, server: r.server, ok, lag: x?.lag == null ? null : Number(x.lag) });
        }),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const loop = Promise.all([...new Set(members.map((m) => m.herd))].map(sampleHerd));
  return {
    samples,
    stop: async () => {
      run.stop = true;
      await loop;
    },
  };
}

describe('rolling operations', () => {
  it('a rolling restart of 12 instances in waves of 3: waves in order, each wave after its herds were healthy for the soak', async () => {
    const all = lab.instances;
    expect(all).toHaveLength(12);
    const startedBefore = new Map(
      await Promise.all(
        all.map(
          async (i) => [i.server, (await query<{ t: Date }>(url(i), 'SELECT pg_postmaster_start_time() AS t'))[0]!.t.getTime()] as const,
        ),
      ),
    );
    const sampler = startLagSampler(all);
    const soakSeconds = 2;
    const maxLagBytes = 1024 * 1024;
    let id: number;
    try {
      id = await submit(restartAction, all, { size: 3, gate: { soakSeconds, maxLagBytes, maxLagSeconds: 10, deadlineSeconds: 120 } });
      const op = await settled(id, 150_000);
      expect(op.status).toBe('succeeded');
    } finally {
      await sampler.stop();
    }
    // Every instance was restarted, by this operation.
    for (const i of all) {
      const now = (await query<{ t: Date }>(url(i), 'SELECT pg_postmaster_start_time() AS t'))[0]!.t.getTime();
      expect(now, i.server).toBeGreaterThan(startedBefore.get(i.server)!);
    }
    const ws = await windows([id]);
    expect(ws.map((w) => w.wave)).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    const waves = await db.select().from(operationWaves).where(eq(operationWaves.operationId, id)).orderBy(asc(operationWaves.wave));
    // The last wave has no gate after it: it ended with the operation.
    expect(waves.map((w) => w.status)).toEqual(['passed', 'passed', 'passed', 'ended']);
    for (let k = 1; k < 4; k++) {
      const before = ws.filter((w) => w.wave === k);
      const after = ws.filter((w) => w.wave === k + 1);
      const ended = Math.max(...before.map((w) => w.to));
      const next = Math.min(...after.map((w) => w.from));
      // In order, with at least the soak between the last step of a wave and the first of the next.
      expect(next - ended, `wave ${k + 1} started ${next - ended} ms after wave ${k} ended`).toBeGreaterThanOrEqual(soakSeconds * 1000);
      // Seen from outside pgherd: in the soak before the next wave, every replica of the herds the wave
      // touched streamed, replay not paused, under the lag limit.
      const herds = new Set(all.filter((_, i) => ws[i]!.wave === k).map((i) => i.herd));
      const window = sampler.samples.filter((s) => herds.has(s.herd) && s.at >= next - soakSeconds * 1000 + 300 && s.at <= next);
      expect(window.length, `samples before wave ${k + 1}`).toBeGreaterThan(0);
      const bad = window.filter((s) => !s.ok || (s.lag ?? Infinity) > maxLagBytes);
      expect(bad, `unhealthy samples in the soak before wave ${k + 1}`).toEqual([]);
    }
  }, 180_000);

  it('a gate that does not pass pauses the operation with the reason and starts nothing more; resumed once replay resumes, it completes', async () => {
    const paused = member('b', 2);
    await query(url(paused), 'SELECT pg_wal_replay_pause()');
    let id = 0;
    try {
      id = await submit(slowAction, [member('b', 1), member('c', 1)], {
        size: 1,
        gate: { soakSeconds: 1, maxLagBytes: 1024 * 1024, maxLagSeconds: 10, deadlineSeconds: 3 },
      });
      const op = await waitFor(
        'paused',
        async () => {
          const o = await operation(id);
          return o.pausedAt && o;
        },
        WAIT_MS,
      );
      expect(op.pausedReason).toMatch(new RegExp(`^wave 1's health gate did not pass within 3 s: b: ${paused.server} replay paused`));
      expect(op.finishedAt).toBeNull();
      // Nothing new started, and nothing does while it stays paused: the round that would start wave 2,
      // run now, releases nothing.
      await conductorRound();
      const [first, second] = await targets(id);
      expect(first!.status).toBe('succeeded');
      expect(second).toMatchObject({ status: 'queued', held: true, attempts: 0 });
      const [, w2] = await db.select().from(operationWaves).where(eq(operationWaves.operationId, id)).orderBy(asc(operationWaves.wave));
      expect(w2!.status).toBe('pending');
    } finally {
      await query(url(paused), 'SELECT pg_wal_replay_resume()');
    }
    await resumeOperation(db, queue, id, actor);
    const op = await settled(id);
    expect(op.status).toBe('succeeded');
    expect(op.pausedAt).toBeNull();
    const [, second] = await targets(id);
    expect(second).toMatchObject({ status: 'succeeded', attempts: 1 });
  }, 60_000);

  it('a failure budget of 2: with three targets that fail, the operation stops after the second; the rest never start', async () => {
    // Three data directories moved away under running instances: pg_ctl restart fails on each.
    const broken = [member('a', 1), member('b', 1), member('c', 1)];
    const fine = [member('d', 1), member('d', 2)];
    for (const b of broken) renameSync(b.dataDirectory, `${b.dataDirectory}.away`);
    let id = 0;
    try {
      id = await submit(restartAction, [...broken, ...fine], { size: 1, budget: { failures: 2 } });
      const op = await waitFor(
        'paused',
        async () => {
          const o = await operation(id);
          return o.pausedAt && o;
        },
        WAIT_MS,
      );
      expect(op.pausedReason).toBe('failure budget spent: 2 of 2 started targets failed (budget: 2)');
      // The round that would start wave 3, run now, releases nothing: the rest stay held, which neither
      // a reconcile nor a worker takes.
      await conductorRound();
      const ts = await targets(id);
      expect(ts.slice(2).map((t) => t.held)).toEqual([true, true, true]);
      expect(ts.map((t) => [t.status, t.attempts])).toEqual([
        ['failed', 1],
        ['failed', 1],
        ['queued', 0],
        ['queued', 0],
        ['queued', 0],
      ]);
      // Their steps never ran.
      const steps = await db
        .select()
        .from(operationSteps)
        .where(
          inArray(
            operationSteps.targetId,
            ts.slice(2).map((t) => t.id),
          ),
        );
      expect(steps).toEqual([]);
    } finally {
      for (const b of broken) renameSync(`${b.dataDirectory}.away`, b.dataDirectory);
    }
    // Abort what is left: the rest end cancelled and the operation settles.
    await cancelOperation(db, id, actor);
    const op = await settled(id);
    expect(op.status).toBe('failed');
    expect((await targets(id)).map((t) => t.status)).toEqual(['failed', 'failed', 'cancelled', 'cancelled', 'cancelled']);
  }, 90_000);

  it('abort mid-wave: the running targets finish their step and run their cleanups, nothing else starts, the rest end cancelled', async () => {
    // Listed so that the first wave spans three herds (waves follow the order the targets were given in).
    const six = [member('a', 1), member('b', 1), member('c', 1), member('a', 2), member('b', 2), member('c', 2)];
    hold.reset(true);
    const id = await submit(slowAction, six, { size: 3 });
    await waitFor('wave 1 running, held', async () => hold.waiting.size === 3 || undefined, 30_000);
    await cancelOperation(db, id, actor);
    hold.reset(false);
    const op = await settled(id);
    expect(op.status).toBe('cancelled');
    const ts = await targets(id);
    expect(ts.map((t) => t.status)).toEqual(Array(6).fill('cancelled'));
    expect(ts.map((t) => t.attempts)).toEqual([1, 1, 1, 0, 0, 0]);
    const steps = await db
      .select({ targetId: operationSteps.targetId, name: operationSteps.name, status: operationSteps.status })
      .from(operationSteps)
      .where(
        inArray(
          operationSteps.targetId,
          ts.map((t) => t.id),
        ),
      )
      .orderBy(asc(operationSteps.targetId), asc(operationSteps.seq));
    for (const t of ts.slice(0, 3)) {
      expect(steps.filter((s) => s.targetId === t.id).map((s) => `${s.name}: ${s.status}`)).toEqual([
        'touch: succeeded',
        'clean up (always): succeeded',
      ]);
    }
    expect(steps.filter((s) => ts.slice(3).some((t) => t.id === s.targetId))).toEqual([]);
  }, 60_000);

  it('pause and resume by hand: paused, nothing new starts; resumed, it completes', async () => {
    const four = [member('a', 1), member('b', 1), member('c', 1), member('d', 1)];
    hold.reset(true);
    const id = await submit(slowAction, four, { size: 2 });
    await waitFor('wave 1 running, held', async () => hold.waiting.size === 2 || undefined, WAIT_MS);
    await pauseOperation(db, id, actor);
    await expect(pauseOperation(db, id, actor)).rejects.toThrow(`operation #${id} is already paused`);
    // The running ones finish; the second wave never starts while paused.
    hold.reset(false);
    await waitFor('wave 1 ended', async () => (await targets(id)).filter((t) => t.status === 'succeeded').length === 2, WAIT_MS);
    // The round that would start wave 2 once wave 1 ended, run now, releases nothing.
    await conductorRound();
    expect((await targets(id)).map((t) => [t.status, t.held])).toEqual([
      ['succeeded', false],
      ['succeeded', false],
      ['queued', true],
      ['queued', true],
    ]);
    expect((await operation(id)).pausedReason).toBe('paused by waves-test');
    await resumeOperation(db, queue, id, actor);
    await expect(resumeOperation(db, queue, id, actor)).rejects.toThrow(`operation #${id} is not paused`);
    expect(await howEnded(id)).toEqual({ status: 'succeeded', errors: [] });
  }, 60_000);

  it('a site capped at 2: two rolling operations at once never run more than 2 targets there', async () => {
    await db.update(sites).set({ maxRunning: 2 }).where(eq(sites.name, 'dc-east'));
    try {
      // dc-east holds the primaries and the second replicas: one operation on each, 4 herds apart.
      const east = lab.instances.filter((i) => i.site === 'dc-east');
      expect(east).toHaveLength(8);
      const primaries = east.filter((i) => i.role === 'primary');
      const replicas = east.filter((i) => i.role === 'replica');
      hold.reset(true);
      const [one, two] = await Promise.all([submit(slowAction, primaries, { size: 4 }), submit(slowAction, replicas, { size: 4 })]);
      await releaseInTurn([one, two], 2);
      expect(await howEnded(one)).toEqual({ status: 'succeeded', errors: [] });
      expect(await howEnded(two)).toEqual({ status: 'succeeded', errors: [] });
      const ws = await windows([one, two]);
      expect(ws).toHaveLength(8);
      expect(ws.every((w) => w.site === 'dc-east')).toBe(true);
      // The cap, from the step records; and it was used (two ran at once), not merely everything in turn.
      expect(mostAtOnce(ws)).toBe(2);
    } finally {
      hold.reset(false);
      await db.update(sites).set({ maxRunning: null }).where(eq(sites.name, 'dc-east'));
    }
  }, 90_000);

  it('an environment capped at 1: targets in three herds run one after another, never two at once', async () => {
    await db.update(environments).set({ maxRunning: 1 }).where(eq(environments.name, 'wave'));
    try {
      hold.reset(true);
      const id = await submit(slowAction, [member('a', 1), member('b', 1), member('c', 1)], null);
      await releaseInTurn([id], 1);
      expect(await howEnded(id)).toEqual({ status: 'succeeded', errors: [] });
      expect(mostAtOnce(await windows([id]))).toBe(1);
    } finally {
      hold.reset(false);
      await db.update(environments).set({ maxRunning: null }).where(eq(environments.name, 'wave'));
    }
  }, 60_000);

  it('the waves are part of what is confirmed: a submit with other waves than the plan showed (or its ids in another order) is stale, and nothing runs', async () => {
    const ids = await Promise.all([member('a', 1), member('b', 1)].map(idOf));
    const shown = wavesSchema.parse({ size: 1, gate: { soakSeconds: 5 }, budget: { failures: 1 } });
    const plan = await planOperation(db, SYSTEM_ACCESS, slowAction, ids, {}, shown);
    expect(plan.digest).not.toBe((await planOperation(db, SYSTEM_ACCESS, slowAction, ids, {})).digest);
    const before = (await db.select({ id: operations.id }).from(operations)).length;
    for (const other of [null, wavesSchema.parse({ size: 2 })])
      await expect(
        submitOperation(
          db,
          queue,
          slowAction,
          { instanceIds: ids, digest: plan.digest, confirmation: '', idempotencyKey: randomBytes(8).toString('hex'), waves: other },
          actor,
        ),
      ).rejects.toBeInstanceOf(StalePlanError);
    // The same ids and waves in another order: as listed, another target would go first.
    await expect(
      submitOperation(
        db,
        queue,
        slowAction,
        {
          instanceIds: [...ids].reverse(),
          digest: plan.digest,
          confirmation: '',
          idempotencyKey: randomBytes(8).toString('hex'),
          waves: shown,
        },
        actor,
      ),
    ).rejects.toBeInstanceOf(StalePlanError);
    // Without waves the order changes nothing that will happen: the same plan.
    expect((await planOperation(db, SYSTEM_ACCESS, slowAction, [...ids].reverse(), {})).digest).toBe(
      (await planOperation(db, SYSTEM_ACCESS, slowAction, ids, {})).digest,
    );
    // A canary larger than the targets is refused at planning, as malformed waves are.
    await expect(planOperation(db, SYSTEM_ACCESS, slowAction, ids, {}, wavesSchema.parse({ size: 1, canary: 50 }))).rejects.toThrow(
      'a canary of 50 is more than the 2 targets that can run',
    );
    expect((await db.select({ id: operations.id }).from(operations)).length).toBe(before);
  });

  it('the gate waits for every herd a wave touched, also where its target failed: a replica down pauses it', async () => {
    // A replica stopped behind the inventory's back (it still says running): restarting it fails, and
    // its herd is not healthy.
    const down = member('c', 2);
    await query(url(down), 'CHECKPOINT');
    await runAs(labIdentity(), [path.join(lab.pgBin, 'pg_ctl'), 'stop', '-m', 'fast', '-w', '-D', down.dataDirectory]);
    let id = 0;
    try {
      id = await submit(restartAction, [down, member('d', 1)], { size: 1, gate: { soakSeconds: 1, deadlineSeconds: 3 } });
      const op = await waitFor(
        'paused',
        async () => {
          const o = await operation(id);
          return o.pausedAt && o;
        },
        WAIT_MS,
      );
      expect(op.pausedReason).toMatch(new RegExp(`^wave 1's health gate did not pass within 3 s: c: ${down.server} not answering`));
      const [first, second] = await targets(id);
      expect(first!.status).toBe('failed');
      expect(second).toMatchObject({ status: 'queued', held: true, attempts: 0 });
    } finally {
      await runAs(labIdentity(), [
        path.join(lab.pgBin, 'pg_ctl'),
        'start',
        '-w',
        '-D',
        down.dataDirectory,
        '-l',
        path.join(down.dataDirectory, 'restart.log'),
      ]);
    }
    await cancelOperation(db, id, actor);
    // One target failed, the other never started: nothing succeeded.
    expect((await settled(id)).status).toBe('failed');
    // Finished: no longer paused (the reason stays), the wave that never started is skipped, and a
    // second abort is refused without writing anything.
    const op = await operation(id);
    expect(op.pausedAt).toBeNull();
    expect(op.pausedReason).toMatch(/^wave 1's health gate/);
    const waves = await db.select().from(operationWaves).where(eq(operationWaves.operationId, id)).orderBy(asc(operationWaves.wave));
    expect(waves.map((w) => w.status)).toEqual(['ended', 'skipped']);
    await expect(cancelOperation(db, id, actor)).rejects.toThrow(`operation #${id} has finished: it cannot be aborted`);
  }, 60_000);

  it('a replica caught up with a quiet primary is healthy, however old its last replayed transaction', async () => {
    // One transaction on d's primary, then quiet for longer than the gate's seconds limit: both replicas
    // replayed it, and it is over a second old there.
    await query(url(member('d', 0)), 'CREATE TABLE IF NOT EXISTS waves_quiet (x int); INSERT INTO waves_quiet VALUES (1)');
    const [{ lsn } = { lsn: '' }] = await query<{ lsn: string }>(url(member('d', 0)), 'SELECT pg_current_wal_lsn()::text AS lsn');
    await waitFor(
      "d's replicas quiet for longer than a second",
      async () => {
        for (const r of [member('d', 1), member('d', 2)]) {
          const [x] = await query<{ quiet: boolean }>(
            url(r),
            `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn AND now() - pg_last_xact_replay_timestamp() > interval '1 second' AS quiet`,
          );
          if (!x?.quiet) return false;
        }
        return true;
      },
      WAIT_MS,
    );
    const id = await submit(restartAction, [member('d', 1), member('d', 2)], {
      size: 1,
      gate: { soakSeconds: 1, maxLagSeconds: 1, deadlineSeconds: 20 },
    });
    const op = await settled(id);
    expect(op.status).toBe('succeeded');
    expect(op.pausedReason).toBeNull();
  }, 60_000);

  it('pause and resume raced against the workers: no target ever starts while it is held', async () => {
    const all = lab.instances.filter((i) => i.role === 'replica');
    const id = await submit(slowAction, all, { size: 4 });
    for (let i = 0; i < 15; i++) {
      await pauseOperation(db, id, actor).catch(() => {});
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
      await resumeOperation(db, queue, id, actor).catch(() => {});
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    }
    const op = await settled(id, 120_000);
    expect(op.status).toBe('succeeded');
    // A held target is queued; one that started was never held when it did.
    const started = await db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
    expect(started.filter((x) => x.attempts > 0 && x.held)).toEqual([]);
    expect(await db.execute(sql`SELECT 1 FROM herd_leases`).then((r) => r.rows)).toEqual([]);
  }, 150_000);
});
