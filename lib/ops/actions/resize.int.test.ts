// Resize through the engine, on a lab of its own (environment "cloud", herd "orders": a primary and two
// replicas on 127.0.10.x, each on an EC2 instance in the lab's moto, each replica with a read name in
// BIND): resizes stop hosts, which the shared lab's other users must not see.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq, inArray } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { herds, instances, operations, operationSteps, operationTargets, servers } from '@/db/schema';
import { awsSettings, ec2Client } from '@/lib/aws/config';
import { describeInstancesById } from '@/lib/aws/ec2';
import { SYSTEM_ACCESS } from '@/lib/auth/access';
import { discoverEc2, discoveryConfig } from '@/lib/cloud/discovery';
import { lookup } from '@/lib/dns/rfc2136';
import { PROJECT_ROOT, readNameOf, startLab, stopLab, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { ParamsError, planOperation } from '../plan';
import { producerConnection, targetQueue } from '../queue';
import { submitOperation } from '../submit';
import { startWorker } from '../worker';
import { resizeAction } from './resize.action';
import { powerOffAction, powerOnAction } from './power.action';
import type { AnyAction } from '../define-action';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-resize-${process.pid}.json`);
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
let queue: ReturnType<typeof targetQueue>;
let producer: ReturnType<typeof producerConnection>;
const ids = new Map<string, number>();
const actor = { id: null, username: 'resize-test', access: SYSTEM_ACCESS };

beforeAll(async () => {
  lab = await startLab({
    file: LAB_FILE,
    fleet: { environments: ['cloud'], herds: ['orders'], replicas: 2, sites: ['dc-east', 'dc-west'], subnet: '127.0.10' },
    ldap: false,
    pgbouncer: [],
  });
  const c = await seededDatabase(lab, 4, { readNames: true });
  db = c.db;
  closeDb = () => c.pool.end();
  // The servers' cloud identity, as EC2 discovery gives it.
  const cfg = discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [lab.aws!.region], tags: lab.aws!.discoveryTags }) })!;
  await discoverEc2(db, cfg, (region) => ec2Client(region));
  for (const i of await db
    .select({ id: instances.id, host: servers.hostname })
    .from(instances)
    .innerJoin(servers, eq(servers.id, instances.serverId)))
    ids.set(i.host, i.id);
  producer = producerConnection(lab.redis!.url);
  queue = targetQueue(producer, 'resize');
  worker = await startWorker({
    databaseUrl: lab.database.url,
    redisUrl: lab.redis!.url,
    sshKeyPath: lab.ssh!.privateKeyPath,
    concurrency: 4,
    refreshEveryMs: 0,
    queuePrefix: 'resize',
    quiet: true,
  });
}, 180_000);

afterAll(async () => {
  await worker?.close();
  await ifAssigned(queue)?.close();
  ifAssigned(producer)?.disconnect();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

const replicas = () => lab.instances.filter((i) => i.role === 'replica');
const primary = () => lab.instances.find((i) => i.role === 'primary')!;
const idOf = (i: LabInstance) => ids.get(i.server)!;
const ec2Of = (i: LabInstance) => lab.aws!.instances.find((x) => x.server === i.server)!.instanceId;
const ec2 = () => ec2Client(undefined, awsSettings());
const typeOf = async (i: LabInstance) => (await describeInstancesById(ec2(), lab.aws!.region, [ec2Of(i)]))[0]!;
const capacity = (insufficient: string[]) => writeFileSync(lab.aws!.capacityFile, JSON.stringify({ insufficient }));
const readName = (i: LabInstance) => readNameOf(i, lab.dns!.zone);
const resolves = async (i: LabInstance) => (await lookup({ host: lab.dns!.server, port: lab.dns!.port }, readName(i), 'CNAME'))[0];
const streaming = async (i: LabInstance) =>
  (await query<{ s: string }>(i.dsn, 'SELECT status AS s FROM pg_stat_wal_receiver'))[0]?.s ?? 'not streaming';
const startTime = async (i: LabInstance) => (await query<{ t: Date }>(i.dsn, 'SELECT pg_postmaster_start_time() AS t'))[0]!.t;

const resize = (targets: LabInstance[], params: Record<string, unknown>) => runOp(resizeAction, targets, params);

async function runOp(action: AnyAction, targets: LabInstance[], params: Record<string, unknown>) {
  const plan = await planOperation(db, SYSTEM_ACCESS, action, targets.map(idOf), params);
  const { id } = await submitOperation(
    db,
    queue,
    action,
    {
      instanceIds: targets.map(idOf),
      params,
      digest: plan.digest,
      confirmation: plan.typeToConfirm ?? '',
      idempotencyKey: randomBytes(8).toString('hex'),
    },
    actor,
  );
  for (let i = 0; i < 2400; i++) {
    const [op] = await db.select().from(operations).where(eq(operations.id, id));
    if (op!.finishedAt) {
      const ts = await db.select().from(operationTargets).where(eq(operationTargets.operationId, id)).orderBy(operationTargets.id);
      const steps = await db
        .select()
        .from(operationSteps)
        .where(
          inArray(
            operationSteps.targetId,
            ts.map((x) => x.id),
          ),
        )
        .orderBy(operationSteps.targetId, operationSteps.seq);
      return { plan, op: op!, targets: ts, steps };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`operation ${id} did not finish`);
}

/** A reader that resolves the replica's read name for each connection, as a client with no DNS cache does. */
function startReader(i: LabInstance) {
  const byHost = new Map(lab.instances.map((x) => [x.server, x]));
  const log: { at: number; host: string; ok: boolean; error?: string }[] = [];
  const state = { stop: false };
  // A named function, not an IIFE: TypeScript would read the flag as the false it starts as.
  const readUntilStopped = async () => {
    while (!state.stop) {
      const at = Date.now();
      let host = '?';
      try {
        host = (await resolves(i)) ?? '?';
        const to = byHost.get(host.replace(/\.$/, ''));
        if (!to) throw new Error(`${readName(i)} answers ${host}, no lab server`);
        const c = new pg.Client({ connectionString: to.dsn, connectionTimeoutMillis: 2000 });
        c.on('error', () => {});
        await c.connect();
        try {
          await c.query('SELECT 1');
        } finally {
          await c.end().catch(() => {});
        }
        log.push({ at, host, ok: true });
      } catch (err) {
        log.push({ at, host, ok: false, error: (err as Error).message });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const done = readUntilStopped();
  return {
    log,
    stop: async () => {
      state.stop = true;
      await done;
    },
  };
}

describe('resize a replica', () => {
  it('drains its read name (no failed query), takes the cheapest type with 4 vCPU / 16 GiB, streams again, and puts the name back', async () => {
    const r = replicas()[0]!;
    expect(await resolves(r)).toBe(r.server);
    const reader = startReader(r);
    const { plan, op, targets, steps } = await resize([r], { minVcpus: 4, minMemoryGiB: 16 });
    await reader.stop();
    const facts = Object.fromEntries((plan.targets[0]!.facts ?? []).map((f) => [f.label, f.value]));
    expect(plan.targets[0]!.refused).toBeUndefined();
    const target = facts['Target type']!.split(':')[0]!;
    expect(facts['Type now']).toMatch(/^m6i\.large: 2 vCPU, 8 GiB, \$0\.\d+\/h/);
    expect(facts['Cost change']).toMatch(/^\+\$\d+\.\d\d\/month/);
    expect(facts['DNS drained']).toBe(`${readName(r)} (TTL 2 s)`);
    expect([op.status, targets[0]!.error], JSON.stringify(steps.map((s) => [s.name, s.status, s.stdoutTail, s.stderrTail]))).toEqual([
      'succeeded',
      null,
    ]);
    expect(steps.map((s) => s.name)).toEqual([
      'check the EC2 instance and the hooks',
      `DNS drain: ${readName(r)}`,
      'wait out the TTL',
      'stop Postgres',
      'EC2: stop',
      'EC2: new type and start',
      'Postgres up',
      'streaming',
      'record the new type',
      'record the observed state in the inventory',
      'make sure the instance runs',
      `DNS back: ${readName(r)}`,
    ]);
    // The instance runs the new type, the inventory says so, the replica streams, the name is back.
    expect(await typeOf(r)).toMatchObject({ state: 'running', instanceType: target });
    const [s] = await db.select().from(servers).where(eq(servers.hostname, r.server));
    expect(s!.cloudInstanceType).toBe(target);
    expect(await streaming(r)).toBe('streaming');
    expect(await resolves(r)).toBe(r.server);
    // The reader: never a failed query; served elsewhere while the replica was away.
    expect(reader.log.filter((q) => !q.ok)).toEqual([]);
    expect(reader.log.some((q) => q.host !== r.server)).toBe(true);
  }, 240_000);

  it('falls back when EC2 has no capacity for the target; with none for any, starts the original type again and fails saying why', async () => {
    const r = replicas()[1]!;
    const before = (await typeOf(r)).instanceType;
    capacity(['m6i.2xlarge']);
    try {
      const one = await resize([r], { instanceType: 'm6i.2xlarge', fallbackTypes: ['r6i.xlarge', 'm5.xlarge'] });
      expect(one.op.status).toBe('succeeded');
      expect(one.steps.find((x) => x.name === 'EC2: new type and start')!.stdoutTail).toMatch(
        /^m6i\.2xlarge: InsufficientInstanceCapacity: .*\nr6i\.xlarge: running$/,
      );
      expect((await typeOf(r)).instanceType).toBe('r6i.xlarge');

      capacity(['m6i.2xlarge', 'm5.xlarge']);
      const none = await resize([r], { instanceType: 'm6i.2xlarge', fallbackTypes: ['m5.xlarge'] });
      expect(none.op.status).toBe('failed');
      expect(none.targets[0]!.error).toMatch(
        /^no type could be had: m6i\.2xlarge: InsufficientInstanceCapacity: .*; m5\.xlarge: InsufficientInstanceCapacity: .*; .* runs r6i\.xlarge again and streams$/,
      );
      expect(await typeOf(r)).toMatchObject({ state: 'running', instanceType: 'r6i.xlarge' });
      expect(await streaming(r)).toBe('streaming');
      expect(await resolves(r)).toBe(r.server);
      expect(before).toBe('m6i.large');
    } finally {
      capacity([]);
    }
  }, 300_000);

  it('a failing pre-resize hook: the name comes back, nothing is stopped', async () => {
    const r = replicas()[0]!;
    const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-hook-'));
    const hook = path.join(dir, 'pre.sh');
    writeFileSync(hook, '#!/bin/sh\necho "asked: $*"\necho "not today" >&2\nexit 3\n');
    chmodSync(hook, 0o755);
    const [h] = await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'orders'));
    await db.update(herds).set({ resizePreHook: hook, hooksRunOn: 'worker', hookTimeoutSeconds: 20 }).where(eq(herds.id, h!.id));
    try {
      const started = await startTime(r);
      const type = (await typeOf(r)).instanceType;
      const { op, targets, steps } = await resize([r], { instanceType: 'm6i.xlarge' });
      expect(op.status).toBe('failed');
      expect(targets[0]!.error).toMatch(/hook .*pre\.sh exited 3: not today/);
      const ran = steps.find((x) => x.name === 'pre-resize hook')!;
      expect(ran.stdoutTail).toContain(`asked: pre-resize ${r.server} ${r.port} ${ec2Of(r)} ${type} m6i.xlarge`);
      expect(steps.map((x) => x.name)).not.toContain('stop Postgres');
      expect(steps.find((x) => x.name === `DNS back: ${readName(r)}`)!.status).toBe('succeeded');
      expect(await resolves(r)).toBe(r.server);
      expect(await startTime(r)).toEqual(started);
      expect(await typeOf(r)).toMatchObject({ state: 'running', instanceType: type });
    } finally {
      await db.update(herds).set({ resizePreHook: '' }).where(eq(herds.id, h!.id));
    }
  }, 120_000);
});

describe('power off and on', () => {
  it('power off stops Postgres cleanly, then the EC2 host; power on starts both and the replica streams again', async () => {
    const r = replicas()[1]!;
    expect((await planOperation(db, SYSTEM_ACCESS, powerOnAction, [idOf(r)], {})).targets[0]!.refused).toMatch(
      /is running: power on needs it stopped/,
    );
    const off = await runOp(powerOffAction, [r], {});
    expect(off.op.status, JSON.stringify(off.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    expect(off.steps.map((s) => s.name)).toEqual([
      'check the EC2 instance',
      'stop Postgres',
      'EC2: stop',
      'record the observed state in the inventory',
    ]);
    expect((await typeOf(r)).state).toBe('stopped');
    await expect(query(r.dsn, 'SELECT 1')).rejects.toThrow();
    const [inst] = await db
      .select({ state: instances.state })
      .from(instances)
      .where(eq(instances.id, idOf(r)));
    const [srv] = await db.select({ state: servers.cloudState }).from(servers).where(eq(servers.hostname, r.server));
    expect([inst!.state, srv!.state]).toEqual(['stopped', 'stopped']);
    expect((await planOperation(db, SYSTEM_ACCESS, powerOffAction, [idOf(r)], {})).targets[0]!.refused).toMatch(
      /is stopped: power off needs it running/,
    );

    const on = await runOp(powerOnAction, [r], {});
    expect(on.op.status, JSON.stringify(on.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    expect((await typeOf(r)).state).toBe('running');
    expect(await streaming(r)).toBe('streaming');
    const [back] = await db
      .select({ state: instances.state })
      .from(instances)
      .where(eq(instances.id, idOf(r)));
    expect(back!.state).toBe('running');
  }, 180_000);
});

describe('refused at planning, with the reason', () => {
  const refusal = async (i: LabInstance, params: Record<string, unknown>) =>
    (await planOperation(db, SYSTEM_ACCESS, resizeAction, [idOf(i)], params)).targets[0]!.refused;

  it('a primary, another architecture, a type that does not exist, no type big enough, a duplicate fallback, no cloud identity', async () => {
    const r = replicas()[0]!;
    expect(await refusal(primary(), { instanceType: 'm6i.xlarge' })).toMatch(/use "Resize a herd"/);
    expect(await refusal(r, { instanceType: 'm7g.large' })).toMatch(/^m7g\.large runs arm64, not x86_64/);
    expect(await refusal(r, { instanceType: 'm6i.huge' })).toBe('m6i.huge is not an EC2 instance type in eu-west-1');
    expect(await refusal(r, { minVcpus: 2000, minMemoryGiB: 1 })).toMatch(
      /^no instance type offered in eu-west-1\w has at least 2000 vCPU/,
    );
    expect(await refusal(r, { instanceType: 'm6i.xlarge', fallbackTypes: ['r6i.xlarge', 'r6i.xlarge'] })).toBe(
      'fallback r6i.xlarge is listed twice',
    );
    await expect(planOperation(db, SYSTEM_ACCESS, resizeAction, [idOf(r)], { instanceType: 'm6i.xlarge', minVcpus: 4 })).rejects.toThrow(
      ParamsError,
    );
    await expect(planOperation(db, SYSTEM_ACCESS, resizeAction, [idOf(r)], { instanceType: 'x; rm -rf /' })).rejects.toThrow(ParamsError);
    const [s] = await db.select().from(servers).where(eq(servers.hostname, r.server));
    await db.update(servers).set({ cloudProvider: null }).where(eq(servers.id, s!.id));
    try {
      expect(await refusal(r, { instanceType: 'm6i.xlarge' })).toMatch(/has no EC2 identity: run EC2 discovery/);
    } finally {
      await db.update(servers).set({ cloudProvider: 'aws' }).where(eq(servers.id, s!.id));
    }
  });
});
