// pgherd's own database on three sites (lib/lab/control-plane.ts: a Patroni herd with synchronous_mode,
// an etcd cluster, an HAProxy on each of sites A and B), with the timings docs/deployment.md gives. Its
// primary is lost (its Patroni and Postgres SIGKILLed, as a machine goes) while a worker's step runs a
// long command on a fleet host: the step is not aborted, the operation succeeds, the lease is never
// given up, and every record written before the loss is still there. The queue's Redis master is lost
// (SIGKILL) in the middle of a bulk operation, its connections following Sentinel to the promoted
// replica: every target ends, and none runs twice (each run leaves a line in a file on its host).
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDb, type Db } from '@/db/client';
import { migrateDatabase } from '@/db/migrate';
import { auditEntries, herdLeases, instances, operations, operationSteps, operationTargets } from '@/db/schema';
import { startWorker } from '@/jobs/start-worker';
import { registerAction } from '@/lib/actions/registry';
import { execNotedOk } from '@/lib/actions/steps/exec-noted';
import { defineAction, type InstanceAction } from '@/lib/engine/define-action';
import { writeAudit } from '@/lib/engine/write-audit';
import { workerConnection } from '@/lib/engine/queue';
import { readiness } from '@/lib/features/health/ready';
import { postmasterPid, sentinelMaster, startControlPlane, stopControlPlane, type ControlPlane } from '@/lib/lab/control-plane';
import { readLab, type LabInfo } from '@/lib/lab/lab';
import { labLeader, waitNewLeader } from '@/lib/lab/patroni';
import { query } from '@/lib/lab/postgres';
import { alive, descendants, labIdentity, run } from '@/lib/lab/proc';
import { seedLabFleet } from '@/lib/lab/seed';
import { openQueue, runOperation, type TestWorker } from '@/lib/testing/operations';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { waitFor } from '@/lib/testing/wait';
import { asks } from '@/lib/actions/drivers';

const STEP_S = 40;
let lab: LabInfo;
let cp: ControlPlane;
let db: Db;
let closeDb: () => Promise<void> = () => Promise.resolve();
let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
let queue: { queue: TestWorker['queue']; close: () => Promise<void> } | null = null;
const prefix = `cp-${process.pid}`;

/** SIGKILL, a process and everything it started (a Patroni and its Postgres): a machine lost. */
function killTree(pid: number) {
  for (const p of [pid, ...descendants(pid)])
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone already
    }
}

const longStep: InstanceAction = defineAction({
  name: 'control-plane-test-long-step',
  control: asks(null),
  label: 'A long command on the host',
  permission: 'operator',
  dangerous: false,
  plan: (t) => ({
    steps: [
      {
        name: 'long command',
        does: { kind: 'test.sleep', seconds: STEP_S },
        says: `sleep ${String(STEP_S)} s on ${t.label}'s host`,
        timeoutMs: (STEP_S + 30) * 1000,
        run: async (x) => {
          await execNotedOk(
            x.deps,
            t,
            x,
            ['sh', '-c', 'echo started; sleep "$1"; echo finished', 'long', String(STEP_S)],
            (STEP_S + 20) * 1000,
          );
        },
      },
      { name: 'after', does: { kind: 'test.after' }, says: 'note that it ran', run: async (x) => x.note({ stdout: 'after' }) },
    ],
    warnings: [],
  }),
});

/** Each run appends its target's id to a file on its host, then waits a moment: the bulk spans the Redis failover. */
const MARKS = `/tmp/pgherd-cp-marks-${String(process.pid)}`;
const markAction: InstanceAction = defineAction({
  name: 'control-plane-test-mark',
  control: asks(null),
  label: 'Leave a mark on the host',
  permission: 'operator',
  dangerous: false,
  plan: (t) => ({
    steps: [
      {
        name: 'mark',
        does: { kind: 'test.mark' },
        says: `append a line to ${MARKS} on ${t.label}'s host`,
        run: async (x) => {
          const target = String(x.deps.targetId ?? 'none');
          await execNotedOk(x.deps, t, x, ['sh', '-c', 'echo "$1" >> "$2"; sleep 1', 'mark', target, MARKS], 20_000);
        },
      },
    ],
    warnings: [],
  }),
});

