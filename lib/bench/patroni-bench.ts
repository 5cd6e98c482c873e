// `npm run bench -- patroni`: a herd Patroni runs (etcd, three members) under a writer that
// reaches it through its write name (BIND, resolved for each connection), with pgherd's worker running.
// 1. Switchover through pgherd (planned, submitted, run by the worker: pre-flight, POST /switchover,
//    DNS) next to `patronictl switchover --force`, alternating, BENCH_PATRONI_ROUNDS (5) each: the
//    command's duration (pgherd's until the write name answers the new leader; patronictl's until it
//    returns, DNS then moved by pgherd's follower), the writer's longest gap, and the ratio.
// 2. Patroni's own failover (the leader's host lost: its Patroni and Postgres killed): from Patroni
//    naming the new leader to the write name answering it, moved by pgherd's follower, 3 times.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { asc, eq } from 'drizzle-orm';
import { createDb } from '@/db/client';
import { migrateDatabase } from '@/db/migrate';
import { herds, instances, operationSteps, operationTargets, servers } from '@/db/schema';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { lookup } from '@/lib/adapters/dns/rfc2136';
import { killPatroniMember, startPatroniMember } from '@/lib/lab/faults';
import { PROJECT_ROOT, startLab, stopLab, useLabSettings, type LabInstance } from '@/lib/lab/lab';
import { labLeader, waitNewLeader, waitSettled } from '@/lib/lab/patroni';
import { query } from '@/lib/lab/postgres';
import { labIdentity, run as runAs } from '@/lib/lab/proc';
import { waitFor } from '@/lib/testing/wait';
import { seedLabFleet } from '@/lib/lab/seed';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { planOperation } from '@/lib/engine/plan';
import { producerConnection, targetQueue } from '@/lib/engine/queue';
import { submitOperation } from '@/lib/engine/submit';
import { startWorker } from '@/jobs/start-worker';
import { startReconnectingWriter } from '@/lib/testing/writer';
import { settle } from './ops-bench';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-patroni-lab.json');
const ROUNDS = Number(process.env.BENCH_PATRONI_ROUNDS ?? 5);
const FAILOVERS = Number(process.env.BENCH_PATRONI_FAILOVERS ?? 3);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function patroniBench(log: (m: string) => void): Promise<string[]> {
  const lab = await startLab({
    aws: false,
    ldap: false,
    file: FILE,
    pgbouncer: [],
    fleet: { environments: ['bench'], herds: ['plain'], replicas: 0, sites: ['dc-a', 'dc-b'], subnet: '127.0.24' },
    patroni: [{ environment: 'bench', herd: 'ledger', subnet: '127.0.23' }],
    log,
  });
  const { db, pool } = createDb(lab.database.url, 8);
  const producer = producerConnection(lab.redis!.url);
  const queue = targetQueue(producer, 'bench-patroni');
  let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
  try {
    await migrateDatabase(lab.database.url);
    await seedLabFleet(db, lab);
    useLabSettings(lab);
    worker = await startWorker({
      databaseUrl: lab.database.url,
      redisUrl: lab.redis!.url,
      sshKeyPath: lab.ssh!.privateKeyPath,
      concurrency: 4,
      refreshEveryMs: 0,
      queuePrefix: 'bench-patroni',
      quiet: true,
    });
    const pat = lab.patroni![0]!;
    const members = lab.instances.filter((i) => i.herd === 'ledger');
    const herdId = (await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'ledger')))[0]!.id;
    const writeName = lab.dns!.herds.find((h) => h.herd === 'ledger')!.writeName;
    const answer = async () => (await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'CNAME'))[0];
    const leaderNow = () => labLeader(pat);
    const url = (i: LabInstance) => `postgres://postgres@${i.address}:${String(i.port)}/postgres`;
    const viaWriteName = async () => {
      const target = await answer();
      const m = members.find((x) => x.server === target);
      if (!m) throw new Error(`${writeName} answers ${String(target)}`);
      return url(m);
    };
    const settled = () => waitSettled(pat);

    await query(url(members[0]!), 'CREATE TABLE writes (n int PRIMARY KEY)');
    const writer = startReconnectingWriter(viaWriteName);
    await waitFor('the writer commits', async () => (writer.acked.length > 50 ? true : undefined));
    const next = (leader: string) => members[(members.findIndex((m) => m.server === leader) + 1) % members.length]!;

    const rows: { who: 'pgherd' | 'patronictl'; ms: number; dnsMs: number; gapMs: number; totalMs?: number }[] = [];
    for (let round = 0; round < ROUNDS * 2; round++) {
      await settled();
      const leader = (await leaderNow())!;
      const cand = next(leader);
      await waitFor('the write name answers the leader', async () => ((await answer()) === leader ? true : undefined), 30_000);
      await new Promise((r) => setTimeout(r, 500));
      writer.resetGap();
      const t0 = performance.now();
      const wall0 = Date.now();
      if (round % 2 === 0) {
        const candId = (
          await db
            .select({ id: instances.id })
            .from(instances)
            .innerJoin(servers, eq(servers.id, instances.serverId))
            .where(eq(servers.hostname, cand.server))
        )[0]!.id;
        const params = { candidateInstanceId: String(candId) };
        const plan = await planOperation(db, SYSTEM_ACCESS, switchoverAction, [herdId], params);
        const { id } = await submitOperation(
          db,
          queue,
          switchoverAction,
          {
            herdIds: [herdId],
            params,
            digest: plan.digest,
            confirmation: plan.typeToConfirm ?? '',
            idempotencyKey: randomBytes(8).toString('hex'),
          },
          { id: null, username: 'bench', access: SYSTEM_ACCESS },
        );
        await settle(db, id);
        const totalMs = performance.now() - t0;
        const steps = await db
          .select({ name: operationSteps.name, status: operationSteps.status, finishedAt: operationSteps.finishedAt })
          .from(operationSteps)
          .innerJoin(operationTargets, eq(operationTargets.id, operationSteps.targetId))
          .where(eq(operationTargets.operationId, id))
          .orderBy(asc(operationSteps.seq));
        const failed = steps.find((x) => x.status === 'failed');
        if (failed) throw new Error(`pgherd's switchover failed at ${failed.name}`);
        const dns = steps.filter((x) => x.name.startsWith('DNS: ')).at(-1);
        const dnsMs = (dns?.finishedAt?.getTime() ?? NaN) - wall0;
        await new Promise((r) => setTimeout(r, 1000)); // a gap ending after the operation is still counted
        rows.push({ who: 'pgherd', ms: dnsMs, dnsMs, gapMs: writer.maxGapMs, totalMs });
        log(
          `pgherd ${leader} -> ${cand.server}: DNS answers the new leader ${s(dnsMs)} after submit (done ${s(totalMs)}), writer's longest gap ${writer.maxGapMs.toFixed(0)} ms`,
        );
      } else {
        const config = pat.members.find((m) => m.server === leader)!.configFile;
        const { stdout } = await runAs(labIdentity(), [
          '/usr/bin/patronictl',
          '-c',
          config,
          'switchover',
          '--leader',
          leader,
          '--candidate',
          cand.server,
          '--force',
        ]);
        const ms = performance.now() - t0;
        if (!stdout.includes('Successfully switched over')) throw new Error(`patronictl: ${stdout}`);
        await waitFor('the write name answers the new leader', async () => ((await answer()) === cand.server ? true : undefined), 60_000);
        const dnsMs = performance.now() - t0;
        await new Promise((r) => setTimeout(r, 1000));
        rows.push({ who: 'patronictl', ms, dnsMs, gapMs: writer.maxGapMs });
        log(
          `patronictl ${leader} -> ${cand.server}: returned in ${s(ms)}, DNS (pgherd's follower) ${s(dnsMs)}, writer's longest gap ${writer.maxGapMs.toFixed(0)} ms`,
        );
      }
    }
    await writer.stop();
    const finalLeader = await leaderNow();
    const leaderFinal = members.find((m) => m.server === finalLeader)!;
    const { n } = (
      await query<{ n: number }>(url(leaderFinal), 'SELECT count(*)::int AS n FROM writes WHERE n = ANY($1::int[])', [writer.acked])
    )[0]!;

    const mine = rows.filter((r) => r.who === 'pgherd');
    const ctl = rows.filter((r) => r.who === 'patronictl');
    const out: string[] = [];
    out.push(
      `switchover of a 3-member Patroni herd under a writer through the write name (${String(writer.acked.length)} commits, ${String(writer.acked.length - n)} acknowledged missing, ${String(writer.errors.length)} failed attempts), ${String(ROUNDS)} each, alternating:`,
    );
    out.push(
      `  pgherd (submit -> the write name answers the new leader): median ${s(median(mine.map((r) => r.ms)))}, worst ${s(Math.max(...mine.map((r) => r.ms)))}; done incl. the others streaming from it: median ${s(median(mine.map((r) => r.totalMs ?? NaN)))}`,
    );
    out.push(
      `  patronictl switchover --force (returns): median ${s(median(ctl.map((r) => r.ms)))}, worst ${s(Math.max(...ctl.map((r) => r.ms)))}; the write name moved by pgherd's follower: median ${s(median(ctl.map((r) => r.dnsMs)))}`,
    );
    out.push(
      `  ratio pgherd / patronictl (medians, DNS included on pgherd's side): ${(median(mine.map((r) => r.ms)) / median(ctl.map((r) => r.ms))).toFixed(2)}x (target <= 1.1x)`,
    );
    out.push(
      `  writer's longest gap: pgherd median ${median(mine.map((r) => r.gapMs)).toFixed(0)} ms (worst ${Math.max(...mine.map((r) => r.gapMs)).toFixed(0)}), patronictl median ${median(ctl.map((r) => r.gapMs)).toFixed(0)} ms (worst ${Math.max(...ctl.map((r) => r.gapMs)).toFixed(0)})`,
    );

    // 2. Patroni's own failover.
    const follow: number[] = [];
    const named: number[] = [];
    for (let k = 0; k < FAILOVERS; k++) {
      await settled();
      const old = (await leaderNow())!;
      await waitFor('the write name answers the leader', async () => ((await answer()) === old ? true : undefined), 30_000);
      const t0 = performance.now();
      await killPatroniMember(lab, old);
      const neu = await waitNewLeader(pat, old);
      const t1 = performance.now();
      await waitFor('the write name answers it', async () => ((await answer()) === neu ? true : undefined), 60_000);
      const t2 = performance.now();
      named.push(t1 - t0);
      follow.push(t2 - t1);
      log(`Patroni's own failover ${old} -> ${neu}: named ${s(t1 - t0)} after the host was lost, DNS ${s(t2 - t1)} later`);
      await startPatroniMember(lab, FILE, old);
    }
    out.push(
      `Patroni's own failover (the leader's host lost), ${String(FAILOVERS)} times: Patroni names a new leader after median ${s(median(named))} (ttl 10 s); the write name answers it ${s(median(follow))} later (median; worst ${s(Math.max(...follow))}; bound: PGHERD_PATRONI_FOLLOW_MS 5 s + one Refresh DNS)`,
    );
    return out;
  } finally {
    await worker?.close();
    await queue.close();
    producer.disconnect();
    await pool.end();
    await stopLab(FILE);
  }
}
