// npm run bench -- waves: the engine's overhead with rolling operations. 10,000 no-op targets (one herd
// each, every herd's member on one of the lab's 20 real primaries, so that the health gate observes
// real Postgres) run three ways, next to a plain baseline on the same machine:
//   plain:   a BullMQ queue with a processor that does one UPDATE in pgherd's database per job, at the
//            same concurrency (what any queue-backed engine must at least do);
//   at once: one pgherd operation, every target released at once;
//   waves:   the same in waves of 500 with a 0-second gate (one health sample of the wave's herds
//            between waves).
// Prints targets/s for each, their ratio to the plain baseline, and the time each wave boundary took.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue, Worker } from 'bullmq';
import { asc, eq, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { operations, operationWaves } from '@/db/schema';
import { seededDatabase } from '@/lib/lab/seed';
import { PROJECT_ROOT, startLab, stopLab } from '@/lib/lab/lab';
import { planOperation } from '@/lib/engine/plan';
import { producerConnection, targetQueue, workerConnection } from '@/lib/engine/queue';
import { registerAction } from '@/lib/actions/registry';
import { submitOperation } from '@/lib/engine/submit';
import { startWorker } from '@/jobs/start-worker';
import { wavesSchema, type WaveSpec } from '@/lib/engine/waves';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { noopAction } from './ops-bench';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-waves-lab.json');
const N = Number(process.env.BENCH_WAVE_TARGETS ?? 10_000);
const WAVE = Number(process.env.BENCH_WAVE_SIZE ?? 500);
const CONCURRENCY = 20;
const ROUNDS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function waitFinished(db: Db, id: number): Promise<string> {
  for (;;) {
    const [op] = await db.select({ f: operations.finishedAt, s: operations.status }).from(operations).where(eq(operations.id, id));
    if (op?.f) return op.s;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One operation over `ids`, from submit to settled: ms, and the operation's id. */
async function run(
  db: Db,
  queue: ReturnType<typeof targetQueue>,
  ids: number[],
  waves: WaveSpec | null,
): Promise<{ ms: number; id: number; submitMs: number }> {
  const plan = await planOperation(db, SYSTEM_ACCESS, noopAction, ids, {}, waves);
  const t0 = performance.now();
  const { id } = await submitOperation(
    db,
    queue,
    noopAction,
    { instanceIds: ids, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: `bench-${Math.random()}`, waves },
    { id: null, username: 'bench', access: SYSTEM_ACCESS },
  );
  const submitMs = performance.now() - t0;
  const status = await waitFinished(db, id);
  if (status !== 'succeeded') throw new Error(`operation ${id} ended ${status}`);
  return { ms: performance.now() - t0, id, submitMs };
}

/** The plain baseline: N jobs through BullMQ, one UPDATE each, at the same concurrency. */
async function plainQueue(db: Db, redisUrl: string): Promise<number> {
  await db.execute(sql`CREATE TABLE IF NOT EXISTS bench_plain (id int PRIMARY KEY, done boolean NOT NULL DEFAULT false)`);
  await db.execute(sql`TRUNCATE bench_plain`);
  await db.execute(sql`INSERT INTO bench_plain (id) SELECT g FROM generate_series(1, ${N}::int) g`);
  const producer = producerConnection(redisUrl);
  const consumer = workerConnection(redisUrl);
  const queue = new Queue<{ id: number }>('bench-plain', {
    connection: producer,
    prefix: 'bench',
    defaultJobOptions: { removeOnComplete: true },
  });
  let done = 0;
  const finished = new Promise<void>((resolve) => {
    const worker = new Worker<{ id: number }>(
      'bench-plain',
      async (job) => {
        await db.$client.query({
          name: 'bench_plain_done',
          text: 'UPDATE bench_plain SET done = true WHERE id = $1',
          values: [job.data.id],
        });
      },
      { connection: consumer, prefix: 'bench', concurrency: CONCURRENCY },
    );
    worker.on('completed', () => {
      if (++done === N) void worker.close().then(resolve);
    });
  });
  const t0 = performance.now();
  await queue.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'plain', data: { id: i + 1 } })));
  await finished;
  const ms = performance.now() - t0;
  await queue.obliterate({ force: true });
  await queue.close();
  producer.disconnect();
  consumer.disconnect();
  return ms;
}

