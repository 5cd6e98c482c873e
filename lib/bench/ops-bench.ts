// Benchmarks of the operations engine:
// 1. a bulk restart of 20 lab instances through pgherd (confirm to all targets done) next to the same
//    pg_ctl restart commands run by a plain parallel SSH loop with the same concurrency;
// 2. the engine's own overhead: targets per second through queue and bookkeeping with a no-op step.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { eq, sql } from 'drizzle-orm';
import { Client } from 'ssh2';
import type { Db } from '@/db/client';
import { instances, operations } from '@/db/schema';
import { seededDatabase } from '@/lib/lab/seed';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo } from '@/lib/lab/lab';
import { shellCommand } from '@/lib/adapters/ssh/quote';
import { restartAction } from '@/lib/actions/control/restart.action';
import { defineAction, type InstanceAction } from '@/lib/engine/define-action';
import { pgCtl } from '@/lib/fleet/drivers';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { planOperation } from '@/lib/engine/plan';
import { producerConnection, targetQueue } from '@/lib/engine/queue';
import { registerAction } from '@/lib/actions/registry';
import { submitOperation } from '@/lib/engine/submit';
import { startWorker } from '@/jobs/start-worker';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { asks } from '@/lib/actions/drivers';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-ops-lab.json');
const actor = { id: null, username: 'bench', access: SYSTEM_ACCESS };

export const noopAction: InstanceAction = defineAction({
  name: 'noop',
  control: asks(null),
  label: 'No-op',
  permission: 'operator',
  dangerous: false,
  plan: () => ({ steps: [{ name: 'nothing', does: { kind: 'nothing' }, says: 'nothing', run: async () => {} }] }),
});

