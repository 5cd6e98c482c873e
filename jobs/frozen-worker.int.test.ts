// A worker process frozen (SIGSTOP: a paused VM, a stuck host) while it holds the wave conductor's
// turn: another worker takes the turn once it expires and moves a rolling operation on; the frozen one,
// thawed, does nothing (its renewal refused, the turn left with the other, no wave started twice).
// Before turns, the conductor was a session advisory lock that the frozen process's idle session held
// for as long as it stayed frozen: the rolling operation waited for it.
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { operations, operationWaves } from '@/db/schema';
import { getAction } from '@/lib/actions/registry';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import { submitOperation } from '@/lib/engine/submit';
import { wavesSchema } from '@/lib/engine/waves';
import { startWorkerProcess } from '@/lib/lab/console';
import { readLab, type LabInfo } from '@/lib/lab/lab';
import { stopPid } from '@/lib/lab/proc';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { openQueue } from '@/lib/testing/operations';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { observeFor, waitFor } from '@/lib/testing/wait';
import { startWorker } from './start-worker';

const TTL_MS = 4000;
const prefix = `frozen-${String(process.pid)}`;
let lab: LabInfo;
let t: TestDb;
let frozen: ChildProcess | null = null;
let other: Awaited<ReturnType<typeof startWorker>> | null = null;
let q: ReturnType<typeof openQueue> | null = null;
const ttlBefore = process.env.PGHERD_LEASE_TTL_MS;

beforeAll(async () => {
  lab = readLab(inject('labFile'));
  t = await freshDatabase();
  await seedLabFleet(t.db, lab);
  q = openQueue(lab, prefix);
  // This process's worker reads the TTL from its environment too.
  process.env.PGHERD_LEASE_TTL_MS = String(TTL_MS);
}, 120_000);

afterAll(async () => {
  if (frozen?.pid) {
    process.kill(frozen.pid, 'SIGCONT');
    await stopPid(frozen.pid, 'SIGTERM', 20_000);
  }
  await other?.close();
  await q?.close();
  await ifAssigned(t)?.close();
  if (ttlBefore === undefined) delete process.env.PGHERD_LEASE_TTL_MS;
  else process.env.PGHERD_LEASE_TTL_MS = ttlBefore;
});

const conductorTurn = async () =>
  (await t.db.execute<{ holder: string; generation: string }>(sql`SELECT holder, generation FROM chore_turns WHERE name = 'conductor'`))
    .rows[0];

describe('a worker frozen in its turn', () => {
  it('loses the conductor to another worker, which moves the waves on; thawed, it does nothing', async () => {
    const w = await startWorkerProcess(lab, {
      quiet: true,
      env: {
        DATABASE_URL: t.url,
        PGHERD_QUEUE_PREFIX: prefix,
        PGHERD_LEASE_TTL_MS: String(TTL_MS),
        PGHERD_WAVE_ROUND_MS: '200',
        PGHERD_REFRESH_INTERVAL_MS: '0',
      },
    });
    frozen = w;
    const pid = w.pid!;
    const mine = `${os.hostname()}:${String(pid)}:`;
    const first = await waitFor('the worker process takes the conductor', async () => {
      const r = await conductorTurn();
      return r?.holder.startsWith(mine) ? Number(r.generation) : undefined;
    });
    process.kill(pid, 'SIGSTOP');

    // Another worker (this process), and a rolling reload of two instances, one a wave.
    other = await startWorker({
      databaseUrl: t.url,
      redisUrl: lab.redis!.url,
      sshKeyPath: lab.ssh!.privateKeyPath,
      concurrency: 2,
      refreshEveryMs: 0,
      queuePrefix: prefix,
      waveRoundMs: 200,
      quiet: true,
    });
    const reload = getAction('reload')!;
    const ids = (await t.db.execute<{ id: number }>(sql`SELECT id FROM instances ORDER BY id LIMIT 2`)).rows.map((r) => r.id);
    const waves = wavesSchema.parse({ size: 1 });
    const plan = await planOperation(t.db, SYSTEM_ACCESS, reload, ids, {}, waves);
    const { id } = await submitOperation(
      t.db,
      q!.queue,
      reload,
      {
        instanceIds: ids,
        digest: plan.digest,
        confirmation: plan.typeToConfirm ?? '',
        idempotencyKey: randomBytes(8).toString('hex'),
        waves,
      },
      { id: null, username: 'frozen-test', access: SYSTEM_ACCESS },
    );
    // Wave 2 starts only when a conductor passes wave 1: the frozen worker's turn has to go first.
    const op = await waitFor(
      'the rolling operation to end',
      async () => {
        const [o] = await t.db.select().from(operations).where(eq(operations.id, id));
        return o?.finishedAt ? o : undefined;
      },
      60_000,
    );
    expect(op.status).toBe('succeeded');
    const taken = await conductorTurn();
    expect(taken?.holder.startsWith(mine)).toBe(false);
    expect(Number(taken?.generation)).toBeGreaterThan(first);
    const wavesAfter = await t.db.select().from(operationWaves).where(eq(operationWaves.operationId, id));

    // Thawed: its next renewal is refused; it neither takes the turn back nor touches the waves.
    process.kill(pid, 'SIGCONT');
    await observeFor(3 * TTL_MS, "the thawed worker's rounds and renewals", async () => {
      const r = await conductorTurn();
      return r?.holder === taken?.holder && r?.generation === taken?.generation;
    });
    expect(await t.db.select().from(operationWaves).where(eq(operationWaves.operationId, id))).toEqual(wavesAfter);
  }, 180_000);
});
