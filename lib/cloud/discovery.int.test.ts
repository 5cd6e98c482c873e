// EC2 discovery against the shared lab's moto: the lab's 18 database servers get their cloud identity;
// an instance of a new server is created in the environment its tag names; one terminated, or gone from
// EC2, is marked and kept; an instance that cannot be a server is skipped with the reason.
// Its own instances only are run and terminated (they run no Postgres: the lab front stops nothing).
import { EC2Client, RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, servers } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { startWorker } from '@/lib/ops/worker';
import { waitFor } from '@/lib/lab/proc';
import { discoverEc2, discoveryConfig, type DiscoveryConfig } from './discovery';

let t: TestDb;
let ec2: EC2Client;
const cfg = (): DiscoveryConfig =>
  discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: ['eu-west-1'], tags: t.lab.aws!.discoveryTags }) })!;

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  ec2 = new EC2Client({
    endpoint: t.lab.aws!.endpoint,
    region: t.lab.aws!.region,
    credentials: { accessKeyId: t.lab.aws!.accessKeyId, secretAccessKey: t.lab.aws!.secretAccessKey },
  });
});
afterAll(async () => {
  ec2.destroy();
  await ifAssigned(t)?.close();
});

async function run(tags: Record<string, string>) {
  const r = await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      MinCount: 1,
      MaxCount: 1,
      InstanceType: 'r6i.large',
      Placement: { AvailabilityZone: 'eu-west-1b' },
      TagSpecifications: [
        { ResourceType: 'instance', Tags: Object.entries({ Role: 'PostgreSQL', ...tags }).map(([Key, Value]) => ({ Key, Value })) },
      ],
    }),
  );
  return r.Instances![0]!.InstanceId!;
}