/** Waits until operation `id` has ended; throws unless it succeeded. */
export async function settle(db: Db, id: number): Promise<void> {
  for (;;) {
    const [op] = await db.select({ f: operations.finishedAt, s: operations.status }).from(operations).where(eq(operations.id, id));
    if (op!.f) {
      if (op!.s !== 'succeeded') throw new Error(`operation ${id} ended ${op!.s}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function submitAndWait(
  db: Db,
  queue: ReturnType<typeof targetQueue>,
  action: InstanceAction,
  ids: number[],
  parts?: { submitMs: number },
): Promise<number> {
  const plan = await planOperation(db, SYSTEM_ACCESS, action, ids);
  const t0 = performance.now();
  const { id } = await submitOperation(
    db,
    queue,
    action,
    { instanceIds: ids, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: `bench-${Math.random()}` },
    actor,
  );
  if (parts) parts.submitMs = performance.now() - t0;
  await settle(db, id);
  return performance.now() - t0;
}

/** What a DBA's script does: connect to each host, run pg_ctl restart, all at once. */
async function plainLoop(lab: LabInfo, refs: InstanceRef[]): Promise<number> {
  // Each environment's servers authorize that environment's key (the lab's, as the worker's PGHERD_SSH_KEYS).
  const keyOf = (r: InstanceRef) => readFileSync(lab.ssh!.environments[r.environment]?.privateKeyPath ?? lab.ssh!.privateKeyPath);
  const t0 = performance.now();
  await Promise.all(
    refs.map(
      (r) =>
        new Promise<void>((resolve, reject) => {
          const c = new Client();
          c.on('ready', () =>
            c.exec(shellCommand(pgCtl.restart(r)), (err, stream) => {
              if (err) {
                reject(err);
                return;
              }
              stream.on('data', () => {}).stderr.on('data', () => {});
              stream.on('exit', (code: number) => {
                c.end();
                if (code === 0) resolve();
                else reject(new Error(`${r.label}: exit ${code}`));
              });
            }),
          );
          c.on('error', reject);
          c.connect({ host: r.host, port: lab.ssh!.port, username: lab.ssh!.user, privateKey: keyOf(r) });
        }),
    ),
  );
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function opsBench(log: (m: string) => void): Promise<string[]> {
  const lab = await startLab({
    aws: false,
    file: FILE,
    fleet: {
      environments: ['production', 'staging'],
      herds: ['h01', 'h02', 'h03', 'h04', 'h05', 'h06', 'h07', 'h08', 'h09', 'h10'],
      replicas: 0,
      sites: ['dc-east', 'dc-west'],
    },
    log,
  });
  const lines: string[] = [];
  try {
    const { db, pool } = await seededDatabase(lab, 30);
    const refs = await loadInstanceRefs(
      db,
      (await db.select({ id: instances.id }).from(instances)).map((r) => r.id),
    );
    const producer = producerConnection(lab.redis!.url);
    const queue = targetQueue(producer);
    registerAction(noopAction);
    const worker = await startWorker({
      databaseUrl: lab.database.url,
      redisUrl: lab.redis!.url,
      sshKeyPath: lab.ssh!.privateKeyPath,
      concurrency: 20,
      refreshEveryMs: 0,
    });

    const ids = refs.map((r) => r.id);
    const engine: number[] = [];
    const loop: number[] = [];
    await submitAndWait(db, queue, restartAction, ids); // warm up connections and caches
    for (let round = 0; round < (process.env.BENCH_SKIP_RESTART ? 0 : 5); round++) {
      loop.push(await plainLoop(lab, refs));
      engine.push(await submitAndWait(db, queue, restartAction, ids));
    }
    if (engine.length) {
      const ratio = median(engine)! / median(loop)!;
      lines.push(`bulk restart of ${ids.length} instances in ${ids.length} herds, concurrency 20, 5 rounds`);
      lines.push(
        `  plain parallel SSH loop (pg_ctl restart -w): median ${median(loop)!.toFixed(0)} ms  (${loop.map((x) => x.toFixed(0)).join(', ')})`,
      );
      lines.push(
        `  pgherd, confirm to all targets done:        median ${median(engine)!.toFixed(0)} ms  (${engine.map((x) => x.toFixed(0)).join(', ')})`,
      );
      lines.push(`  ratio ${ratio.toFixed(2)}x (target: at most 1.1x) ${ratio <= 1.1 ? 'yes' : 'NO'}`);
    }
    for (const l of lines) log(l);

    // Engine overhead: many targets, one no-op step each, spread over the fleet's herds.
    // One herd per target: herds serialize their targets, and this measures the engine, not the leases.
    const N = Number(process.env.BENCH_NOOP_TARGETS ?? 2000);
    await db.execute(
      sql`INSERT INTO herds (environment_id, name) SELECT (SELECT min(id) FROM environments), 'noop-' || g FROM generate_series(1, ${N}::int) g`,
    );
    // Pinned host keys, as on servers pgherd has checked (no action but Check SSH runs on others).
    await db.execute(
      sql`INSERT INTO servers (hostname, environment_id, address, ssh_host_key_fingerprint) SELECT 'noop-' || g, (SELECT min(id) FROM environments), '192.0.2.1', ${lab.ssh!.hostKeyFingerprint} FROM generate_series(1, ${N}::int) g`,
    );
    const made = await db.execute(
      sql`INSERT INTO instances (herd_id, server_id, port, state, role) SELECT h.id, s.id, 5432, 'running', 'replica' FROM servers s JOIN herds h ON h.name = s.hostname WHERE s.hostname LIKE 'noop-%' RETURNING id`,
    );
    const noopIds = (made.rows as { id: number }[]).map((r) => r.id);
    const runs: { ms: number; submitMs: number }[] = [];
    for (let round = 0; round < 3; round++) {
      const parts = { submitMs: 0 };
      runs.push({ ms: await submitAndWait(db, queue, noopAction, noopIds, parts), submitMs: parts.submitMs });
    }
    const mid = [...runs].sort((a, b) => a.ms - b.ms)[1];
    const rate = noopIds.length / (mid!.ms / 1000);
    lines.push(
      `engine overhead: ${noopIds.length} targets with one no-op step, one herd each, concurrency 20, 3 rounds: median ${mid!.ms.toFixed(0)} ms (of which submit ${mid!.submitMs.toFixed(0)} ms) = ${rate.toFixed(0)} targets/s (rounds: ${runs.map((r) => r.ms.toFixed(0)).join(', ')} ms) (target: 1,000/s) ${rate >= 1000 ? 'yes' : 'NO'}`,
    );
    log(lines[lines.length - 1]!);
    await worker.close();
    await queue.close();
    producer.disconnect();
    await pool.end();
    return lines;
  } finally {
    await stopLab(FILE);
  }
}
