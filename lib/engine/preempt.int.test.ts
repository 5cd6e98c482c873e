// Preemption (lib/engine/preempt.ts) through the real engine: BullMQ on the lab's Redis, a worker,
// pgherd's database. The actions here run no command: what is proven is the engine's order and ends.
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operations, operationSteps, operationTargets } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { waitFor } from '@/lib/testing/wait';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { defineAction, type InstanceAction } from '@/lib/engine/define-action';
import { registerAction } from '@/lib/actions/registry';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { planOperation } from '@/lib/engine/plan';
import { producerConnection, targetQueue } from '@/lib/engine/queue';
import { submitOperation } from '@/lib/engine/submit';
import { cancelOperation, retryInput } from '@/lib/features/operations/operation-control';
import { sql } from 'drizzle-orm';
import { startWorker } from '@/jobs/start-worker';
import { preemptVerdicts, type PreemptVerdict } from './preempt';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { asks } from '@/lib/actions/drivers';
import { instances } from '@/db/schema';

let t: TestDb;
let refs: InstanceRef[] = [];
let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
let queue: ReturnType<typeof targetQueue>;
const actor = { id: null, username: 'preempt-test', access: SYSTEM_ACCESS };
/** What the steps did, in order, with when. */
const did: { what: string; at: number }[] = [];
const note = (what: string): void => void did.push({ what, at: Date.now() });
const saw = (what: string) => did.find((d) => d.what === what);

const base = { control: asks(null), permission: 'operator' as const, dangerous: false };

/** A seed, as far as the engine sees one: its folder claimed (and removed by a cleanup), a long restore that may be abandoned. */
const seedLike: InstanceAction = defineAction({
  ...base,
  name: 'preempt-test-seed',
  label: 'Seed (a long restore)',
  plan: () => ({
    steps: [
      {
        name: 'claim the folder',
        does: { kind: 'claim' },
        says: 'claim a folder',
        run: async () => note('seed: folder claimed'),
        always: { name: 'remove the folder', does: { kind: 'unclaim' }, says: 'remove it', run: async () => note('seed: folder removed') },
      },
      {
        name: 'restore',
        does: { kind: 'restore' },
        says: 'restore for a long time',
        preemptible: true,
        timeoutMs: 60_000,
        run: ({ signal }) =>
          new Promise<void>((resolve) => {
            note('seed: restoring');
            const done = setTimeout(() => {
              note('seed: restored');
              resolve();
            }, 40_000);
            signal.addEventListener('abort', () => {
              clearTimeout(done);
              note('seed: restore killed');
              resolve();
            });
          }),
      },
      { name: 'start', does: { kind: 'start' }, says: 'start the replica', run: async () => note('seed: started') },
    ],
    warnings: [],
  }),
});

/** A gate a test opens: a step's work lasts until the test has seen what it waits for, not a guessed time. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}
let firmWork = gate();

/** A step that must not be abandoned halfway (a switchover): preempted, it is let finish. */
const firm: InstanceAction = defineAction({
  ...base,
  name: 'preempt-test-firm',
  label: 'Firm',
  plan: () => ({
    steps: [
      {
        name: 'switch',
        does: { kind: 'switch' },
        says: 'a step that is let finish',
        run: async () => {
          note('firm: switching');
          await firmWork.opened;
          note('firm: switched');
        },
      },
      { name: 'after', does: { kind: 'after' }, says: 'and after it', run: async () => note('firm: after') },
    ],
    warnings: [],
  }),
});

const plain: InstanceAction = defineAction({
  ...base,
  name: 'preempt-test-plain',
  label: 'Plain',
  plan: () => ({
    steps: [{ name: 'plain', does: { kind: 'plain' }, says: 'a queued step', run: async () => note('plain: ran') }],
    warnings: [],
  }),
});

const urgentOf = (tag: string, ms = 0): InstanceAction =>
  defineAction({
    ...base,
    name: `preempt-test-urgent-${tag}`,
    label: `Urgent ${tag}`,
    urgent: true,
    plan: () => ({
      steps: [
        {
          name: 'evacuate',
          does: { kind: 'evacuate' },
          says: 'what cannot wait',
          run: async () => {
            note(`urgent ${tag}: started`);
            await new Promise((r) => setTimeout(r, ms));
            note(`urgent ${tag}: ended`);
          },
        },
      ],
      warnings: [],
    }),
  });
const urgentA = urgentOf('a');
const urgentB = urgentOf('b', 1500);
const urgentC = urgentOf('c');

