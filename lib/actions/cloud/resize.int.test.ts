// Resize through the engine, on a lab of its own (environment "cloud", herd "orders": a primary and two
// replicas on 127.0.10.x, each on an EC2 instance in the lab's moto, each replica with a read name in
// BIND): resizes stop hosts, which the shared lab's other users must not see.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { auditEntries, herds, instances, operations, operationSteps, operationTargets, ruleRuns, rules, servers, users } from '@/db/schema';
import { awsSettings, ec2Client } from '@/lib/adapters/aws/config';
import { describeInstancesById, setInstanceType } from '@/lib/adapters/aws/ec2';
import { loadAccess, SYSTEM_ACCESS } from '@/lib/engine/access';
import { discoverLabServers } from '@/lib/testing/cloud';
import { forgetApiPrices } from '@/lib/fleet/cloud/prices';
import { LAB_PRICES_PUBLISHED } from '@/lib/lab/aws-front';
import { lookup, replaceRecordSet } from '@/lib/adapters/dns/rfc2136';
import { PROJECT_ROOT, readNameOf, startLab, stopLab, writeNameOf, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { crash } from '@/lib/lab/faults';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { openQueue, runOperation, startTestWorker, submitPlanned, waitForOperation, type TestWorker } from '@/lib/testing/operations';
import { startReconnectingWriter } from '@/lib/testing/writer';
import { waitFor } from '@/lib/testing/wait';
import { ParamsError, planOperation } from '@/lib/engine/plan';
import { resizeAction } from './resize.action';
import { resizeHerdAction } from './resize-herd.action';
import { powerOffAction, powerOnAction } from './power.action';
import { promoteAction } from '@/lib/actions/topology/promote.action';
import { refreshDnsAction } from '@/lib/actions/topology/refresh-dns.action';
import { checkDnsRecords } from '@/lib/fleet/refresher';
import type { AnyAction } from '@/lib/engine/define-action';
import { fireRequested } from '@/lib/features/rules/fire';
import { ruleBody } from '@/lib/features/rules/rule-body';
import { createRule, requestRun } from '@/lib/features/rules/rules';
import type { Actor } from '@/lib/engine/access';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-resize-${process.pid}.json`);
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker | null = null;
const ids = new Map<string, number>();

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
  for (const [host, id] of await discoverLabServers(db, lab)) ids.set(host, id);
  worker = await startTestWorker(lab, 'resize', 4);
}, 180_000);

afterAll(async () => {
  await worker?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

const replicas = () => lab.instances.filter((i) => i.role === 'replica');
const primary = () => lab.instances.find((i) => i.role === 'primary')!;
const idOf = (i: LabInstance) => ids.get(i.server)!;
const ec2Of = (i: LabInstance) => lab.aws!.instances.find((x) => x.server === i.server)!.instanceId;
const ec2 = () => ec2Client(undefined, awsSettings());
const typeOf = async (i: LabInstance) => (await describeInstancesById(ec2(), lab.aws!.region, [ec2Of(i)]))[0]!;
/** Types EC2 has no capacity for: refused by StartInstances, or (`late`) accepted, pending, then stopped again. */
const capacity = (insufficient: string[], late: string[] = []) =>
  writeFileSync(lab.aws!.capacityFile, JSON.stringify({ insufficient, lateInsufficient: late }));
const readName = (i: LabInstance) => readNameOf(i, lab.dns!.zone);
const resolves = async (i: LabInstance) => (await lookup({ host: lab.dns!.server, port: lab.dns!.port }, readName(i), 'CNAME'))[0];
const streaming = async (i: LabInstance) =>
  (await query<{ s: string }>(i.dsn, 'SELECT status AS s FROM pg_stat_wal_receiver'))[0]?.s ?? 'not streaming';
const startTime = async (i: LabInstance) => (await query<{ t: Date }>(i.dsn, 'SELECT pg_postmaster_start_time() AS t'))[0]!.t;

const resize = (targets: LabInstance[], params: Record<string, unknown>) => runOp(resizeAction, targets, params);

const runOp = (action: AnyAction, targets: LabInstance[] | { herdId: number }, params: Record<string, unknown>) =>
  runOperation(
    db,
    worker!.queue,
    action,
    'herdId' in targets ? { herdIds: [targets.herdId] } : { instanceIds: targets.map(idOf) },
    params,
    { username: 'resize-test' },
  );

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
        // A stopped replica refuses at once (the lab's loopback), and a drained one is not asked: the
        // bound only keeps a starved machine's slow accept from counting as a failure of the drain.
        const c = new pg.Client({ connectionString: to.dsn, connectionTimeoutMillis: 10_000 });
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
    // Audited once (the record step and the cleanup after it both write the type).
    const audited = await db
      .select({ label: auditEntries.objectLabel })
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'server.resized'), eq(auditEntries.objectId, String(s!.id))));
    expect(audited).toEqual([{ label: `${r.server} (operation #${op.id})` }]);
    expect(await streaming(r)).toBe('streaming');
    expect(await resolves(r)).toBe(r.server);
    // The reader: never a failed query; served elsewhere while the replica was away.
    expect(reader.log.filter((q) => !q.ok)).toEqual([]);
    expect(reader.log.some((q) => q.host !== r.server)).toBe(true);
  }, 240_000);

  it('run again on a replica already on the type: nothing restarted, its name (left drained, as by a worker that died) pointed back', async () => {
    const r = replicas()[0]!;
    const started = await startTime(r);
    await replaceRecordSet({ host: lab.dns!.server, port: lab.dns!.port }, lab.dns!.zone, lab.dns!.key, {
      name: readName(r),
      type: 'CNAME',
      ttl: 2,
      values: [primary().server],
    });
    expect(await resolves(r)).toBe(primary().server);
    // Cut short before the type was recorded: the inventory still has the old one.
    await db.update(servers).set({ cloudInstanceType: 'm6i.large' }).where(eq(servers.hostname, r.server));
    const { plan, op, steps } = await resize([r], { minVcpus: 4, minMemoryGiB: 16 });
    const [inv] = await db.select({ type: servers.cloudInstanceType }).from(servers).where(eq(servers.hostname, r.server));
    expect(inv!.type).toBe((await typeOf(r)).instanceType);
    expect(plan.targets[0]!.facts?.find((f) => f.label === 'Type now')?.value).toMatch(
      /already the type asked for \(the cheapest that fits\)/,
    );
    expect(op.status).toBe('succeeded');
    expect(steps.map((x) => x.name)).toEqual([
      'check the EC2 instance',
      'Postgres up',
      'streaming',
      `DNS back: ${readName(r)}`,
      'record the observed state in the inventory',
    ]);
    expect(await resolves(r)).toBe(r.server);
    expect(await startTime(r)).toEqual(started);
  }, 120_000);

  it('falls back when EC2 has no capacity for the target; with none for any, starts the original type again and fails saying why', async () => {
    const r = replicas()[1]!;
    const before = (await typeOf(r)).instanceType;
    // AWS accepts the start, then takes the instance back to stopped (Server.InsufficientInstanceCapacity):
    // that is a capacity refusal too, known as soon as EC2 says stopped, not at the end of the wait.
    capacity([], ['m6i.2xlarge']);
    try {
      const one = await resize([r], { instanceType: 'm6i.2xlarge', fallbackTypes: ['r6i.xlarge', 'm5.xlarge'] });
      expect(one.op.status, JSON.stringify(one.steps.map((x) => [x.name, x.status, x.stderrTail]))).toBe('succeeded');
      expect(one.steps.find((x) => x.name === 'EC2: new type and start')!.stdoutTail).toMatch(
        /^m6i\.2xlarge: InsufficientInstanceCapacity: i-\w+ did not start: EC2 says stopped \(Server\.InsufficientInstanceCapacity: .*\)\nr6i\.xlarge: running$/,
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

      // Not even the original type can be had: the instance stays stopped, and says so everywhere; its
      // name is not put back onto a replica that does not answer. Power on brings it back later.
      capacity(['m6i.2xlarge', 'm5.xlarge', 'r6i.xlarge']);
      const down = await resize([r], { instanceType: 'm6i.2xlarge', fallbackTypes: ['m5.xlarge'] });
      expect(down.op.status).toBe('failed');
      expect(down.targets[0]!.error).toMatch(
        /^no type could be had, the original included: m6i\.2xlarge: InsufficientInstanceCapacity: .*; m5\.xlarge: InsufficientInstanceCapacity: .*; r6i\.xlarge: InsufficientInstanceCapacity: /,
      );
      expect((await typeOf(r)).state).toBe('stopped');
      expect(down.targets[0]!.outcome).toBe('stopped, still r6i.xlarge');
      const [inv] = await db
        .select({ state: instances.state })
        .from(instances)
        .where(eq(instances.id, idOf(r)));
      expect(inv!.state).toBe('stopped');
      expect(await resolves(r)).not.toBe(r.server);
      expect(down.steps.find((x) => x.name === `DNS back: ${readName(r)}`)).toMatchObject({ status: 'failed' });
      // As a worker killed right after the type change leaves it: stopped on a type EC2 has no capacity
      // for, the inventory still saying r6i.xlarge. Power on goes back to the type last recorded.
      await setInstanceType(ec2(), ec2Of(r), 'm6i.2xlarge');
      capacity(['m6i.2xlarge']);
      const on = await runOp(powerOnAction, [r], {});
      expect(on.op.status, JSON.stringify(on.steps.map((x) => [x.name, x.status, x.stdoutTail, x.stderrTail]))).toBe('succeeded');
      expect(on.plan.targets[0]!.facts?.find((f) => f.label === 'Type')?.value).toMatch(
        /^m6i\.2xlarge in EC2, r6i\.xlarge in the inventory \(a resize cut short\)/,
      );
      expect(on.targets[0]!.outcome).toBe('running as r6i.xlarge again (m6i.2xlarge had no capacity)');
      const [recorded] = await db.select({ type: servers.cloudInstanceType }).from(servers).where(eq(servers.hostname, r.server));
      expect(recorded!.type).toBe('r6i.xlarge');
      expect(await typeOf(r)).toMatchObject({ state: 'running', instanceType: 'r6i.xlarge' });
      expect(await streaming(r)).toBe('streaming');
      expect(await resolves(r)).toBe(r.server); // power on puts its name back
    } finally {
      capacity([]);
    }
  }, 300_000);

  it('a start still pending when its wait runs out, then refused late: the cleanup waits for EC2 to settle and starts the original type', async () => {
    const r = replicas()[1]!;
    const before = (await typeOf(r)).instanceType;
    // EC2 says pending for 9 s, then stopped (Server.InsufficientInstanceCapacity); the worker waits 5 s for a start.
    writeFileSync(lab.aws!.capacityFile, JSON.stringify({ lateInsufficient: ['m6i.4xlarge'], lateSeconds: 9 }));
    const was = process.env.PGHERD_EC2_WAIT_SECONDS;
    process.env.PGHERD_EC2_WAIT_SECONDS = '5';
    try {
      const run = await resize([r], { instanceType: 'm6i.4xlarge', fallbackTypes: ['r6i.2xlarge'] });
      const trace = JSON.stringify(run.steps.map((x) => [x.name, x.status, x.stdoutTail, x.stderrTail]));
      expect([run.op.status, run.targets[0]!.error], trace).toEqual(['failed', expect.stringMatching(/was not running within 5 s/)]);
      expect(
        run.steps.find((x) => x.name === 'make sure the instance runs'),
        trace,
      ).toMatchObject({
        status: 'succeeded',
        stdoutTail: expect.stringContaining(
          `m6i.4xlarge was refused by EC2 (Server.InsufficientInstanceCapacity); started as ${before} again`,
        ),
      });
      // EC2, the inventory and Postgres agree: the original type, running, streaming, its name back.
      expect(await typeOf(r)).toMatchObject({ state: 'running', instanceType: before });
      const [s] = await db.select().from(servers).where(eq(servers.hostname, r.server));
      expect([s!.cloudState, s!.cloudInstanceType]).toEqual(['running', before]);
      expect(await streaming(r)).toBe('streaming');
      expect(await resolves(r)).toBe(r.server);
      expect(run.targets[0]!.outcome).toBe(`still ${before}`);
    } finally {
      if (was === undefined) delete process.env.PGHERD_EC2_WAIT_SECONDS;
      else process.env.PGHERD_EC2_WAIT_SECONDS = was;
      capacity([]);
    }
  }, 240_000);

  it('two identical resizes confirmed together, no capacity for the target: the first takes a fallback, the second runs nothing', async () => {
    const r = replicas()[0]!;
    const params = { minVcpus: 8, minMemoryGiB: 32 };
    const on = { instanceIds: [idOf(r)] };
    // Both confirmed before either starts: the worker is away while they are submitted.
    await worker!.close();
    worker = null;
    try {
      const plans = await Promise.all([1, 2].map(() => planOperation(db, SYSTEM_ACCESS, resizeAction, [idOf(r)], params)));
      const facts = Object.fromEntries((plans[0]!.targets[0]!.facts ?? []).map((f) => [f.label, f.value]));
      const target = facts['Target type']!.split(':')[0]!;
      capacity([target]);
      const submitted: number[] = [];
      const q = openQueue(lab, 'resize');
      for (const plan of plans) submitted.push(await submitPlanned(db, q.queue, resizeAction, on, params, plan));
      await q.close();
      worker = await startTestWorker(lab, 'resize', 4);
      const [first, second] = await Promise.all(submitted.map((id) => waitForOperation(db, id)));
      expect(first!.op.status, JSON.stringify(first!.steps.map((x) => [x.name, x.status, x.stderrTail]))).toBe('succeeded');
      const landed = (await typeOf(r)).instanceType;
      expect(landed).not.toBe(target);
      // The second found the instance on another type than it confirmed, and changed nothing: before,
      // it ranked again from there and moved the replica to the next fallback, which nobody confirmed.
      expect(second!.targets[0]).toMatchObject({
        status: 'failed',
        refusal: 'stale',
        error: expect.stringMatching(
          new RegExp(
            `^refused at execution: what it would do changed since it was confirmed: step 1 was "check that i-\\w+ still runs as [^,"]+.*", now "check that i-\\w+ still runs as ${landed.replace('.', '\\.')}`,
          ),
        ),
      });
      expect(second!.steps).toEqual([]);
      expect(await typeOf(r)).toMatchObject({ state: 'running', instanceType: landed });
      expect(await streaming(r)).toBe('streaming');
      expect(await resolves(r)).toBe(r.server);
    } finally {
      capacity([]);
      worker ??= await startTestWorker(lab, 'resize', 4);
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
    process.env.PGHERD_HOOK_DIR = dir;
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
      delete process.env.PGHERD_HOOK_DIR;
    }
  }, 120_000);

  it('a hook runs only from PGHERD_HOOK_DIR (a link out of it refused, nothing run); one on the member\u2019s host is killed there at its timeout', async () => {
    const r = replicas()[0]!;
    const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-hooks-'));
    const outside = mkdtempSync(path.join(tmpdir(), 'pgherd-not-hooks-'));
    chmodSync(dir, 0o755);
    const evil = path.join(outside, 'evil.sh');
    writeFileSync(evil, `#!/bin/sh\ntouch ${outside}/ran\n`);
    chmodSync(evil, 0o755);
    symlinkSync(evil, path.join(dir, 'link.sh'));
    const slow = path.join(dir, 'slow.sh');
    writeFileSync(slow, '#!/bin/sh\nexec sleep 300\n');
    chmodSync(slow, 0o755);
    const [h] = await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'orders'));
    const withHook = (resizePreHook: string, hooksRunOn: 'worker' | 'database') =>
      db.update(herds).set({ resizePreHook, hooksRunOn, hookTimeoutSeconds: 2 }).where(eq(herds.id, h!.id));
    const type = (await typeOf(r)).instanceType;
    try {
      delete process.env.PGHERD_HOOK_DIR;
      await withHook(evil, 'worker');
      const unset = await resize([r], { instanceType: 'm6i.xlarge' });
      expect(unset.targets[0]!.error).toMatch(/may not run: hooks run only from the directory PGHERD_HOOK_DIR names/);
      process.env.PGHERD_HOOK_DIR = dir;
      const out = await resize([r], { instanceType: 'm6i.xlarge' });
      expect(out.targets[0]!.error).toMatch(/evil\.sh is not in PGHERD_HOOK_DIR/);
      await withHook(path.join(dir, 'link.sh'), 'worker');
      const linked = await resize([r], { instanceType: 'm6i.xlarge' });
      expect(linked.targets[0]!.error).toMatch(/link\.sh is not a file in PGHERD_HOOK_DIR/);
      expect(existsSync(path.join(outside, 'ran'))).toBe(false);

      await withHook(slow, 'database');
      const killed = await resize([r], { instanceType: 'm6i.xlarge' });
      expect(killed.targets[0]!.error).toMatch(/slow\.sh did not finish within 2 s \(killed on /);
      // Gone from the process table within half a second: killed (on its own it would sleep 300 s).
      await waitFor('the slow hook gone', () => !execFileSync('ps', ['-eo', 'args']).toString().includes(slow), 500);
      expect(await typeOf(r)).toMatchObject({ state: 'running', instanceType: type });
      expect(await resolves(r)).toBe(r.server);

      // What the hook started in the background, holding its output open, is killed with it, on the
      // member's host (else the SSH channel stays open past the timeout) and on the worker's.
      const child = path.join(dir, 'child.sh');
      writeFileSync(child, '#!/bin/sh\nexec sleep 301\n');
      chmodSync(child, 0o755);
      const parent = path.join(dir, 'parent.sh');
      writeFileSync(parent, `#!/bin/sh\n${child} &\nexec sleep 302\n`);
      chmodSync(parent, 0o755);
      for (const on of ['database', 'worker'] as const) {
        await withHook(parent, on);
        const group = await resize([r], { instanceType: 'm6i.xlarge' });
        expect(group.targets[0]!.error, on).toMatch(/parent\.sh did not finish within 2 s/);
        await waitFor(
          `the hook and its child gone (${on})`,
          () => !/sleep 30[12]/.test(execFileSync('ps', ['-eo', 'args']).toString()),
          500,
        );
        expect(await resolves(r)).toBe(r.server);
      }
      // On the worker: a child that left the hook's process group (setsid) is found by the run's mark
      // in its environment and killed; the hook gets none of the worker's environment but a few names.
      const escaper = path.join(dir, 'escaper.sh');
      writeFileSync(escaper, `#!/bin/sh\nenv > ${outside}/env\nsetsid sleep 303 > /dev/null 2>&1 < /dev/null &\nsleep 0.3\nexit 5\n`);
      chmodSync(escaper, 0o755);
      process.env.PGHERD_TEST_SECRET = 'not for hooks';
      try {
        await withHook(escaper, 'worker');
        const escaped = await resize([r], { instanceType: 'm6i.xlarge' });
        expect(escaped.targets[0]!.error).toMatch(/escaper\.sh exited 5/);
        expect(execFileSync('ps', ['-eo', 'args']).toString()).not.toMatch(/sleep 303/);
        const env = readFileSync(path.join(outside, 'env'), 'utf8');
        expect(env).toMatch(/^PGHERD_HOOK_RUN=[0-9a-f-]{36}$/m);
        expect(env).not.toContain('PGHERD_TEST_SECRET');
        expect(env).not.toMatch(/^(AWS_|DATABASE_URL|PGHERD_DATABASE)/m);
      } finally {
        delete process.env.PGHERD_TEST_SECRET;
      }

      // A hook checked at the first step and replaced by a link out of the directory before it runs: not run.
      const swapped = path.join(dir, 'swapped.sh');
      writeFileSync(swapped, '#!/bin/sh\nexit 0\n');
      chmodSync(swapped, 0o755);
      const swapper = path.join(dir, 'swapper.sh');
      writeFileSync(swapper, `#!/bin/sh\nrm -f ${swapped} && ln -s ${evil} ${swapped}\n`);
      chmodSync(swapper, 0o755);
      await db
        .update(herds)
        .set({ resizePreHook: swapper, resizePostHook: swapped, hooksRunOn: 'worker', hookTimeoutSeconds: 5 })
        .where(eq(herds.id, h!.id));
      const toctou = await resize([r], { instanceType: type === 'r6i.large' ? 'r6i.xlarge' : 'r6i.large' });
      expect(toctou.targets[0]!.error).toMatch(/swapped\.sh is no longer in PGHERD_HOOK_DIR .*: not run/);
      expect(existsSync(path.join(outside, 'ran'))).toBe(false);
      expect(await resolves(r)).toBe(r.server);
      const now = (await typeOf(r)).instanceType;
      // Put the type back as it was for what follows.
      await db.update(herds).set({ resizePreHook: '', resizePostHook: '' }).where(eq(herds.id, h!.id));
      if (now !== type) expect((await resize([r], { instanceType: type })).op.status).toBe('succeeded');

      // A post-resize hook that fails, after the type changed: the target fails, saying what it runs now; the name is back.
      const post = path.join(dir, 'post.sh');
      writeFileSync(post, '#!/bin/sh\necho "no" >&2\nexit 4\n');
      chmodSync(post, 0o755);
      await db
        .update(herds)
        .set({ resizePreHook: '', resizePostHook: post, hooksRunOn: 'worker', hookTimeoutSeconds: 5 })
        .where(eq(herds.id, h!.id));
      const target = type === 'r6i.large' ? 'r6i.xlarge' : 'r6i.large';
      const failedAfter = await resize([r], { instanceType: target });
      expect([failedAfter.op.status, failedAfter.targets[0]!.error]).toEqual(['failed', expect.stringMatching(/post\.sh exited 4: no/)]);
      expect(failedAfter.targets[0]!.outcome).toBe(`now ${target} (was ${type})`);
      expect(await resolves(r)).toBe(r.server);

      // One that also cuts the replica off from its upstream: it answers, but serves what it had. Its
      // name stays drained; once it streams again, running the resize again puts the name back.
      const conninfo = (await query<{ c: string }>(r.dsn, "SELECT current_setting('primary_conninfo') AS c"))[0]!.c;
      expect(conninfo).toMatch(/host=/);
      const setConninfo = async (v: string) => {
        const [{ sql } = { sql: '' }] = await query<{ sql: string }>(
          r.dsn,
          "SELECT format('ALTER SYSTEM SET primary_conninfo = %L', $1::text) AS sql",
          [v],
        );
        await query(r.dsn, sql);
        await query(r.dsn, 'SELECT pg_reload_conf()');
      };
      writeFileSync(
        post,
        `#!/bin/sh\npsql -X -q "${r.dsn}" -c "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'" -c "SELECT pg_reload_conf()" >/dev/null\nsleep 2\nexit 4\n`,
      );
      try {
        const cutOff = await resize([r], { instanceType: type });
        const trace = JSON.stringify(cutOff.steps.map((x) => [x.name, x.status, x.stdoutTail, x.stderrTail]));
        expect([cutOff.op.status, cutOff.targets[0]!.error], trace).toEqual(['failed', expect.stringMatching(/post\.sh exited 4/)]);
        expect(
          cutOff.steps.find((x) => x.name === `DNS back: ${readName(r)}`),
          trace,
        ).toMatchObject({
          status: 'failed',
          stdoutTail: expect.stringMatching(/does not stream with replay lag under 30 s .*: the name stays where the drain sent it/),
        });
        expect(await resolves(r)).not.toBe(r.server);
      } finally {
        await setConninfo(conninfo);
      }
      await db.update(herds).set({ resizePostHook: '' }).where(eq(herds.id, h!.id));
      const finished = await resize([r], { instanceType: type });
      expect(finished.op.status, JSON.stringify(finished.steps.map((x) => [x.name, x.status, x.stderrTail]))).toBe('succeeded');
      expect(await streaming(r)).toBe('streaming');
      expect(await resolves(r)).toBe(r.server);
    } finally {
      await db.update(herds).set({ resizePreHook: '', resizePostHook: '' }).where(eq(herds.id, h!.id));
      delete process.env.PGHERD_HOOK_DIR;
    }
  }, 180_000);
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
      `DNS drain: ${readName(r)}`,
      'wait out the TTL',
      'stop Postgres',
      'EC2: stop',
      'record the observed state in the inventory',
      `DNS back: ${readName(r)}`,
    ]);
    expect(off.steps.at(-1)!.stdoutTail).toBe('the host was stopped: the name stays drained until power on');
    expect((await typeOf(r)).state).toBe('stopped');
    expect(await resolves(r)).not.toBe(r.server);
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
    // A drained name is what the herd should answer while its replica is off: no drift, and refresh DNS keeps it so.
    const [h] = await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'orders'));
    const drift = await checkDnsRecords(db, { herdIds: [h!.id] });
    expect(drift).toMatchObject({ drifted: 0 });
    const refreshed = await runOp(refreshDnsAction, { herdId: h!.id }, {});
    expect(refreshed.op.status, JSON.stringify(refreshed.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    const drainedTo = await resolves(r);
    expect(drainedTo).not.toBe(r.server);
    expect(lab.instances.filter((x) => x !== r).map((x) => x.server)).toContain(drainedTo);

    const on = await runOp(powerOnAction, [r], {});
    expect(on.op.status, JSON.stringify(on.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    expect((await typeOf(r)).state).toBe('running');
    expect(await streaming(r)).toBe('streaming');
    expect(await resolves(r)).toBe(r.server);
    const [back] = await db
      .select({ state: instances.state })
      .from(instances)
      .where(eq(instances.id, idOf(r)));
    expect(back!.state).toBe('running');
  }, 180_000);

  it('a power off that fails before the host stops puts the drained name back on the replica, which still serves', async () => {
    const r = replicas()[1]!;
    // The clean stop fails at once: SSH refuses the user the inventory now names.
    const [s] = await db.select({ user: servers.sshUser }).from(servers).where(eq(servers.hostname, r.server));
    await db.update(servers).set({ sshUser: 'nobody-here' }).where(eq(servers.hostname, r.server));
    try {
      const off = await runOp(powerOffAction, [r], {});
      const trace = JSON.stringify(off.steps.map((x) => [x.name, x.status, x.stdoutTail, x.stderrTail]));
      expect(off.op.status, trace).toBe('failed');
      expect(off.steps.find((x) => x.name === 'stop Postgres')?.status, trace).toBe('failed');
      expect(off.steps.find((x) => x.name === `DNS back: ${readName(r)}`)?.status, trace).toBe('succeeded');
    } finally {
      await db.update(servers).set({ sshUser: s!.user }).where(eq(servers.hostname, r.server));
    }
    expect((await typeOf(r)).state).toBe('running');
    expect(await streaming(r)).toBe('streaming');
    expect(await resolves(r)).toBe(r.server);
  }, 120_000);

  it('a Postgres that runs but does not answer is stopped cleanly before its host: pg_ctl status asked, not the silence believed', async () => {
    const r = replicas()[0]!;
    const pid = Number(readFileSync(path.join(r.dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const plan = await planOperation(db, SYSTEM_ACCESS, powerOffAction, [idOf(r)], {});
    process.kill(pid, 'SIGSTOP');
    let resumed = false;
    try {
      const id = await submitPlanned(db, worker!.queue, powerOffAction, { instanceIds: [idOf(r)] }, {}, plan);
      // Silent while the first step asks; it answers the clean stop's signal once it runs again.
      for (let k = 0; k < 600 && !resumed; k++) {
        const [checked] = await db
          .select({ status: operationSteps.status })
          .from(operationSteps)
          .innerJoin(operationTargets, eq(operationTargets.id, operationSteps.targetId))
          .where(and(eq(operationTargets.operationId, id), eq(operationSteps.name, 'check the EC2 instance')));
        if (checked && checked.status !== 'running') {
          process.kill(pid, 'SIGCONT');
          resumed = true;
        } else await new Promise((res) => setTimeout(res, 100));
      }
      const { op, steps } = await waitForOperation(db, id);
      const trace = JSON.stringify(steps.map((s) => [s.name, s.status, s.command, s.stdoutTail, s.stderrTail]));
      expect(op.status, trace).toBe('succeeded');
      expect(steps.find((s) => s.name === 'check the EC2 instance')!.stdoutTail, trace).toMatch(
        /Postgres does not answer, and pg_ctl status says it runs \(exit 0\): it is stopped cleanly first/,
      );
      const stop = steps.find((s) => s.name === 'stop Postgres')!;
      expect([stop.status, stop.command, stop.stdoutTail], trace).toEqual([
        'succeeded',
        expect.stringMatching(/pg_ctl .* stop$/),
        expect.not.stringMatching(/skipped/),
      ]);
      expect((await typeOf(r)).state).toBe('stopped');
    } finally {
      if (!resumed) process.kill(pid, 'SIGCONT');
    }
    const on = await runOp(powerOnAction, [r], {});
    expect(on.op.status, JSON.stringify(on.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    expect(await streaming(r)).toBe('streaming');
    expect(await resolves(r)).toBe(r.server);
  }, 240_000);
});

describe("a rule's reverse", () => {
  it('a resize rule and its reverse: the replica on the new type, then back on the type it had, streaming; nothing left to put back', async () => {
    const r = replicas()[1]!;
    const had = (await typeOf(r)).instanceType;
    const [u] = await db.insert(users).values({ username: 'night-owl', source: 'local', isSuperuser: true }).returning();
    const owl: Actor = { id: u!.id, username: 'night-owl', access: await loadAccess(db, u!.id) };
    // Schedules that do not come round during the test: run now stands in for them.
    const rule = await createRule(
      db,
      owl,
      ruleBody.parse({
        name: 'bigger for the batch',
        action: 'resize',
        params: { minVcpus: 4, minMemoryGiB: 16 },
        instanceIds: [idOf(r)],
        schedule: { cron: ['0 22 1 1 *'], timezone: 'Europe/Paris' },
        reverse: { schedule: { cron: ['0 6 2 1 *'], timezone: 'Europe/Paris' } },
      }),
    );
    const [companion] = await db.select().from(rules).where(eq(rules.reverseOf, rule.id));
    expect(companion).toMatchObject({
      name: 'bigger for the batch (reverse)',
      action: 'resize',
      scope: { reverseOf: rule.id },
      ownerName: 'night-owl',
    });
    // What the decider logs (a settle that failed leaves a run 'deciding'): said if the run is not what is expected.
    const logged: string[] = [];
    const deps = {
      db,
      queue: worker!.queue,
      log: (e: string, f: object) => void logged.push(`${e} ${JSON.stringify(f)}`),
    };
    // A run asked for is announced to the workers too (pg_notify): whichever takes it decides it, so
    // the run is read once it has left 'firing' and 'deciding', not the moment this call returns.
    const runNow = async (id: number) => {
      const { runId } = await requestRun(db, owl, id);
      await fireRequested(deps, runId);
      return waitFor(`run #${String(runId)} decided`, async () => {
        const [run] = await db.select().from(ruleRuns).where(eq(ruleRuns.id, runId));
        return run && run.status !== 'firing' && run.status !== 'deciding' ? run : undefined;
      });
    };
    // Before the rule ran, there is nothing to put back.
    expect(await runNow(companion!.id)).toMatchObject({ status: 'nothing', reason: expect.stringMatching(/^nothing to put back/) });

    const night = await runNow(rule.id);
    expect(night.status, `${night.reason ?? ''} ${logged.join('; ')}`).toBe('started');
    expect(night.targets).toEqual([{ id: idOf(r), label: expect.any(String), before: { instanceType: had } }]);
    const up = await waitForOperation(db, night.operationId!);
    expect(up.op.status, JSON.stringify(up.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    const bigger = (await typeOf(r)).instanceType;
    expect(bigger).not.toBe(had);

    const morning = await runNow(companion!.id);
    expect(morning.status, morning.reason ?? '').toBe('started');
    const [op] = await db.select().from(operations).where(eq(operations.id, morning.operationId!));
    expect(op).toMatchObject({
      action: 'resize',
      actionParams: { backTo: { [String(idOf(r))]: had } },
      requestedByName: 'rule: bigger for the batch (reverse)',
    });
    const down = await waitForOperation(db, morning.operationId!);
    expect(down.op.status, JSON.stringify(down.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    expect(await typeOf(r)).toMatchObject({ state: 'running', instanceType: had });
    expect(await streaming(r)).toBe('streaming');
    expect(await resolves(r)).toBe(r.server);
    // Put back once: the next reverse finds nothing to do.
    expect(await runNow(companion!.id)).toMatchObject({ status: 'nothing' });
  }, 300_000);
});

describe('prices', () => {
  const planFacts = async (r: LabInstance) => {
    const p = await planOperation(db, SYSTEM_ACCESS, resizeAction, [idOf(r)], { instanceType: 'm6i.xlarge' });
    return Object.fromEntries((p.targets[0]!.facts ?? []).map((f) => [f.label, f.value]));
  };
  const faults = (pricing: Record<string, unknown>) => writeFileSync(lab.aws!.capacityFile, JSON.stringify({ insufficient: [], pricing }));

  it('come from the Price List Query API when PGHERD_PRICE_SOURCE=aws (kept), else from the file; a failing API falls back, saying why', async () => {
    const r = replicas()[0]!;
    expect(await planFacts(r)).toMatchObject({ Prices: expect.stringMatching(/^.+, as of 2026-11-01$/) });
    process.env.PGHERD_PRICE_SOURCE = 'aws';
    forgetApiPrices();
    try {
      faults({ perHour: { 'm6i.xlarge': 0.5 } });
      const api = await planFacts(r);
      expect(api['Prices']).toBe(`the AWS Price List Query API (on-demand, Linux), as of ${LAB_PRICES_PUBLISHED}`);
      expect(api['Target type']).toBe('m6i.xlarge: 4 vCPU, 16 GiB, $0.5000/h, $365.00/month');
      // Kept: a changed price is not read again within the hour.
      faults({ perHour: { 'm6i.xlarge': 0.9 } });
      expect((await planFacts(r))['Target type']).toContain('$0.5000/h');

      forgetApiPrices();
      faults({ error: 'AccessDeniedException' });
      const failed = await planFacts(r);
      expect(failed['Prices']).toMatch(
        /^.+: the AWS Price List Query API failed for eu-west-1 \(AccessDeniedException: lab: AccessDeniedException\), as of 2026-11-01$/,
      );
      expect(failed['Target type']).toMatch(/^m6i\.xlarge: 4 vCPU, 16 GiB, \$0\.\d+\/h/);
    } finally {
      delete process.env.PGHERD_PRICE_SOURCE;
      forgetApiPrices();
      faults({});
    }
  });
});

describe('refused at planning, with the reason', () => {
  const herdPlan = async (params: Record<string, unknown>) => {
    const [h] = await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'orders'));
    return planOperation(db, SYSTEM_ACCESS, resizeHerdAction, [h!.id], params);
  };

  it('a herd resize: the order it will take, one cost; another architecture refuses the herd', async () => {
    const p = await herdPlan({ instanceType: 'm6i.2xlarge', switchBack: true });
    const facts = Object.fromEntries((p.targets[0]!.facts ?? []).map((f) => [f.label, f.value]));
    const [a, b] = replicas().map((x) => `${x.server}:${x.port}`) as [string, string];
    const first = `${primary().server}:${primary().port}`;
    expect(facts['In order']).toMatch(
      new RegExp(`^resize ${a}; then resize ${b}; then switch over to \\S+; then resize ${first}; then switch back to ${first}$`),
    );
    expect(p.cost).toMatchObject({ targets: 1, unpriced: 0 });
    expect(p.cost!.afterPerHour).toBeGreaterThan(p.cost!.nowPerHour);
    expect(p.targets[0]!.steps.filter((x) => /^promote \S+ \(pg_promote\)/.test(x))).toHaveLength(2);
    expect((await herdPlan({ instanceType: 'm7g.large' })).targets[0]!.refused).toMatch(/: m7g\.large runs arm64, not x86_64/);
  });

  const refusal = async (i: LabInstance, params: Record<string, unknown>) =>
    (await planOperation(db, SYSTEM_ACCESS, resizeAction, [idOf(i)], params)).targets[0]!.refused;

  it('a primary, another architecture, a type that does not exist, no type big enough, a duplicate fallback, no cloud identity', async () => {
    const r = replicas()[0]!;
    expect(await refusal(primary(), { instanceType: 'm6i.xlarge' })).toMatch(/use "Resize a herd"/);
    // The primary edited into a replica by hand: what it last said of itself still refuses it.
    await db
      .update(instances)
      .set({ role: 'replica' })
      .where(eq(instances.id, idOf(primary())));
    try {
      expect(await refusal(primary(), { instanceType: 'm6i.xlarge' })).toMatch(
        /last answered as a primary \(the inventory calls it a replica\): a primary is not resized on its own/,
      );
    } finally {
      await db
        .update(instances)
        .set({ role: 'primary' })
        .where(eq(instances.id, idOf(primary())));
    }
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
      // A herd resize is refused whole when one member cannot be resized, naming it.
      const herd = await herdPlan({ instanceType: 'm6i.xlarge' });
      expect(herd.targets[0]!.refused).toMatch(new RegExp(`^${r.server}:\\d+: ${r.server} has no EC2 identity`));
    } finally {
      await db.update(servers).set({ cloudProvider: 'aws' }).where(eq(servers.id, s!.id));
    }
  });
});

// Last: it moves the primary, which the lab file (and the tests above) take as it was.
describe('resize a herd', () => {
  it('resizes the replicas one at a time, switches over once, resizes the old primary; no acknowledged commit lost through the write name', async () => {
    const [h] = await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'orders'));
    const old = primary();
    const writeName = writeNameOf(old.environment, old.herd, lab.dns!.zone);
    const byHost = new Map(lab.instances.map((x) => [x.server, x]));
    const writeAt = async () => {
      const [to] = await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'CNAME');
      return byHost.get((to ?? '').replace(/\.$/, ''))?.dsn ?? 'postgres://nowhere.invalid/x';
    };
    await query(old.dsn, 'CREATE TABLE herd_writes (n int)');
    const wanted = { minVcpus: 8, minMemoryGiB: 32 };
    const plan = await planOperation(db, SYSTEM_ACCESS, resizeHerdAction, [h!.id], wanted);
    expect(plan.targets[0]!.refused).toBeUndefined();
    const facts = Object.fromEntries((plan.targets[0]!.facts ?? []).map((f) => [f.label, f.value]));
    expect(facts['Cost of the herd']).toMatch(/^\$\d+\.\d\d\/month now, \$\d+\.\d\d\/month after \(\+\$\d+\.\d\d\/month\)$/);
    expect(plan.cost).toMatchObject({ targets: 1, unpriced: 0 });
    const target = /to (\S+) \(/.exec(facts[`${old.server} (primary)`]!)![1]!;

    const writer = startReconnectingWriter(writeAt, 'herd_writes');
    const readers = replicas().map((r) => startReader(r));
    let run: Awaited<ReturnType<typeof runOp>>;
    try {
      // The load under way before the resize: a commit, and a read through each replica's name.
      await waitFor('the writer and the readers under way', () => writer.acked.length > 0 && readers.every((r) => r.log.some((q) => q.ok)));
      run = await runOp(resizeHerdAction, { herdId: h!.id }, wanted);
    } finally {
      await writer.stop();
      for (const r of readers) await r.stop();
    }
    // Readers through each replica's read name: never a failed query (each name back before the next replica drains).
    expect(
      readers.flatMap((r) => r.log.filter((q) => !q.ok)),
      JSON.stringify(run.steps.map((x) => [x.name, x.startedAt.getTime(), x.finishedAt?.getTime(), x.stdoutTail.slice(0, 200)])),
    ).toEqual([]);
    const { op, targets, steps } = run;
    const names = steps.map((s) => s.name);
    expect([op.status, targets[0]!.error], JSON.stringify(steps.map((s) => [s.name, s.status, s.stderrTail]))).toEqual(['succeeded', null]);
    // The replicas one at a time (each name back before the next drains), one switchover, then the old primary.
    const [r1, r2] = replicas();
    const at = (n: string) => names.indexOf(n);
    expect(at(`${r1!.server}: DNS back: ${readName(r1!)}`)).toBeLessThan(at(`${r2!.server}: DNS drain: ${readName(r2!)}`));
    expect(at(`${r2!.server}: DNS back: ${readName(r2!)}`)).toBeLessThan(names.findIndex((n) => n.startsWith('switchover: ')));
    expect(names.filter((n) => /^switchover: promote /.test(n))).toHaveLength(1);
    expect(names.findIndex((n) => n.startsWith(`${old.server}: EC2: stop`))).toBeGreaterThan(
      names.findIndex((n) => n.startsWith('switchover: promote')),
    );
    // Every member runs the new type; the write name answers the new primary; the old primary and the other replica stream from it.
    for (const m of lab.instances) expect(await typeOf(m)).toMatchObject({ state: 'running', instanceType: target });
    const neu = byHost.get(
      ((await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'CNAME'))[0] ?? '').replace(/\.$/, ''),
    )!;
    expect(neu.server).not.toBe(old.server);
    expect((await query<{ r: boolean }>(neu.dsn, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    for (const m of lab.instances.filter((x) => x !== neu)) expect(await streaming(m)).toBe('streaming');
    for (const m of replicas()) expect(await resolves(m)).toBe(m.server);
    // Every acknowledged commit is on the new primary.
    expect(writer.acked.length).toBeGreaterThan(100);
    const { n } = (
      await query<{ n: string }>(neu.dsn, 'SELECT count(*) AS n FROM herd_writes WHERE n = ANY($1::int[])', [writer.acked])
    )[0]!;
    expect(Number(n)).toBe(writer.acked.length);
    console.log(
      `herd resize: ${writer.acked.length} commits acknowledged, all on ${neu.server}; longest gap ${writer.maxGapMs.toFixed(0)} ms`,
    );
    expect(targets[0]!.outcome).toMatch(new RegExp(`; ${neu.server}\\S* is the primary$`));
  }, 600_000);
});

describe('resize a herd, and switch back', () => {
  it('puts every member on the type asked for and makes the primary of before the primary again', async () => {
    const [h] = await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'orders'));
    const [before] = await db
      .select({ host: servers.hostname })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .where(eq(instances.role, 'primary'));
    const { op, targets, steps } = await runOp(resizeHerdAction, { herdId: h!.id }, { instanceType: 'm6i.large', switchBack: true });
    expect([op.status, targets[0]!.error], JSON.stringify(steps.map((s) => [s.name, s.status, s.stderrTail]))).toEqual(['succeeded', null]);
    expect(steps.filter((s) => /^switch(over| back): promote /.test(s.name))).toHaveLength(2);
    for (const m of lab.instances) expect(await typeOf(m)).toMatchObject({ state: 'running', instanceType: 'm6i.large' });
    const first = lab.instances.find((x) => x.server === before!.host)!;
    expect((await query<{ r: boolean }>(first.dsn, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    for (const m of lab.instances.filter((x) => x !== first)) expect(await streaming(m)).toBe('streaming');
    const [now] = await db
      .select({ host: servers.hostname })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .where(eq(instances.role, 'primary'));
    expect(now!.host).toBe(first.server);

    // A run cut short in a replica after its type changed (the worker gone): its Postgres down (and
    // the inventory saying so), its read name still drained onto the primary. Running the herd resize again finishes it, resizing nothing.
    let cut: LabInstance | undefined;
    for (const x of lab.instances) if (x !== first && (await resolves(x).catch(() => null)) === x.server) cut = x;
    if (!cut) throw new Error('no replica with a read name of its own');
    await crash(lab, cut);
    // The refresher has seen it down since: the inventory says stopped.
    await db
      .update(instances)
      .set({ state: 'stopped' })
      .where(eq(instances.id, idOf(cut)));
    await replaceRecordSet({ host: lab.dns!.server, port: lab.dns!.port }, lab.dns!.zone, lab.dns!.key, {
      name: readName(cut),
      type: 'CNAME',
      ttl: 2,
      values: [first.server],
    });
    const again = await runOp(resizeHerdAction, { herdId: h!.id }, { instanceType: 'm6i.large', switchBack: true });
    expect([again.op.status, again.targets[0]!.error], JSON.stringify(again.steps.map((s) => [s.name, s.status, s.stderrTail]))).toEqual([
      'succeeded',
      null,
    ]);
    expect(again.plan.targets[0]!.facts?.find((f) => f.label === 'In order')?.value).toMatch(/^finish .*; then finish /);
    expect(again.steps.filter((s) => /EC2: stop|promote|pre-resize/.test(s.name))).toEqual([]);
    expect(again.steps.find((s) => s.name === `${cut.server}: Postgres up`)?.status).toBe('succeeded');
    expect(await streaming(cut)).toBe('streaming');
    expect(await resolves(cut)).toBe(cut.server);
    for (const m of lab.instances) expect(await typeOf(m)).toMatchObject({ state: 'running', instanceType: 'm6i.large' });
    expect((await query<{ r: boolean }>(first.dsn, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
  }, 600_000);
});

// Last in the file: it leaves the herd with its first primary powered off and a replica promoted.
describe('power on never makes a second primary', () => {
  it('refuses an old primary edited into a replica: the new primary running, the inventory out of date, the new primary silent', async () => {
    // The herd's primary now (the herd resizes before this one moved it), and a replica of it.
    const inRecovery = async (i: LabInstance) => (await query<{ r: boolean }>(i.dsn, 'SELECT pg_is_in_recovery() AS r'))[0]!.r;
    const roles = await Promise.all(lab.instances.map(async (i) => ({ i, standby: await inRecovery(i) })));
    const old = roles.find((x) => !x.standby)!.i;
    const r1 = roles.find((x) => x.standby)!.i;
    const off = await runOp(powerOffAction, [old], {});
    expect(off.op.status, JSON.stringify(off.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    const promoted = await runOp(promoteAction, [r1], {});
    expect(promoted.op.status, JSON.stringify(promoted.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    // The admin calls the powered-off old primary a replica of the new one (what the edit form allows).
    await db
      .update(instances)
      .set({ role: 'replica', upstreamInstanceId: idOf(r1) })
      .where(eq(instances.id, idOf(old)));
    const planned = async () => (await planOperation(db, SYSTEM_ACCESS, powerOnAction, [idOf(old)], {})).targets[0]!;
    expect(await planned()).toMatchObject({
      refusalCode: 'split-brain',
      refused: expect.stringMatching(
        new RegExp(`${old.server}:\\d+ last answered as primary \\(timeline \\d+\\), so its host may boot it as a primary`),
      ),
    });

    // The inventory out of date (the new primary "stopped", never observed): the first step asks the herd itself.
    const stale = () =>
      db
        .update(instances)
        .set({ state: 'stopped', observedRole: null })
        .where(eq(instances.id, idOf(r1)));
    await stale();
    const answered = await runOp(powerOnAction, [old], {});
    expect([answered.op.status, answered.targets[0]!.error]).toEqual([
      'failed',
      expect.stringMatching(new RegExp(`${r1.server}:\\d+ answers as a primary\\. .* nothing was started`)),
    ]);

    // The new primary alive but silent: no answer is no proof that it is not the primary.
    const pid = Number(readFileSync(path.join(r1.dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGSTOP');
    try {
      await stale();
      const silent = await runOp(powerOnAction, [old], {});
      expect([silent.op.status, silent.targets[0]!.error]).toEqual([
        'failed',
        expect.stringMatching(
          new RegExp(
            `${r1.server}:\\d+ does not answer .*last answered as nothing yet and its host is running in EC2, so it may be a primary`,
          ),
        ),
      ]);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Nothing started: the old primary's host is still off; the promoted replica is the one primary.
    expect((await typeOf(old)).state).toBe('stopped');
    expect(await inRecovery(r1)).toBe(false);

    // The new primary powered off too: the old one is still refused (the newer primary has the herd's
    // latest writes, and its host boots it as the primary); the newer one is powered on.
    await db
      .update(instances)
      .set({ state: 'running', observedRole: 'primary' })
      .where(eq(instances.id, idOf(r1)));
    await query(r1.dsn, 'CREATE TABLE IF NOT EXISTS after_promote (id int); INSERT INTO after_promote VALUES (1)');
    const off2 = await runOp(powerOffAction, [r1], {});
    expect(off2.op.status, JSON.stringify(off2.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    expect(await planned()).toMatchObject({
      refusalCode: 'split-brain',
      refused: expect.stringMatching(
        new RegExp(`${r1.server}:\\d+ \\(stopped, last a primary on timeline \\d+\\) is or may be the herd's primary`),
      ),
    });
    const on = await runOp(powerOnAction, [r1], {});
    expect(on.op.status, JSON.stringify(on.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    expect(await inRecovery(r1)).toBe(false);
    expect((await query<{ n: number }>(r1.dsn, 'SELECT count(*)::int AS n FROM after_promote'))[0]!.n).toBe(1);
    expect((await typeOf(old)).state).toBe('stopped');

    // The third member promoted outside pgherd and powered off before the refresher saw it: power off
    // records what it answered as before stopping it, so powering it on is refused beside r1.
    const r2 = roles.find((x) => x.standby && x.i !== r1)!.i;
    await query(r2.dsn, 'SELECT pg_promote()');
    expect(await inRecovery(r2)).toBe(false);
    const [inv] = await db
      .select({ role: instances.role, observedRole: instances.observedRole })
      .from(instances)
      .where(eq(instances.id, idOf(r2)));
    expect(inv).toEqual({ role: 'replica', observedRole: 'replica' });
    const off3 = await runOp(powerOffAction, [r2], {});
    expect(off3.op.status, JSON.stringify(off3.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    expect(off3.steps[0]!.stdoutTail).toMatch(/Postgres answers as a primary \(timeline \d+\)/);
    expect((await planOperation(db, SYSTEM_ACCESS, powerOnAction, [idOf(r2)], {})).targets[0]).toMatchObject({
      refusalCode: 'split-brain',
      refused: expect.stringMatching(new RegExp(`${r2.server}:\\d+ last answered as primary`)),
    });
    expect((await typeOf(r2)).state).toBe('stopped');
  }, 400_000);
});