export async function wavesBench(log: (m: string) => void): Promise<string[]> {
  const lab = await startLab({
    aws: false,
    file: FILE,
    fleet: {
      environments: ['bench'],
      herds: Array.from({ length: 20 }, (_, i) => `h${String(i + 1).padStart(2, '0')}`),
      replicas: 0,
      sites: ['dc-a'],
      subnet: '127.0.8',
    },
    dns: false,
    ldap: false,
    pgbouncer: [],
    log,
  });
  const lines: string[] = [];
  try {
    const { db, pool } = await seededDatabase(lab, 30);
    registerAction(noopAction);
    // N herds of one member each, on the lab's primaries in turn (the gate observes them for real).
    const primaries = lab.instances.map((i) => ({ address: i.address, port: i.port }));
    log(`seeding ${N} one-member herds over ${primaries.length} real primaries`);
    await db.execute(
      sql`INSERT INTO herds (environment_id, name) SELECT (SELECT min(id) FROM environments), 'wave-' || g FROM generate_series(1, ${N}::int) g`,
    );
    await db.execute(sql`
      INSERT INTO servers (hostname, environment_id, address, site, ssh_host_key_fingerprint)
      SELECT 'wave-' || g, (SELECT min(id) FROM environments), (${JSON.stringify(primaries.map((p) => p.address))}::jsonb ->> ((g - 1) % ${primaries.length})),
             'dc-a', ${lab.ssh!.hostKeyFingerprint}
      FROM generate_series(1, ${N}::int) g`);
    const made = await db.execute<{ id: number }>(sql`
      INSERT INTO instances (herd_id, server_id, port, state, role)
      SELECT h.id, s.id, ${primaries[0]!.port}, 'running', 'primary' FROM servers s JOIN herds h ON h.name = s.hostname
      WHERE s.hostname LIKE 'wave-%' ORDER BY s.id RETURNING id`);
    const ids = made.rows.map((r) => r.id).sort((a, b) => a - b);
    // Statistics for the fleet just seeded, as autovacuum takes them within its first minute: without,
    // the planner believes the tables as small as the lab's 20 herds.
    await db.execute(sql`ANALYZE herds, servers, instances`);

    const plain: number[] = [];
    for (let r = 0; r < ROUNDS; r++) plain.push(await plainQueue(db, lab.redis!.url));
    log(`plain BullMQ + one UPDATE a job: ${plain.map((x) => x.toFixed(0)).join(', ')} ms`);

    const producer = producerConnection(lab.redis!.url);
    const queue = targetQueue(producer);
    const worker = await startWorker({
      databaseUrl: lab.database.url,
      redisUrl: lab.redis!.url,
      sshKeyPath: lab.ssh!.privateKeyPath,
      concurrency: CONCURRENCY,
      refreshEveryMs: 0,
      quiet: true,
    });
    const spec = wavesSchema.parse({ size: WAVE, gate: { soakSeconds: 0 } });
    await run(db, queue, ids.slice(0, 200), null); // warm up connections and statements
    const atOnce: number[] = [];
    const atOnceIds: number[] = [];
    const submits: number[] = [];
    const waved: { ms: number; id: number; submitMs: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const once = await run(db, queue, ids, null);
      atOnce.push(once.ms);
      atOnceIds.push(once.id);
      submits.push(once.submitMs);
      waved.push(await run(db, queue, ids, spec));
      log(
        `round ${r + 1}: at once ${once.ms.toFixed(0)} ms (submit ${once.submitMs.toFixed(0)} ms), in waves ${waved[r]!.ms.toFixed(0)} ms`,
      );
    }
    // Each boundary: from the wave's last target ending to the next wave's start (the gate's sample included).
    const mid = [...waved].sort((a, b) => a.ms - b.ms)[1] ?? waved[0]!;
    const rows = await db.select().from(operationWaves).where(eq(operationWaves.operationId, mid.id)).orderBy(asc(operationWaves.wave));
    const boundaries = rows
      .slice(1)
      .map((w, i) => (w.startedAt && rows[i]?.endedAt ? w.startedAt.getTime() - rows[i].endedAt.getTime() : NaN))
      .filter(Number.isFinite);
    // Inside each wave: from its start to its first step, and its steps from first start to last end.
    const { rows: inside } = await db.execute<{ ramp: string; span: string; n: number }>(sql`
      SELECT extract(epoch FROM min(s.started_at) - w.started_at) * 1000 AS ramp,
             extract(epoch FROM max(s.finished_at) - min(s.started_at)) * 1000 AS span, count(*)::int AS n
      FROM operation_waves w JOIN operation_targets t ON t.operation_id = w.operation_id AND t.wave = w.wave
      JOIN operation_steps s ON s.target_id = t.id
      WHERE w.operation_id = ${mid.id} GROUP BY w.wave, w.started_at`);
    // The same for the operation that released every target at once (its median run).
    const onceMid = atOnceIds[atOnce.indexOf([...atOnce].sort((a, b) => a - b)[1] ?? atOnce[0]!)] ?? atOnceIds[0]!;
    const [onceSpan] = (
      await db.execute<{ span: string; n: number }>(sql`
      SELECT extract(epoch FROM max(s.finished_at) - min(s.started_at)) * 1000 AS span, count(*)::int AS n
      FROM operation_targets t JOIN operation_steps s ON s.target_id = t.id WHERE t.operation_id = ${onceMid}`)
    ).rows;
    await worker.close();
    await queue.close();
    producer.disconnect();
    await pool.end();

    const rate = (ms: number) => N / (ms / 1000);
    const base = rate(median(plain));
    const once = rate(median(atOnce));
    const waves = rate(median(waved.map((w) => w.ms)));
    const waveCount = Math.ceil(N / WAVE);
    lines.push(`${N} no-op targets, one herd each, concurrency ${CONCURRENCY}, ${ROUNDS} rounds (medians)`);
    lines.push(`  plain BullMQ, one UPDATE a job:         ${base.toFixed(0)} jobs/s (${plain.map((x) => x.toFixed(0)).join(', ')} ms)`);
    lines.push(
      `  pgherd, every target at once:           ${once.toFixed(0)} targets/s = ${(once / base).toFixed(2)}x plain (${atOnce.map((x) => x.toFixed(0)).join(', ')} ms; of which submit ${submits.map((x) => x.toFixed(0)).join(', ')} ms)`,
    );
    lines.push(
      `  pgherd, ${waveCount} waves of ${WAVE}, 0 s gate:      ${waves.toFixed(0)} targets/s = ${(waves / base).toFixed(2)}x plain (${waved.map((x) => x.ms.toFixed(0)).join(', ')} ms) (target: 1,000/s) ${waves >= 1000 ? 'yes' : 'NO'}`,
    );
    lines.push(
      `  overhead a wave: ${((median(waved.map((w) => w.ms)) - median(atOnce)) / (waveCount - 1)).toFixed(0)} ms; wave boundary (last target ended -> next wave started, gate sample included): median ${median(boundaries).toFixed(0)} ms, max ${Math.max(...boundaries).toFixed(0)} ms`,
    );
    lines.push(
      `  at once: first step -> last step's end ${Number(onceSpan?.span).toFixed(0)} ms (${(((onceSpan?.n ?? 0) / Number(onceSpan?.span)) * 1000).toFixed(0)} targets/s)`,
    );
    lines.push(
      `  inside a wave: start -> first step median ${median(inside.map((w) => Number(w.ramp))).toFixed(0)} ms; first step -> last step's end median ${median(inside.map((w) => Number(w.span))).toFixed(0)} ms (${median(inside.map((w) => (w.n / Number(w.span)) * 1000)).toFixed(0)} targets/s)`,
    );
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    lines.push(
      `  the median waved run, ${mid.ms.toFixed(0)} ms: submit ${mid.submitMs.toFixed(0)}, wave starts -> first steps ${sum(inside.map((w) => Number(w.ramp))).toFixed(0)}, inside waves ${sum(inside.map((w) => Number(w.span))).toFixed(0)}, boundaries ${sum(boundaries).toFixed(0)} ms`,
    );
    return lines;
  } finally {
    await stopLab(FILE);
  }
}