async function submit(action: InstanceAction, ids: number[]) {
  const plan = await planOperation(t.db, SYSTEM_ACCESS, action, ids, {});
  const res = await submitOperation(
    t.db,
    queue,
    action,
    {
      instanceIds: ids,
      digest: plan.digest,
      confirmation: plan.typeToConfirm ?? '',
      idempotencyKey: Math.random().toString(36),
      params: {},
    },
    actor,
  );
  const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, res.id));
  return { id: res.id, targetId: target!.id };
}

const settled = (id: number) =>
  waitFor(
    `operation ${id} to settle`,
    async () => (await t.db.select().from(operations).where(eq(operations.id, id)))[0]?.finishedAt && (await targetOf(id)),
    30_000,
  );
const targetOf = async (operationId: number) =>
  (await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, operationId)))[0]!;
const stepsOf = async (targetId: number) =>
  (await t.db.select().from(operationSteps).where(eq(operationSteps.targetId, targetId)).orderBy(asc(operationSteps.seq))).map((s) => [
    s.name,
    s.status,
  ]);
const running = (targetId: number, step: string) =>
  waitFor(
    `target ${targetId} in "${step}"`,
    async () => (await stepsOf(targetId)).some(([n, st]) => n === step && st === 'running'),
    15_000,
  );

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  refs = await loadInstanceRefs(
    t.db,
    (await t.db.select({ id: instances.id }).from(instances)).map((r) => r.id),
  );
  for (const a of [seedLike, firm, plain, urgentA, urgentB, urgentC]) registerAction(a);
  queue = targetQueue(producerConnection(t.lab.redis!.url));
  await queue.obliterate({ force: true });
  worker = await startWorker({
    databaseUrl: t.url,
    redisUrl: t.lab.redis!.url,
    sshKeyPath: t.lab.ssh!.privateKeyPath,
    reconcileEveryMs: 500,
    quiet: true,
  });
});
afterAll(async () => {
  await worker?.close();
  await ifAssigned(queue)?.close();
  await ifAssigned(t)?.close();
});

/** A member of a herd no other test here uses. */
const memberOf = (herd: string) => refs.find((r) => r.environment === 'production' && r.herd === herd && r.role === 'replica')!;