describe('EC2 discovery', () => {
  it('gives the lab servers their cloud identity, found by host name, then by instance id', async () => {
    const first = await discoverEc2(t.db, cfg(), () => ec2);
    expect(first.created).toEqual([]);
    expect(first.updated).toBe(18);
    const rows = await t.db.select().from(servers);
    for (const s of rows.filter((x) => t.lab.instances.some((i) => i.server === x.hostname))) {
      const lab = t.lab.aws!.instances.find((i) => i.server === s.hostname)!;
      expect(s).toMatchObject({
        cloudProvider: 'aws',
        cloudRegion: 'eu-west-1',
        cloudInstanceId: lab.instanceId,
        cloudInstanceType: 'm6i.large',
        cloudAvailabilityZone: lab.availabilityZone,
        cloudArchitecture: 'x86_64',
        cloudState: 'running',
        cloudGoneAt: null,
      });
      expect(s.cloudTags!['pgherd:herd']).toBeTruthy();
    }
    // The PgBouncer server has no EC2 instance: untouched.
    expect(rows.filter((s) => s.cloudInstanceId === null).map((s) => s.hostname)).toEqual([expect.stringMatching(/^pgbouncer-/)]);
    // Renamed in the inventory: still its instance's (found by id, not by name).
    const one = rows.find((s) => s.cloudInstanceId === t.lab.aws!.instances[0]!.instanceId)!;
    await t.db.update(servers).set({ hostname: 'renamed.lab.internal' }).where(eq(servers.id, one.id));
    const again = await discoverEc2(t.db, cfg(), () => ec2);
    expect([again.created, again.gone, again.updated]).toEqual([[], [], 18]);
    await t.db.update(servers).set({ hostname: one.hostname }).where(eq(servers.id, one.id));
  });

  it('creates a new server in its tagged environment (audited), skips what cannot be one, and marks terminated and vanished instances', async () => {
    const fresh = await run({ Name: 'db-new-1.lab.internal', 'pgherd:environment': 'staging', 'pgherd:site': 'dc-west' });
    const nameless = await run({ 'pgherd:environment': 'staging' });
    const nowhere = await run({ Name: 'db-nowhere.lab.internal', 'pgherd:environment': 'qa' });
    try {
      const s1 = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s1.created).toEqual(['db-new-1.lab.internal']);
      expect(s1.skipped).toEqual(
        expect.arrayContaining([
          { instanceId: nameless, reason: 'no Name tag to name its server' },
          { instanceId: nowhere, reason: 'its pgherd:environment tag names no environment (qa)' },
        ]),
      );
      const [created] = await t.db.select().from(servers).where(eq(servers.hostname, 'db-new-1.lab.internal'));
      expect(created).toMatchObject({ cloudInstanceId: fresh, cloudInstanceType: 'r6i.large', site: 'dc-west', cloudState: 'running' });
      expect(created!.address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(
        await t.db.$count(auditEntries, and(eq(auditEntries.action, 'server.discovered'), eq(auditEntries.objectId, String(created!.id)))),
      ).toBe(1);

      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [fresh] }));
      const s2 = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s2.gone).toEqual(['db-new-1.lab.internal']);
      const [terminated] = await t.db.select().from(servers).where(eq(servers.id, created!.id));
      expect(terminated!.cloudState).toBe('terminated');
      expect(terminated!.cloudGoneAt).toBeInstanceOf(Date);
      // Marked once; the next pass keeps the date and reports nothing new.
      const s3 = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s3.gone).toEqual([]);
      const [kept] = await t.db.select().from(servers).where(eq(servers.id, created!.id));
      expect(kept!.cloudGoneAt).toEqual(terminated!.cloudGoneAt);

      // An instance EC2 no longer lists at all (its server names one that is not there): gone, kept.
      await t.db
        .update(servers)
        .set({ cloudInstanceId: 'i-0000000000000dead', cloudState: 'running', cloudGoneAt: null })
        .where(eq(servers.id, created!.id));
      const s4 = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s4.gone).toEqual(['db-new-1.lab.internal']);
      const [vanished] = await t.db.select().from(servers).where(eq(servers.id, created!.id));
      expect([vanished!.cloudState, vanished!.cloudGoneAt instanceof Date]).toEqual(['gone', true]);
    } finally {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [fresh, nameless, nowhere] })).catch(() => {});
    }
  });

  it('moves a server to the live instance that replaced its terminated one; of two live instances of one name, the first keeps it', async () => {
    const old = await run({ Name: 'db-replaced.lab.internal', 'pgherd:environment': 'staging' });
    const twinA = await run({ Name: 'db-twin.lab.internal', 'pgherd:environment': 'staging' });
    const twinB = await run({ Name: 'db-twin.lab.internal', 'pgherd:environment': 'staging' });
    let replacement = '';
    try {
      const s1 = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s1.created).toEqual(['db-replaced.lab.internal', 'db-twin.lab.internal']);
      expect(s1.skipped).toContainEqual({ instanceId: twinB, reason: `server db-twin.lab.internal is already ${twinA}'s` });
      const [twin] = await t.db.select().from(servers).where(eq(servers.hostname, 'db-twin.lab.internal'));
      expect(twin!.cloudInstanceId).toBe(twinA);
      // The host is replaced: the old instance terminated, a new one launched under the same name.
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [old] }));
      replacement = await run({ Name: 'db-replaced.lab.internal', 'pgherd:environment': 'staging' });
      const s2 = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s2.gone).not.toContain('db-replaced.lab.internal');
      const [moved] = await t.db.select().from(servers).where(eq(servers.hostname, 'db-replaced.lab.internal'));
      expect(moved).toMatchObject({ cloudInstanceId: replacement, cloudState: 'running', cloudGoneAt: null });
      // And it stays so: the terminated instance, listed for a while yet, never takes it back by name.
      await discoverEc2(t.db, cfg(), () => ec2);
      const [still] = await t.db.select().from(servers).where(eq(servers.hostname, 'db-replaced.lab.internal'));
      expect(still!.cloudInstanceId).toBe(replacement);
    } finally {
      await ec2
        .send(new TerminateInstancesCommand({ InstanceIds: [old, twinA, twinB, ...(replacement ? [replacement] : [])] }))
        .catch(() => {});
    }
  });

  it('refuses a bad configuration, saying what is wrong', () => {
    expect(() => discoveryConfig({ PGHERD_AWS_DISCOVERY: '{' })).toThrow(/is not JSON/);
    expect(() => discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: ['Mars'], tags: {} }) })).toThrow(
      /regions.0: a region such as eu-west-1; tags: at least one tag/,
    );
    expect(() =>
      discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: ['eu-west-1'], tags: { Role: 'x' }, extra: 1 }) }),
    ).toThrow(/Unrecognized key/);
    expect(discoveryConfig({})).toBeNull();
  });

  it('runs in the worker when configured: at its start, one worker at a time, with the SDK clients the environment points at the lab', async () => {
    await t.db.update(servers).set({ cloudProvider: null, cloudRegion: null, cloudInstanceId: null, cloudState: null });
    process.env.PGHERD_AWS_DISCOVERY = JSON.stringify({ regions: ['eu-west-1'], tags: t.lab.aws!.discoveryTags });
    const w = await startWorker({
      databaseUrl: t.url,
      redisUrl: t.lab.redis!.url,
      sshKeyPath: t.lab.ssh!.privateKeyPath,
      queuePrefix: 'discovery-test',
      refreshEveryMs: 0,
      quiet: true,
    });
    try {
      await waitFor(
        'the worker to discover the lab servers',
        async () => ((await t.db.$count(servers, eq(servers.cloudState, 'running'))) === 18 ? true : undefined),
        20_000,
      );
    } finally {
      delete process.env.PGHERD_AWS_DISCOVERY;
      await w.close();
    }
  });
});
