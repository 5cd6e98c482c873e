// npm run bench -- schedules: 10,000 rules due in the same second (a no-op action, one target each),
// fired by one worker: from the due time to each rule's run decided, which is written after its
// operation was made and its targets queued (p50, p95, max), and the worker process's CPU meanwhile.
// Target: p95 under 2 s, so that rules due together still run on time. Half the rules share one cron
// expression, the other half are spread over 59 expressions that fall on the same second (another
// minute field each), as a fleet's rules would be: fire groups make each expression one job, whatever
// the number of rules.
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { producerConnection, queuePrefix, targetQueue } from '@/lib/engine/queue';
import { registerAction } from '@/lib/actions/registry';
import { startWorker } from '@/jobs/start-worker';
import { seededDatabase } from '@/lib/lab/seed';
import { PROJECT_ROOT, startLab, stopLab } from '@/lib/lab/lab';
import { treeCpuSeconds } from '@/lib/lab/proc';
import { ruleQueue } from '@/lib/features/rules/rule-queue';
import { RULES_CHANNEL } from '@/lib/features/rules/rules';
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
      const lead = Number(process.env.BENCH_RULE_LEAD_S ?? 20);
      const due = new Date(Math.ceil(Date.now() / 1000) * 1000 + lead * 1000);
      const [sec, min, hour] = [due.getUTCSeconds(), due.getUTCMinutes(), due.getUTCHours()];
      // Expression k of 59 fires at the due second in its minute list, all of which hold the due minute.
      const GROUPS = 59; // another minute each, never the due one
      await db.execute(sql`
        WITH r AS (
          SELECT i.id, row_number() OVER (ORDER BY i.id) AS n FROM instances i JOIN servers s ON s.id = i.server_id WHERE s.hostname LIKE 'noop-%'
        ), c AS (
          SELECT id, CASE WHEN n % 2 = 0 THEN ${`${sec} ${min} ${hour} * * *`}
                          ELSE ${`${sec} `} || ${min} || ',' || ((${min} + 1 + (n / 2) % ${GROUPS}) % 60) || ${` ${hour} * * *`} END AS cron FROM r
        )
        INSERT INTO rules (name, owner_id, owner_name, action, scope, schedule, fire_groups)
        SELECT 'bench-' || id, ${owner!.id}, 'bench-owner', 'noop', jsonb_build_object('instanceIds', jsonb_build_array(id)),
               jsonb_build_object('cron', jsonb_build_array(cron), 'timezone', 'UTC'), ARRAY['UTC|' || cron]
        FROM c`);
      const groups = Number(
        (await db.execute<{ n: string }>(sql`SELECT count(DISTINCT g) AS n FROM rules, unnest(fire_groups) g`)).rows[0]!.n,
      );
      const t0 = Date.now();
      await db.execute(sql`SELECT pg_notify(${RULES_CHANNEL}, 'bench')`);
      const conn = producerConnection(lab.redis!.url);
      const q = ruleQueue(conn, queuePrefix());
      let scheduled = 0;
      while (Date.now() < due.getTime() && (scheduled = await q.getJobSchedulersCount()) < groups)
        await new Promise((r) => setTimeout(r, 50));
      const reconcileMs = Date.now() - t0;
      await q.close();
      conn.disconnect();
      log(`${scheduled} job schedulers (fire groups) for ${N} rules made in ${reconcileMs} ms; due at ${due.toISOString()}`);
      if (scheduled < groups)
        throw new Error(`only ${scheduled} of ${groups} schedulers were made before the due time: raise BENCH_RULE_LEAD_S`);
      const targetsConn = producerConnection(lab.redis!.url);
      const targets = targetQueue(targetsConn, queuePrefix());
      // What is measured is the scheduler: the 10,000 no-op operations it queues wait in the paused
      // queue instead of running on the same two cores meanwhile (their execution is the ops bench's
      // figure). BENCH_RUN_TARGETS=1 lets them run, for the figure of a worker doing both at once.
      const running = process.env.BENCH_RUN_TARGETS === '1';
      if (!running) await targets.pause();
      // Read synchronously and before the due time: the worker firing shares this process's event loop.
      const pidOf = (name: string) => lab.processes.find((x) => x.name === name)?.pid ?? -1;
      const [db0, redis0] = [treeCpuSeconds(pidOf('pgherd-db')), treeCpuSeconds(pidOf('redis'))];
      while (Date.now() < due.getTime() - 50) await new Promise((r) => setTimeout(r, 20));
      // BENCH_PROFILE=file.cpuprofile: a V8 CPU profile of this process over the window (open it in Chrome's DevTools).
      const profiler = process.env.BENCH_PROFILE ? new Session() : null;
      if (profiler) {
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.start');
      }
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
      const [dbCpu, redisCpu] = [(treeCpuSeconds(pidOf('pgherd-db')) - db0) * 1000, (treeCpuSeconds(pidOf('redis')) - redis0) * 1000];
      if (profiler) {
        const { profile } = await profiler.post('Profiler.stop');
        await writeFile(process.env.BENCH_PROFILE!, JSON.stringify(profile));
        profiler.disconnect();
      }
      await targets.close();
      targetsConn.disconnect();
      const wallMs = Date.now() - wall0;
      const { rows } = await db.execute<{ ms: string | null; status: string }>(sql`
        SELECT extract(epoch FROM (r.decided_at - r.due_at)) * 1000 AS ms, r.status FROM rule_runs r`);
      const started = rows.filter((r) => r.status === 'started').map((r) => Number(r.ms));
      const others = rows.filter((r) => r.status !== 'started').length;
      const { p50, p95 } = percentiles(started);
      const max = Math.max(...started);
      lines.push(
        `rules due in the same second: ${N} in ${groups} fire groups, a no-op action on one target each, one worker (operations ${running ? 'running meanwhile' : 'queued, not run: BENCH_RUN_TARGETS=1 runs them'})`,
      );
      lines.push(`  job schedulers rebuilt from the table: ${scheduled} in ${reconcileMs} ms`);
      lines.push(`  runs recorded: ${rows.length} (${started.length} with an operation, ${others} without)`);
      lines.push(
        `  due time to run decided (operation made, targets queued): p50 ${p50.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms, max ${max.toFixed(0)} ms (target: p95 under 2000 ms) ${p95 < 2000 ? 'yes' : 'NO'}`,
      );
      lines.push(
        `  worker process CPU while firing: ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms over ${wallMs} ms wall (${(((cpu.user + cpu.system) / 1000 / wallMs) * 100).toFixed(0)}% of one core; user ${(cpu.user / 1000).toFixed(0)} ms, system ${(cpu.system / 1000).toFixed(0)} ms)`,
      );
      lines.push(
        `  meanwhile pgherd's database: ${dbCpu.toFixed(0)} ms of CPU, Redis: ${redisCpu.toFixed(0)} ms (from /proc; the window includes this bench's polling)`,
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