describe('an urgent operation on a busy herd', () => {
  it('preempts a long seed mid-restore: killed at once, its folder removed, ended preempted saying by what; then planned again', async () => {
    const m = memberOf('orders');
    const seed = await submit(seedLike, [m.id]);
    await running(seed.targetId, 'restore');
    const t0 = Date.now();
    const urgent = await submit(urgentA, [m.id]);
    const end = await settled(urgent.id);
    expect([end.status, end.error]).toEqual(['succeeded', null]);
    const startedAfter = saw('urgent a: started')!.at - t0;
    console.log(`preemption: the urgent step started ${startedAfter} ms after it was submitted, the seed mid-restore`);
    expect(startedAfter).toBeLessThan(5_000);
    const s = await settled(seed.id);
    expect(s.status).toBe('preempted');
    expect(s.error).toContain(`preempted by operation #${urgent.id}`);
    expect(s.preemptedBy).toBe(urgent.targetId);
    expect(await stepsOf(seed.targetId)).toEqual([
      ['claim the folder', 'succeeded'],
      ['restore', 'failed'],
      ['remove the folder', 'succeeded'],
    ]);
    // Killed, cleaned, then the urgent one: never the seed's start, never its restore's end.
    expect(did.map((d) => d.what)).toEqual([
      'seed: folder claimed',
      'seed: restoring',
      'seed: restore killed',
      'seed: folder removed',
      'urgent a: started',
      'urgent a: ended',
    ]);
    const [op] = await t.db.select().from(operations).where(eq(operations.id, seed.id));
    expect(op!.status).toBe('preempted');
    // Planned again from its page: the preempted target is what a retry plans.
    expect((await retryInput(t.db, SYSTEM_ACCESS, seed.id))?.ids).toEqual([m.id]);
  }, 60_000);

  it('a step that must not be left halfway is let finish; nothing after it starts', async () => {
    did.length = 0;
    const m = memberOf('orders');
    firmWork = gate();
    const f = await submit(firm, [m.id]);
    await running(f.targetId, 'switch');
    const urgent = await submit(urgentA, [m.id]);
    // Asked mid-step, it still finishes the step.
    await waitFor('the holder to be asked to stop', async () => (await targetOf(f.id)).preemptedBy === urgent.targetId, 10_000);
    firmWork.open();
    expect((await settled(urgent.id)).status).toBe('succeeded');
    expect((await settled(f.id)).status).toBe('preempted');
    expect(did.map((d) => d.what)).toEqual(['firm: switching', 'firm: switched', 'urgent a: started', 'urgent a: ended']);
    expect(await stepsOf(f.targetId)).toEqual([['switch', 'succeeded']]);
  }, 60_000);

  it('goes before the herd\u2019s queued targets, and an urgent one is never preempted: it waits its turn', async () => {
    did.length = 0;
    const m = memberOf('orders');
    const b = await submit(urgentB, [m.id]);
    await running(b.targetId, 'evacuate');
    const queued = await submit(plain, [m.id]);
    const c = await submit(urgentC, [m.id]);
    for (const id of [b.id, queued.id, c.id]) expect((await settled(id)).status).toBe('succeeded');
    // B ran to its end (not preempted by C); C went before the plain target queued before it.
    expect(did.map((d) => d.what)).toEqual(['urgent b: started', 'urgent b: ended', 'urgent c: started', 'urgent c: ended', 'plain: ran']);
    expect((await targetOf(b.id)).preemptedBy).toBeNull();
  }, 60_000);

  it('on another herd it preempts nothing', async () => {
    did.length = 0;
    const seed = await submit(seedLike, [memberOf('orders').id]);
    await running(seed.targetId, 'restore');
    const other = refs.find((r) => r.environment === 'production' && r.herd !== 'orders')!;
    const urgent = await submit(urgentA, [other.id]);
    expect((await settled(urgent.id)).status).toBe('succeeded');
    expect((await targetOf(seed.id)).status).toBe('running');
    expect((await targetOf(seed.id)).preemptedBy).toBeNull();
    // Ended by an urgent one on its own herd, so the file leaves nothing running.
    const own = await submit(urgentA, [memberOf('orders').id]);
    expect((await settled(own.id)).status).toBe('succeeded');
    expect((await settled(seed.id)).status).toBe('preempted');
  }, 60_000);

  it('a forged NOTIFY stops nothing: any role on pgherd\u2019s database can send one, the row must say so', async () => {
    did.length = 0;
    const m = memberOf('orders');
    const seed = await submit(seedLike, [m.id]);
    await running(seed.targetId, 'restore');
    // As a hostile role connected to pgherd's database would: the channel, the target, any urgent-looking id.
    // The worker running the seed hears both and weighs each against the rows: both refused.
    const refused: [string, number | null][] = [];
    const heard = new Promise<void>((resolve) => {
      const on = (v: PreemptVerdict) => {
        if (v.holder !== seed.targetId) return;
        refused.push([v.verdict, v.by]);
        if (refused.length === 2) {
          preemptVerdicts.off('verdict', on);
          resolve();
        }
      };
      preemptVerdicts.on('verdict', on);
    });
    await t.db.execute(sql`SELECT pg_notify('pgherd_preempt', ${`${seed.targetId}:${seed.targetId}`})`);
    await t.db.execute(sql`SELECT pg_notify('pgherd_preempt', ${`${seed.targetId}:999999`})`);
    await heard;
    expect(refused).toEqual([
      ['refused', seed.targetId],
      ['refused', 999999],
    ]);
    expect((await targetOf(seed.id)).status).toBe('running');
    expect(did.map((d) => d.what)).toEqual(['seed: folder claimed', 'seed: restoring']);
    const own = await submit(urgentA, [m.id]);
    expect((await settled(own.id)).status).toBe('succeeded');
    expect((await settled(seed.id)).status).toBe('preempted');
  }, 60_000);

  it('an urgent operation cancelled while it waits asks nothing any more: the holder goes on to its end', async () => {
    did.length = 0;
    const m = memberOf('orders');
    firmWork = gate();
    const f = await submit(firm, [m.id]);
    await running(f.targetId, 'switch');
    const urgent = await submit(urgentA, [m.id]);
    await waitFor('the holder to be asked to stop', async () => (await targetOf(f.id)).preemptedBy === urgent.targetId, 10_000);
    await cancelOperation(t.db, urgent.id, actor);
    // The step ends only once the cancel is in the rows: the safe point after it weighs the ask as it now is.
    firmWork.open();
    expect((await settled(f.id)).status).toBe('succeeded');
    expect(did.map((d) => d.what)).toEqual(['firm: switching', 'firm: switched', 'firm: after']);
    expect((await settled(urgent.id)).status).toBe('cancelled');
  }, 60_000);
});
