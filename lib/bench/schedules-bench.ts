// npm run bench -- schedules: 10,000 rules due in the same second (a no-op action, one target each),
// fired by one worker: from the due time to each rule's operation made and its targets enqueued
// (p50, p95, max), and the worker process's CPU meanwhile. Target (issue 17): p95 under 2 s.
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { producerConnection, queuePrefix } from '@/lib/ops/queue';
import { registerAction } from '@/lib/ops/registry';
import { startWorker } from '@/lib/ops/worker';
import { seededDatabase } from '@/lib/lab/seed';
import { PROJECT_ROOT, startLab, stopLab } from '@/lib/lab/lab';
import { ruleQueue } from '@/lib/schedules/scheduler';
import { RULES_CHANNEL } from '@/lib/schedules/rules';
import { noopAction } from './ops-bench';
import { percentiles } from './table';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-schedules-lab.json');

export async function schedulesBench(log: (m: string) => void): Promise<string[]> {
  const N = Number(process.env.BENCH_RULES ?? 10_000);
  const lab = await startLab({
    aws: false,
    file: FILE,
    fleet: { environments: ['production'], herds: ['h01'], replicas: 0, sites: ['dc-east'] },
    log,
  });
  const lines: string[] = [];
  try {
    const { db, pool } = await seededDatabase(lab, 10);
    registerAction(noopAction);
    // One herd, server and instance a rule (no lease shared), as in the ops bench.
    await db.execute(
      sql`INSERT INTO herds (environment_id, name) SELECT (SELECT min(id) FROM environments), 'noop-' || g FROM generate_series(1, ${N}::int) g`,
    );
    await db.execute(
      sql`INSERT INTO servers (hostname, environment_id, address, ssh_host_key_fingerprint) SELECT 'noop-' || g, (SELECT min(id) FROM environments), '192.0.2.1', ${lab.ssh!.hostKeyFingerprint} FROM generate_series(1, ${N}::int) g`,
    );
    await db.execute(
      sql`INSERT INTO instances (herd_id, server_id, port, state, role) SELECT h.id, s.id, 5432, 'running', 'replica' FROM servers s JOIN herds h ON h.name = s.hostname WHERE s.hostname LIKE 'noop-%'`,
    );
    const [owner] = (
      await db.execute<{ id: number }>(
        sql`INSERT INTO users (username, source, is_superuser) VALUES ('bench-owner', 'local', true) RETURNING id`,
      )
    ).rows;
    const worker = await startWorker({
      databaseUrl: lab.database.url,
      redisUrl: lab.redis!.url,
      sshKeyPath: lab.ssh!.privateKeyPath,
      concurrency: 20,
      refreshEveryMs: 0,
      quiet: true,
    });
    try {
      const lead = Number(process.env.BENCH_RULE_LEAD_S ?? 60);
      const due = new Date(Math.ceil(Date.now() / 1000) * 1000 + lead * 1000);
      const cron = `${due.getUTCSeconds()} ${due.getUTCMinutes()} ${due.getUTCHours()} * * *`;
      await db.execute(sql`
        INSERT INTO rules (name, owner_id, owner_name, action, scope, schedule)
        SELECT 'bench-' || i.id, ${owner!.id}, 'bench-owner', 'noop', jsonb_build_object('instanceIds', jsonb_build_array(i.id)),
               jsonb_build_object('cron', jsonb_build_array(${cron}::text), 'timezone', 'UTC')
        FROM instances i JOIN servers s ON s.id = i.server_id WHERE s.hostname LIKE 'noop-%'`);
      const t0 = Date.now();
      await db.execute(sql`SELECT pg_notify(${RULES_CHANNEL}, 'bench')`);
      const conn = producerConnection(lab.redis!.url);
      const q = ruleQueue(conn, queuePrefix());
      let scheduled = 0;
      while (Date.now() < due.getTime() && (scheduled = await q.getJobSchedulersCount()) < N) await new Promise((r) => setTimeout(r, 250));
      const reconcileMs = Date.now() - t0;
      await q.close();
      conn.disconnect();
      log(`${scheduled} job schedulers made in ${reconcileMs} ms; due at ${due.toISOString()}`);
      if (scheduled < N) throw new Error(`only ${scheduled} of ${N} schedulers were made before the due time: raise BENCH_RULE_LEAD_S`);
      while (Date.now() < due.getTime() - 50) await new Promise((r) => setTimeout(r, 20));
      const cpu0 = process.cpuUsage();
      const wall0 = Date.now();
      let done = 0;
      const deadline = due.getTime() + 600_000;
      while (Date.now() < deadline) {
        done = Number(
          (await db.execute<{ n: string }>(sql`SELECT count(*) AS n FROM rule_runs WHERE status NOT IN ('firing', 'deciding')`)).rows[0]!.n,
        );
        if (done >= N) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const cpu = process.cpuUsage(cpu0);
      const wallMs = Date.now() - wall0;
      const { rows } = await db.execute<{ ms: string | null; status: string }>(sql`
        SELECT extract(epoch FROM (o.created_at - r.due_at)) * 1000 AS ms, r.status
        FROM rule_runs r LEFT JOIN operations o ON o.id = r.operation_id`);
      const started = rows.filter((r) => r.status === 'started').map((r) => Number(r.ms));
      const others = rows.filter((r) => r.status !== 'started').length;
      const { p50, p95 } = percentiles(started);
      const max = Math.max(...started);
      lines.push(`rules due in the same second: ${N}, a no-op action on one target each, one worker (rules concurrency 4)`);
      lines.push(`  job schedulers rebuilt from the table: ${reconcileMs} ms`);
      lines.push(`  runs recorded: ${rows.length} (${started.length} with an operation, ${others} without)`);
      lines.push(
        `  due time to operation made: p50 ${p50.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms, max ${max.toFixed(0)} ms (target: p95 under 2000 ms) ${p95 < 2000 ? 'yes' : 'NO'}`,
      );
      lines.push(
        `  worker process CPU while firing: ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms over ${wallMs} ms wall (${(((cpu.user + cpu.system) / 1000 / wallMs) * 100).toFixed(0)}% of one core)`,
      );
    } finally {
      await worker.close();
      await pool.end();
    }
  } finally {
    await stopLab(FILE, log);
  }
  return lines;
}
