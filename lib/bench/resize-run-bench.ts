// A resize run through pgherd next to a plain script: 6 replicas in 6 herds on EC2 instances in the
// lab's moto, each with a read name in BIND (TTL 2 s), resized together (m6i.large <-> m6i.xlarge).
// The script makes the same SDK calls and SSH commands in the same order with the same concurrency (all
// six at once): describe; drain the read name (ask, UPDATE, ask until it answers) and wait out its TTL;
// pg_ctl stop; EC2 stop and its waiter; the type; EC2 start and its waiter; Postgres answering; streaming
// under 30 s of lag; describe (the type); observe (the inventory); describe and observe (the cleanup);
// the name back. pgherd adds its plan, its queue, its step records and audit. Target: within 1.15x.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { eq, inArray } from 'drizzle-orm';
import { instances, operations, servers } from '@/db/schema';
import { ec2Client } from '@/lib/adapters/aws/config';
import { describeInstancesById, setInstanceType, startInstance, stopInstance, waitBounds } from '@/lib/adapters/aws/ec2';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { discoverEc2, discoveryConfig } from '@/lib/features/discovery/discovery';
import { zoneConfig } from '@/lib/adapters/dns/config';
import { lookup, replaceRecordSet, waitAnswers } from '@/lib/adapters/dns/rfc2136';
import { PROJECT_ROOT, startLab, stopLab } from '@/lib/lab/lab';
import { seededDatabase } from '@/lib/lab/seed';
import { resizeAction } from '@/lib/actions/cloud/resize.action';
import { driverFor } from '@/lib/fleet/drivers';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, waitObserved } from '@/lib/fleet/observe';
import { planOperation } from '@/lib/engine/plan';
import { producerConnection, targetQueue } from '@/lib/engine/queue';
import { submitOperation } from '@/lib/engine/submit';
import { startWorker } from '@/jobs/start-worker';
import { SshPool } from '@/lib/adapters/ssh/ssh-client';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-resize-run-lab.json');
const HERDS = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];
const ROUNDS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function resizeRunBench(log: (m: string) => void): Promise<string[]> {
  const lab = await startLab({
    file: FILE,
    fleet: { environments: ['bench'], herds: HERDS, replicas: 1, sites: ['dc-a', 'dc-b'], subnet: '127.0.6' },
    ldap: false,
    pgbouncer: [],
    log,
  });
  const { db, pool } = await seededDatabase(lab, 12, { readNames: true });
  const producer = producerConnection(lab.redis!.url);
  const queue = targetQueue(producer, 'bench-resize');
  const ssh = new SshPool({ privateKey: readFileSync(lab.ssh!.privateKeyPath) });
  let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
  try {
    const cfg = discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [lab.aws!.region], tags: lab.aws!.discoveryTags }) });
    if (!cfg) throw new Error('no discovery configuration');
    await discoverEc2(db, cfg, (region) => ec2Client(region));
    worker = await startWorker({
      databaseUrl: lab.database.url,
      redisUrl: lab.redis!.url,
      sshKeyPath: lab.ssh!.privateKeyPath,
      concurrency: HERDS.length,
      refreshEveryMs: 0,
      queuePrefix: 'bench-resize',
      quiet: true,
    });
    const replicaIds = (
      await db.select({ id: instances.id }).from(instances).where(eq(instances.role, 'replica')).orderBy(instances.id)
    ).map((r) => r.id);
    const refs = await loadInstanceRefs(db, replicaIds);
    const herdRefs = new Map((await loadHerdRefs(db, [...new Set(refs.map((r) => r.herdId))])).map((h) => [h.id, h]));
    const cloud = new Map(
      (
        await db
          .select({ id: servers.id, iid: servers.cloudInstanceId })
          .from(servers)
          .where(
            inArray(
              servers.id,
              refs.map((r) => r.serverId),
            ),
          )
      ).map((s) => [s.id, s.iid ?? '']),
    );
    const region = lab.aws!.region;
    const bounds = waitBounds();

    const throughPgherd = async (type: string) => {
      const t0 = performance.now();
      const params = { instanceType: type };
      const plan = await planOperation(db, SYSTEM_ACCESS, resizeAction, replicaIds, params);
      const refused = plan.targets.filter((t) => t.refused);
      if (refused.length) throw new Error(`refused: ${refused.map((t) => t.refused).join('; ')}`);
      const { id } = await submitOperation(
        db,
        queue,
        resizeAction,
        {
          instanceIds: replicaIds,
          params,
          digest: plan.digest,
          confirmation: plan.typeToConfirm ?? '',
          idempotencyKey: randomBytes(8).toString('hex'),
        },
        { id: null, username: 'bench', access: SYSTEM_ACCESS },
      );
      for (;;) {
        const [op] = await db.select().from(operations).where(eq(operations.id, id));
        if (op?.finishedAt) {
          if (op.status !== 'succeeded') throw new Error(`pgherd's resize ${op.status}`);
          return performance.now() - t0;
        }
        await sleep(20);
      }
    };

    const moveName = async (r: InstanceRef, to: string) => {
      const h = herdRefs.get(r.herdId);
      for (const rec of h?.dns.filter((d) => d.match === 'instance' && d.matchInstanceId === r.id) ?? []) {
        const zone = zoneConfig(rec.zone);
        if (zone.provider !== 'rfc2136') throw new Error('the bench lab is BIND only');
        const rs = { name: rec.name, type: rec.type, ttl: rec.ttl, values: [to] };
        await lookup(zone.server, rec.name, rec.type);
        await replaceRecordSet(zone.server, zone.zone, zone.key, rs);
        await waitAnswers(zone.server, rs, { timeoutMs: 10_000 });
      }
      return Math.max(0, ...(h?.dns.filter((d) => d.matchInstanceId === r.id).map((d) => d.ttl) ?? []));
    };
    const scriptOne = async (r: InstanceRef, type: string) => {
      const ec2 = ec2Client(region);
      const iid = cloud.get(r.serverId) ?? '';
      await describeInstancesById(ec2, region, [iid]);
      const primary = herdRefs.get(r.herdId)?.members.find((m) => m.role === 'primary');
      const ttl = await moveName(r, primary?.hostname ?? '');
      await sleep(ttl * 1000);
      const stop = await ssh.exec(r.ssh, driverFor(r.controlDriver).stop(r, 'fast'), { timeoutMs: 150_000 });
      if (stop.code !== 0) throw new Error(`pg_ctl stop: ${stop.stderr}`);
      await stopInstance(ec2, iid, bounds);
      await setInstanceType(ec2, iid, type);
      await startInstance(ec2, iid, bounds);
      await waitObserved(r, 'answering', (o) => o.reachable, { timeoutMs: 60_000 });
      await waitObserved(
        r,
        'streaming',
        (v) => v.reachable && v.inRecovery === true && v.walReceiver?.status === 'streaming' && (v.replayLagSeconds ?? 0) <= 30,
        { timeoutMs: 300_000 },
      );
      await describeInstancesById(ec2, region, [iid]);
      await observe(r);
      await describeInstancesById(ec2, region, [iid]);
      await observe(r);
      await moveName(r, r.hostname);
    };
    const byScript = async (type: string) => {
      const t0 = performance.now();
      await Promise.all(refs.map((r) => scriptOne(r, type)));
      return performance.now() - t0;
    };

    // The type catalogue is read from EC2 once an hour per process: read before timing, as a console up for a while has it.
    await planOperation(db, SYSTEM_ACCESS, resizeAction, replicaIds, { instanceType: 'm6i.xlarge' });
    // Alternated, each run changing the type back: pgherd, script, pgherd, script...
    const times = { pgherd: [] as number[], script: [] as number[] };
    let type = 'm6i.xlarge';
    for (let k = 0; k < ROUNDS; k++) {
      times.pgherd.push(await throughPgherd(type));
      type = type === 'm6i.xlarge' ? 'm6i.large' : 'm6i.xlarge';
      times.script.push(await byScript(type));
      type = type === 'm6i.xlarge' ? 'm6i.large' : 'm6i.xlarge';
      log(`round ${k + 1}: pgherd ${times.pgherd.at(-1)!.toFixed(0)} ms, script ${times.script.at(-1)!.toFixed(0)} ms`);
    }
    const p = median(times.pgherd);
    const s = median(times.script);
    return [
      `resize run, ${refs.length} replicas in ${HERDS.length} herds at once (drain, TTL 2 s, stop, type, start, streaming, name back)`,
      `  pgherd (plan, queue, worker, records): median ${p.toFixed(0)} ms of ${ROUNDS} (${times.pgherd.map((x) => x.toFixed(0)).join(', ')})`,
      `  plain script, same calls and order: median ${s.toFixed(0)} ms of ${ROUNDS} (${times.script.map((x) => x.toFixed(0)).join(', ')})`,
      `  pgherd / script: ${(p / s).toFixed(2)}x (target: at most 1.15x)`,
    ];
  } finally {
    await worker?.close();
    await queue.close();
    producer.disconnect();
    await ssh.close();
    await pool.end();
    await stopLab(FILE, log);
  }
}
