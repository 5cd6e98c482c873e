// Grow data volume on a lab of its own (environment "gv", herd "files": a primary and a replica on
// 127.0.99.x, each on an EC2 instance in the lab's moto), each member's data directory moved onto a lab
// volume (a 2 GiB XFS filesystem on a loop device, attached to its instance in moto: lib/lab/volumes.ts).
// A filesystem filled for real is found by its agent's report, grown through EBS (the lab's front grows the
// loop device) and xfs_growfs over SSH, with Postgres running; the finding clears.
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { diskReadings } from '@/db/schema';
import { ec2Client } from '@/lib/adapters/aws/config';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import { discoverLabServers } from '@/lib/testing/cloud';
import { judgeRisks } from '@/lib/features/risks/judge';
import { listRisks } from '@/lib/features/risks/view';
import { ingestLabReports } from '@/lib/lab/agents';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { labIdentity, run } from '@/lib/lab/proc';
import { seededDatabase } from '@/lib/lab/seed';
import { makeLabVolume, volumesUnavailable, type LabVolume } from '@/lib/lab/volumes';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { runOperation, startTestWorker, type TestWorker } from '@/lib/testing/operations';
import { growVolumeAction } from './grow-volume.action';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-grow-volume-${process.pid}.json`);
const GiB = 1024 ** 3;
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker;
const volumes = new Map<string, LabVolume>();
const ids = new Map<string, number>();

const primary = () => lab.instances.find((i) => i.role === 'primary')!;
const replica = () => lab.instances.find((i) => i.role === 'replica')!;
const idOf = (i: LabInstance) => ids.get(i.server)!;
const ec2 = () => ec2Client(lab.aws!.region);
const sizeOf = async (v: LabVolume) => (await ec2().send(new DescribeVolumesCommand({ VolumeIds: [v.volumeId] }))).Volumes![0]!.Size;
const fsTotal = (v: LabVolume) => {
  const s = statfsSync(v.mountPoint);
  return s.blocks * s.bsize;
};
const refusalOf = async (i: LabInstance, params: Record<string, unknown>) =>
  (await planOperation(db, SYSTEM_ACCESS, growVolumeAction, [idOf(i)], params)).targets[0]!.refused ?? null;
const diskRisks = async (i: LabInstance) =>
  (await listRisks(db, null, {})).filter((r) => r.instanceId === idOf(i) && (r.kind === 'disk_low' || r.kind === 'disk_full_soon'));
const report = async () => {
  await ingestLabReports(db, lab);
  await judgeRisks(db);
};

beforeAll(async () => {
  // Loop devices are root's: a machine without them fails here, saying why (never a skip that passes).
  expect(volumesUnavailable()).toBeNull();
  lab = await startLab({
    file: LAB_FILE,
    fleet: { environments: ['gv'], herds: ['files'], replicas: 1, sites: ['dc-east'], subnet: '127.0.99' },
    ldap: false,
    pgbouncer: [],
    backup: false,
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  // The servers' cloud identity, as EC2 discovery gives it.
  for (const [host, id] of await discoverLabServers(db, lab)) ids.set(host, id);
  for (const i of lab.instances) volumes.set(i.server, await makeLabVolume(lab, i, 2));
  worker = await startTestWorker(lab, 'grow-volume', 2);
}, 240_000);

afterAll(async () => {
  await ifAssigned(worker)?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

/** Fills the filesystem under `i`'s data directory until `leftBytes` are free (a file of the lab user's beside the data). */
async function fill(i: LabInstance, leftBytes: number) {
  const v = volumes.get(i.server)!;
  const s = statfsSync(v.mountPoint);
  const size = s.bavail * s.bsize - leftBytes;
  await run(labIdentity(), ['fallocate', '--length', String(size), path.join(v.mountPoint, 'ballast')]);
}

describe('Grow data volume', () => {
  it("finds a filesystem filled for real from its agent's report, with the mount it is on and a fix to grow it", async () => {
    const r = replica();
    await fill(r, 80 * 1024 * 1024);
    await report();
    const [reading] = await db
      .select()
      .from(diskReadings)
      .where(eq(diskReadings.instanceId, idOf(r)));
    expect(reading!.dataMount).toEqual({
      device: volumes.get(r.server)!.device,
      fsType: 'xfs',
      mountPoint: volumes.get(r.server)!.mountPoint,
    });
    const found = (await diskRisks(r)).find((x) => x.kind === 'disk_low');
    expect(found, JSON.stringify(await diskRisks(r))).toBeDefined();
    expect(found!.severity).toBe('critical');
    expect(found!.measure).toBeLessThan(5);
    expect(found!.fix).toMatchObject({
      action: 'grow-volume',
      href: expect.stringContaining(`ids=${String(idOf(r))}&p.sizeGiB=3`) as unknown,
    });
  });

  it('refuses what EBS or the host would not do, and bad sizes change nothing', async () => {
    const r = replica();
    expect(await refusalOf(r, {})).toMatch(/give the new size above \(the volume is 2 GiB\)/);
    expect(await refusalOf(r, { sizeGiB: 2 })).toMatch(/is 2 GiB already, and its filesystem fills it/);
    expect(await refusalOf(r, { sizeGiB: 1 })).toMatch(/1 GiB is smaller than vol-\w+ \(2 GiB\): EBS cannot shrink a volume/);
    await expect(planOperation(db, SYSTEM_ACCESS, growVolumeAction, [idOf(r)], { sizeGiB: 0 })).rejects.toThrow(/sizeGiB/);
    await expect(planOperation(db, SYSTEM_ACCESS, growVolumeAction, [idOf(r)], { sizeGiB: 2.5 })).rejects.toThrow(/whole number/);
    await expect(planOperation(db, SYSTEM_ACCESS, growVolumeAction, [idOf(r)], { sizeGiB: 99999 })).rejects.toThrow(/16384/);
    // The agent says a device no EBS volume of the instance is: refused, naming what is attached.
    await db.execute(
      sql`UPDATE disk_readings SET data_mount = jsonb_set(data_mount, '{device}', '"/dev/loop999"') WHERE instance_id = ${idOf(r)}`,
    );
    expect(await refusalOf(r, { sizeGiB: 3 })).toMatch(
      /no EBS volume of i-\w+ is \/dev\/loop999, the device under .* \(attached: .*vol-\w+ as \/dev\/loop\d+/,
    );
    await report();
    expect(await sizeOf(volumes.get(r.server)!)).toBe(2);
  });

  it("never grows a volume an agent's lie points at: the host is asked before EBS is", async () => {
    const r = replica();
    const ec2Id = lab.aws!.instances.find((x) => x.server === r.server)!.instanceId;
    const root = (
      await ec2().send(new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [ec2Id] }] }))
    ).Volumes!.find((x) => x.VolumeId !== volumes.get(r.server)!.volumeId)!;
    const rootDevice = root.Attachments![0]!.Device!;
    const forge = (mount: Record<string, string>) =>
      db.execute(sql`UPDATE disk_readings SET data_mount = data_mount || ${JSON.stringify(mount)}::jsonb WHERE instance_id = ${idOf(r)}`);
    // A volume id claimed for a device that is no NVMe device: not an agent's word.
    await forge({ volumeId: root.VolumeId! });
    expect(await refusalOf(r, { sizeGiB: 30 })).toMatch(/says vol-\w+ for \/dev\/loop\d+, which is no NVMe device/);
    // The root volume's device claimed, with the real mount: planned, and refused by the host before EBS is asked.
    await report();
    await forge({ device: rootDevice });
    try {
      const run = await runOperation(db, worker.queue, growVolumeAction, { instanceIds: [idOf(r)] }, { sizeGiB: 30 });
      expect(run.op.status).toBe('failed');
      expect(run.targets[0]!.refusal).toBe('stale');
      expect(run.targets[0]!.error).toMatch(
        new RegExp(`is on /dev/loop\\d+ at .*, not ${rootDevice} at .* as its agent said: nothing asked of EBS`),
      );
      expect(run.steps.map((x) => x.name)).not.toContain(`grow ${root.VolumeId!}`);
      expect(await sizeOf({ volumeId: root.VolumeId! } as LabVolume)).toBe(root.Size);
    } finally {
      await report();
    }
  });

  it('grows the volume and its filesystem with Postgres running, and the finding clears', async () => {
    const r = replica();
    const v = volumes.get(r.server)!;
    const started = (await query<{ t: Date }>(r.dsn, 'SELECT pg_postmaster_start_time() AS t'))[0]!.t;
    const before = fsTotal(v);
    const run1 = await runOperation(db, worker.queue, growVolumeAction, { instanceIds: [idOf(r)] }, { sizeGiB: 3 });
    expect(run1.op.status, JSON.stringify(run1.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    expect(await sizeOf(v)).toBe(3);
    expect(fsTotal(v)).toBeGreaterThan(before + 0.9 * GiB);
    expect(run1.targets[0]!.outcome).toMatch(new RegExp(`${v.mountPoint} \\(xfs\\) is (2\\.9|3\\.0) GiB now, [\\d.]+ GiB free`));
    // Postgres never stopped, and still replays.
    expect((await query<{ t: Date }>(r.dsn, 'SELECT pg_postmaster_start_time() AS t'))[0]!.t).toEqual(started);
    expect((await query<{ s: string }>(r.dsn, 'SELECT status AS s FROM pg_stat_wal_receiver'))[0]?.s).toBe('streaming');
    await report();
    expect(await diskRisks(r)).toEqual([]);
    // EBS allows one change in six hours: the plan says so before EBS would.
    expect(await refusalOf(r, { sizeGiB: 4 })).toMatch(/was modified at .*: EBS allows one change every six hours/);
  });

  it('grows the volume but not the filesystem when sudo does not allow it, says so, and finishes once it does', async () => {
    const p = primary();
    const v = volumes.get(p.server)!;
    await fill(p, 80 * 1024 * 1024);
    await report();
    const allowed = (await import('node:fs')).readFileSync(v.sudoers, 'utf8');
    rmSync(v.sudoers);
    try {
      const denied = await runOperation(db, worker.queue, growVolumeAction, { instanceIds: [idOf(p)] }, { sizeGiB: 3 });
      expect(denied.op.status).toBe('failed');
      expect(JSON.stringify([denied.steps.map((s) => s.stderrTail), denied.targets.map((t) => t.error ?? t.outcome)])).toMatch(
        /may not run \/usr\/sbin\/xfs_growfs -d .* as root .*the volume is larger, the filesystem not yet/,
      );
      expect(await sizeOf(v)).toBe(3);
      expect(fsTotal(v)).toBeLessThan(2.1 * GiB);
    } finally {
      writeFileSync(v.sudoers, allowed, { mode: 0o440 });
    }
    // Again with the same size: EBS is not asked (it is 2 GiB already), the filesystem is grown.
    const plan = await planOperation(db, SYSTEM_ACCESS, growVolumeAction, [idOf(p)], { sizeGiB: 3 });
    expect(JSON.stringify(plan.targets[0]!.facts)).toContain('3 GiB already: the filesystem only');
    const again = await runOperation(db, worker.queue, growVolumeAction, { instanceIds: [idOf(p)] }, { sizeGiB: 3 });
    expect(again.op.status, JSON.stringify(again.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    expect(fsTotal(v)).toBeGreaterThan(2.9 * GiB);
    await report();
    expect(await diskRisks(p)).toEqual([]);
  });
});