beforeAll(async () => {
  lab = readLab(inject('labFile'));
  const sites = ['a', 'b', 'c'].map((name, i) => ({ name, address: `127.0.81.${String(i + 1)}` }));
  cp = await startControlPlane(labIdentity(), path.join(lab.dir, `control-plane-${process.pid}`), lab.tls!, sites);
  await migrateDatabase(cp.databaseUrls.a!);
  const c = createDb(cp.databaseUrls.a!, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  await seedLabFleet(db, lab);
  registerAction(longStep);
  registerAction(markAction);
  // The lease as the product sets it (the test setup shortens it for other files).
  delete process.env.PGHERD_LEASE_TTL_MS;
  queue = openQueue({ ...lab, redis: { url: cp.redisUrl } }, prefix);
  worker = await startWorker({
    databaseUrl: cp.databaseUrls.a!,
    redisUrl: cp.redisUrl,
    sshKeyPath: lab.ssh!.privateKeyPath,
    concurrency: 2,
    refreshEveryMs: 0,
    queuePrefix: prefix,
    quiet: true,
  });
}, 240_000);

afterAll(async () => {
  await worker?.close();
  await queue?.close();
  await closeDb();
  if (ifAssigned(cp)) await stopControlPlane(cp);
}, 120_000);

describe("pgherd's database on Patroni across sites", () => {
  it('/readyz: ready through HAProxy and Sentinel; not ready on a replica, or with the queue away, saying why', async () => {
    const viaHaproxy = createDb(cp.databaseUrls.b!, 1).pool;
    const onReplica = createDb(cp.memberUrls['pgherd-b']!, 1).pool;
    const redis = workerConnection(cp.redisUrl);
    const nowhere = workerConnection('redis://127.0.81.9:6399');
    nowhere.on('error', () => {});
    try {
      expect(await readiness(viaHaproxy, () => redis.ping(), false)).toEqual({ ready: true, database: 'writable', queue: 'reachable' });
      expect(await readiness(onReplica, () => redis.ping(), false)).toMatchObject({
        ready: false,
        database: 'in recovery (a replica): not writable',
      });
      expect(await readiness(viaHaproxy, () => nowhere.ping(), false)).toMatchObject({
        ready: false,
        queue: expect.stringMatching(/did not answer|ECONNREFUSED|Connection/),
      });
      // The synchronous standby frozen (SIGSTOP): a primary whose commits hang is not writable.
      const [sync] = await query<{ name: string }>(
        cp.databaseUrls.a!,
        "SELECT application_name AS name FROM pg_stat_replication WHERE sync_state = 'sync'",
      );
      const standby = cp.processes.find((p) => p.name === 'postgres' && p.pidFile?.includes(`/${sync!.name}/`));
      const frozen = postmasterPid(standby?.pidFile);
      expect(frozen).not.toBeNull();
      const all = [frozen!, ...descendants(frozen!)];
      for (const pid of all) process.kill(pid, 'SIGSTOP');
      try {
        expect(await readiness(viaHaproxy, () => redis.ping(), false)).toMatchObject({
          ready: false,
          database: expect.stringMatching(/a commit on pgherd's database .* did not answer within 2000 ms/),
        });
      } finally {
        for (const pid of all) process.kill(pid, 'SIGCONT');
      }
      await waitFor('writable again', async () => ((await readiness(viaHaproxy, () => redis.ping(), false)).ready ? true : undefined));
      // Told to stop: not ready, whatever else is true.
      expect(await readiness(viaHaproxy, () => redis.ping(), true)).toEqual({
        ready: false,
        database: 'writable',
        queue: 'reachable',
        stopping: true,
      });
    } finally {
      redis.disconnect();
      nowhere.disconnect();
      await viaHaproxy.end();
      await onReplica.end();
    }
  });

  it('its primary lost during a long step: the step goes on, the operation succeeds, no lease given up, nothing written is lost', async () => {
    const [inst] = await db.select({ id: instances.id }).from(instances).limit(1);
    const leader = await labLeader(cp.patroni);
    expect(leader).toBe('pgherd-a');
    // Written before the loss: acknowledged, so on the synchronous standby too.
    await writeAudit(db, {
      user: { id: null, username: 'control-plane-test' },
      action: 'test.before-loss',
      objectType: 'herds',
      objectId: '0',
      objectLabel: 'before the loss',
      environmentId: null,
      changes: {},
    });
    const done = runOperation(db, queue!.queue, longStep, { instanceIds: [inst!.id] }, {}, { timeoutMs: (STEP_S + 90) * 1000 });
    await waitFor(
      'the long step runs',
      async () => {
        const rows = await db.select({ status: operationSteps.status }).from(operationSteps).where(eq(operationSteps.name, 'long command'));
        return rows.some((r) => r.status === 'running') ? true : undefined;
      },
      30_000,
    );
    // The machine goes: its Patroni and its Postgres (which Patroni detached: not its child).
    const machine = cp.processes.filter((p) => p.site === 'a' && ['patroni', 'postgres'].includes(p.name));
    const pids = machine.map((p) => (p.pidFile ? postmasterPid(p.pidFile) : p.pid)).filter((p): p is number => p !== null);
    expect(pids).toHaveLength(2);
    const lostAt = performance.now();
    const lostAtDate = new Date();
    for (const pid of pids) killTree(pid);
    await waitFor('its Patroni and Postgres gone', () => (pids.some(alive) ? undefined : true), 10_000);
    const next = await waitNewLeader(cp.patroni, 'pgherd-a', 60_000);
    // The first write through site A's HAProxy after the loss.
    await waitFor(
      'a write through HAProxy',
      async () =>
        (await query(cp.databaseUrls.a!, 'CREATE TEMP TABLE t (x int)').then(
          () => true,
          () => false,
        ))
          ? true
          : undefined,
      60_000,
    );
    const writableMs = performance.now() - lostAt;
    console.log(
      `pgherd's database lost its primary: ${next} leads, written to through HAProxy ${(writableMs / 1000).toFixed(1)} s after the kill`,
    );

    const r = await done;
    const [target] = await db.select().from(operationTargets).where(eq(operationTargets.operationId, r.op.id));
    expect([r.op.status, target!.status, target!.error, target!.attempts]).toEqual(['succeeded', 'succeeded', null, 1]);
    const steps = await db.select().from(operationSteps).where(eq(operationSteps.targetId, target!.id)).orderBy(asc(operationSteps.seq));
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ['long command', 'succeeded'],
      ['after', 'succeeded'],
    ]);
    expect(steps[0]!.stdoutTail).toMatch(/started\s+finished/);
    // The step ran across the failover, not after it.
    expect(steps[0]!.startedAt.getTime()).toBeLessThan(lostAtDate.getTime());
    expect(steps[0]!.finishedAt!.getTime()).toBeGreaterThan(lostAtDate.getTime() + writableMs);
    expect(await db.select().from(herdLeases).where(eq(herdLeases.targetId, target!.id))).toEqual([]);
    expect(await db.select({ id: operations.id }).from(operations).where(eq(operations.id, r.op.id))).toHaveLength(1);
    expect(await db.select({ a: auditEntries.action }).from(auditEntries).where(eq(auditEntries.action, 'test.before-loss'))).toHaveLength(
      1,
    );
  }, 300_000);

  it("the queue's Redis master lost mid-bulk: Sentinel promotes the replica, every target ends, none runs twice", async () => {
    const all = await db.select({ id: instances.id }).from(instances).orderBy(asc(instances.id));
    const a = cp.sites[0]!;
    expect(await sentinelMaster(a.address)).toBe(`${a.address}:6379`);
    const done = runOperation(db, queue!.queue, markAction, { instanceIds: all.map((i) => i.id) }, {}, { timeoutMs: 180_000 });
    await waitFor(
      'the first marks',
      async () =>
        (await db.select({ id: operationSteps.id }).from(operationSteps).where(eq(operationSteps.name, 'mark'))).length >= 2
          ? true
          : undefined,
      30_000,
    );
    const master = cp.processes.find((p) => p.site === a.name && p.name === 'redis')!;
    killTree(master.pid);
    await waitFor(
      'a sentinel names the replica master',
      async () => {
        const m = await sentinelMaster(cp.sites[2]!.address);
        return m && m !== `${a.address}:6379` ? m : undefined;
      },
      60_000,
    );
    const r = await done;
    expect(r.op.status, JSON.stringify(r.targets.filter((x) => x.status !== 'succeeded').map((x) => [x.id, x.status, x.error]))).toBe(
      'succeeded',
    );
    expect(r.targets.every((x) => x.attempts === 1)).toBe(true);
    // Every target ran once: its line is in the file on its host, once.
    const lines = (await run(labIdentity(), ['cat', MARKS])).stdout.trim().split('\n');
    const counts = new Map<string, number>();
    for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
    expect(r.targets.map((x) => [x.id, counts.get(String(x.id)) ?? 0])).toEqual(r.targets.map((x) => [x.id, 1]));
  }, 240_000);
});
