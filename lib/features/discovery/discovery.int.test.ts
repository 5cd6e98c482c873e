// EC2 discovery against the shared lab's moto: the lab's 18 database servers get their cloud identity;
// an instance of a new server is created in the environment its tag names; one terminated, or gone from
// EC2, is marked and kept; an instance that cannot be a server is skipped with the reason.
// Its own instances only are run and terminated (they run no Postgres: the lab front stops nothing).
import { CreateTagsCommand, DeleteTagsCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, discoveryRuns, environments, herds, instances, servers } from '@/db/schema';
import { awsEnvironmentsSchema } from '@/lib/settings/aws-environments-schema';
import { saveObject } from '@/lib/features/admin/mutations';
import type { Actor } from '@/lib/engine/access';
import { getEditable } from '@/lib/features/admin/registry';
import { labAwsEnvironments } from '@/lib/lab/aws';
import { checkSshAction } from '@/lib/actions/control/check-ssh.action';
import { planOperation } from '@/lib/engine/plan';
import { refusal } from '@/lib/testing/denials';
import { fleetHealth } from '@/lib/features/agents/health';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { parseListParams } from '@/lib/features/admin/list-params';
import { changeList } from '@/lib/features/admin/list-query';
import { getAdmin } from '@/lib/features/admin/registry';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { startWorker } from '@/jobs/start-worker';
import { waitFor } from '@/lib/testing/wait';
import { describeInstancesById } from '@/lib/adapters/aws/ec2';
import { discoverEc2, discoveryConfig, type DiscoveryConfig } from './discovery';
import { discoveryRun, requestDiscovery, runDiscovery } from './discovery-runs';

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

/** The lab's VPC of an environment's members in eu-west-1b (PGHERD_AWS_ENVIRONMENTS maps it there). */
const vpcOf = (environment: string) => t.lab.aws!.vpcs!.find((v) => v.environment === environment && v.availabilityZone === 'eu-west-1b')!;

/** Addresses no lab server has: the lab's VPCs of both environments span one range, as moto allows. */
let spare = 200;
const spareAddress = (environment: string) => vpcOf(environment).cidr.replace(/\.0\/24$/, `.${String(spare++)}`);

/**
 * An instance in `environment`'s VPC (null: moto's default VPC, which is no environment's), at a spare
 * address unless one is given (moto would pick any in the range, another environment's server's too).
 */
async function run(tags: Record<string, string>, environment: string | null = 'staging', privateAddress?: string) {
  privateAddress ??= environment ? spareAddress(environment) : undefined;
  const r = await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      MinCount: 1,
      MaxCount: 1,
      InstanceType: 'r6i.large',
      ...(environment ? { SubnetId: vpcOf(environment).subnetId } : {}),
      ...(privateAddress ? { PrivateIpAddress: privateAddress } : {}),
      Placement: { AvailabilityZone: 'eu-west-1b' },
      TagSpecifications: [
        { ResourceType: 'instance', Tags: Object.entries({ Role: 'PostgreSQL', ...tags }).map(([Key, Value]) => ({ Key, Value })) },
      ],
    }),
  );
  return r.Instances![0]!.InstanceId!;
}

describe('EC2 discovery', () => {
  it('gives the lab servers their cloud identity, found by private address in their environment, then by instance id', async () => {
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
    // The PgBouncer server, the backup host and the scratch servers have no EC2 instance: untouched.
    expect(rows.filter((s) => s.cloudInstanceId === null).map((s) => s.hostname.replace(/-[0-9]+\./, '.'))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^pgbouncer-/), 'backup-prod.lab.internal', 'scratch-prod.lab.internal']),
    );
    expect(rows.filter((s) => s.cloudInstanceId === null).every((s) => /^(pgbouncer|backup|scratch)-/.test(s.hostname))).toBe(true);
    // Renamed in the inventory: still its instance's (found by id, not by name).
    const one = rows.find((s) => s.cloudInstanceId === t.lab.aws!.instances[0]!.instanceId)!;
    await t.db.update(servers).set({ hostname: 'renamed.lab.internal' }).where(eq(servers.id, one.id));
    const again = await discoverEc2(t.db, cfg(), () => ec2);
    expect([again.created, again.gone, again.updated]).toEqual([[], [], 18]);
    await t.db.update(servers).set({ hostname: one.hostname }).where(eq(servers.id, one.id));
  });

  it("creates a new server in its VPC's environment (audited), skips what cannot be one, and marks terminated and vanished instances", async () => {
    const fresh = await run({ Name: 'db-new-1.lab.internal', 'pgherd:environment': 'staging', 'pgherd:site': 'dc-west' });
    const nameless = await run({ 'pgherd:environment': 'staging' });
    const nowhere = await run({ Name: 'db-nowhere.lab.internal', 'pgherd:environment': 'staging' }, null);
    try {
      const s1 = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s1.created).toEqual(['db-new-1.lab.internal']);
      expect(s1.skipped).toEqual(
        expect.arrayContaining([
          { instanceId: nameless, reason: 'no Name tag to name its server' },
          {
            instanceId: nowhere,
            reason: expect.stringMatching(
              /^vpc-\w+, account 123456789012 in eu-west-1 is in no environment PGHERD_AWS_ENVIRONMENTS names$/,
            ),
          },
        ]),
      );
      expect(s1.problems).toEqual([]);
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

  it('moves a server to the instance that replaced its terminated one once the server has its address; of two live instances of one name, the first keeps it', async () => {
    const old = await run({ Name: 'db-replaced.lab.internal', 'pgherd:environment': 'staging' });
    const twinA = await run({ Name: 'db-twin.lab.internal', 'pgherd:environment': 'staging' });
    const twinB = await run({ Name: 'db-twin.lab.internal', 'pgherd:environment': 'staging' });
    let replacement = '';
    try {
      const s1 = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s1.created).toEqual(['db-replaced.lab.internal', 'db-twin.lab.internal']);
      expect(s1.skipped).toContainEqual({
        instanceId: twinB,
        reason: "server db-twin.lab.internal exists and is not this instance's (not its instance id, nor its address in staging)",
      });
      const [twin] = await t.db.select().from(servers).where(eq(servers.hostname, 'db-twin.lab.internal'));
      expect(twin!.cloudInstanceId).toBe(twinA);
      // The host is replaced: the old instance terminated, a new one launched under the same name
      // (at another address: EC2 keeps a terminated instance's for a while). A name binds nothing.
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [old] }));
      replacement = await run({ Name: 'db-replaced.lab.internal', 'pgherd:environment': 'staging' });
      const s2 = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s2.gone).toContain('db-replaced.lab.internal');
      expect(s2.skipped.map((k) => k.instanceId)).toContain(replacement);
      // An admin moves the server to the new host's address: the next pass binds it there.
      const replaced = await describeInstancesById(ec2, 'eu-west-1', [replacement]);
      await t.db.update(servers).set({ address: replaced[0]!.privateAddress! }).where(eq(servers.hostname, 'db-replaced.lab.internal'));
      await discoverEc2(t.db, cfg(), () => ec2);
      const [moved] = await t.db.select().from(servers).where(eq(servers.hostname, 'db-replaced.lab.internal'));
      expect(moved).toMatchObject({ cloudInstanceId: replacement, cloudState: 'running', cloudGoneAt: null });
      // And it stays so: the terminated instance, listed for a while yet, never takes it back.
      await discoverEc2(t.db, cfg(), () => ec2);
      const [still] = await t.db.select().from(servers).where(eq(servers.hostname, 'db-replaced.lab.internal'));
      expect(still!.cloudInstanceId).toBe(replacement);
    } finally {
      await ec2
        .send(new TerminateInstancesCommand({ InstanceIds: [old, twinA, twinB, ...(replacement ? [replacement] : [])] }))
        .catch(() => {});
    }
  });

  it("takes the environment from PGHERD_AWS_ENVIRONMENTS, not from a tag: a staging VPC's instance tagged production makes no production server, and the pass says so", async () => {
    const forged = await run({ Name: 'db-forged.lab.internal', 'pgherd:environment': 'production' });
    try {
      const s = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s.problems).toEqual([
        {
          instanceId: forged,
          problem: expect.stringMatching(
            /^its pgherd:environment tag says production, and PGHERD_AWS_ENVIRONMENTS puts vpc-\w+, .* in staging: the tag is not obeyed$/,
          ),
        },
      ]);
      const [made] = await t.db
        .select({ environment: environments.name })
        .from(servers)
        .innerJoin(environments, eq(environments.id, servers.environmentId))
        .where(eq(servers.hostname, 'db-forged.lab.internal'));
      expect(made!.environment).toBe('staging');
      // The pass as the worker records it says so too.
      await t.db.delete(discoveryRuns);
      await requestDiscovery(t.db, 'alice');
      const summary = await runDiscovery(t.db, cfg(), () => ec2, { scheduled: false });
      expect(summary!.problems!.map((p) => p.instanceId)).toEqual([forged]);
    } finally {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [forged] })).catch(() => {});
    }
  });

  it('never binds by name: a staging instance named as a production server leaves that server alone', async () => {
    const prodServer = t.lab.instances.find((i) => i.environment === 'production')!.server;
    const [before] = await t.db.select().from(servers).where(eq(servers.hostname, prodServer));
    const impostor = await run({ Name: prodServer, 'pgherd:environment': 'production' });
    try {
      const s = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s.skipped).toContainEqual({
        instanceId: impostor,
        reason: `server ${prodServer} exists and is not this instance's (not its instance id, nor its address in staging)`,
      });
      const [after] = await t.db.select().from(servers).where(eq(servers.hostname, prodServer));
      expect([after!.cloudInstanceId, after!.cloudPrivateAddress, after!.environmentId]).toEqual([
        before!.cloudInstanceId,
        before!.cloudPrivateAddress,
        before!.environmentId,
      ]);
      expect(before!.cloudInstanceId).toBe(t.lab.aws!.instances.find((i) => i.server === prodServer)!.instanceId);
    } finally {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [impostor] })).catch(() => {});
    }
  });

  it("makes no server of an instance at another environment's server's address: one host, one environment", async () => {
    const prod = t.lab.instances.find((i) => i.environment === 'production')!;
    // A staging VPC whose range overlaps production's (the lab's do) lets an instance take production's address.
    const shadow = await run({ Name: 'stg-shadow.lab.internal', 'pgherd:environment': 'staging' }, 'staging', prod.address);
    try {
      const s = await discoverEc2(t.db, cfg(), () => ec2);
      expect(s.skipped).toContainEqual({
        instanceId: shadow,
        reason: `${prod.address} is the address of ${prod.server} (production): a host belongs to one environment`,
      });
      expect(await t.db.$count(servers, eq(servers.hostname, 'stg-shadow.lab.internal'))).toBe(0);
    } finally {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [shadow] })).catch(() => {});
    }
  });

  it('holds what it finds where the configuration asks for approval: every action refused until an admin approves', async () => {
    const map = awsEnvironmentsSchema.parse(
      JSON.parse(labAwsEnvironments(t.lab.aws!)).map((e: { environment: string }) => ({ ...e, approve: e.environment === 'staging' })),
    );
    const held = await run({ Name: 'db-held.lab.internal' });
    try {
      const s = await discoverEc2(t.db, cfg(), () => ec2, map);
      expect(s.created).toEqual(['db-held.lab.internal']);
      const [server] = await t.db.select().from(servers).where(eq(servers.hostname, 'db-held.lab.internal'));
      expect(server!.approval).toBe('pending');
      const [herd] = await t.db.select().from(herds).where(eq(herds.environmentId, server!.environmentId)).limit(1);
      const [inst] = await t.db.insert(instances).values({ herdId: herd!.id, serverId: server!.id, port: 5432 }).returning();
      // Even the read-only first contact waits for the approval.
      const plan = () => planOperation(t.db, SYSTEM_ACCESS, checkSshAction, [inst!.id]);
      expect((await plan()).targets[0]).toMatchObject({
        refusalCode: 'pending-approval',
        refused: expect.stringMatching(/^db-held\.lab\.internal was found by EC2 discovery in an environment that asks for approval/),
      });
      // Approving is an admin's act, audited like any change of the server.
      const form = { ...server!, approval: 'approved' };
      const operator: Actor = {
        id: null,
        username: 'stg-op',
        access: {
          userId: null,
          username: 'stg-op',
          superuser: false,
          global: null,
          byEnvironment: new Map([[server!.environmentId, 'operator']]),
        },
      };
      expect(await refusal(saveObject(t.db, getEditable('servers')!, server!.id, form, operator))).toMatch(
        /Changing approval of this server needs the admin role/,
      );
      const admin: Actor = {
        id: null,
        username: 'stg-admin',
        access: { ...operator.access, username: 'stg-admin', byEnvironment: new Map([[server!.environmentId, 'admin']]) },
      };
      expect(await saveObject(t.db, getEditable('servers')!, server!.id, form, admin)).toMatchObject({ ok: true });
      expect((await plan()).targets[0]!.refused ?? null).toBeNull();
      await t.db.delete(instances).where(eq(instances.id, inst!.id));
    } finally {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [held] })).catch(() => {});
    }
  });

  it('copies type and zone to the instances (filtered and counted), and flags a server whose herd tag the agents contradict', async () => {
    await discoverEc2(t.db, cfg(), () => ec2);
    // The instances changelist filters by the copies, and counts them from the kept counts.
    const list = await changeList(
      t.db,
      getAdmin('instances')!,
      parseListParams(getAdmin('instances')!, { zone: 'eu-west-1b' }, SYSTEM_ACCESS),
    );
    const west = t.lab.aws!.instances.filter((i) => i.availabilityZone === 'eu-west-1b').map((i) => i.server);
    const expected = t.lab.instances.filter((i) => west.includes(i.server)).length;
    expect([list.total, expected > 0]).toEqual([expected, true]);
    expect(new Set(list.rows.map((r) => r.zone))).toEqual(new Set(['eu-west-1b']));
    expect(list.facets.find((f) => f.key === 'instanceType')!.options.map((o) => [o.value, o.count])).toEqual([['m6i.large', expected]]);
    expect((await fleetHealth(t.db, null)).tagDisagreements.total).toBe(0);

    // Someone retags one replica's instance into another herd; its agent still reports its own herd's data.
    const lab = t.lab.instances.find((i) => i.role === 'replica')!;
    const ec2Of = t.lab.aws!.instances.find((i) => i.server === lab.server)!;
    const [before] = await t.db.select({ tag: servers.cloudHerdTag }).from(servers).where(eq(servers.hostname, lab.server));
    await ec2.send(new CreateTagsCommand({ Resources: [ec2Of.instanceId], Tags: [{ Key: 'pgherd:herd', Value: `not-${lab.herd}` }] }));
    try {
      await discoverEc2(t.db, cfg(), () => ec2);
      const health = await fleetHealth(t.db, null);
      expect(health.tagDisagreements.rows).toEqual([
        expect.objectContaining({
          hostname: lab.server,
          cloudInstanceId: ec2Of.instanceId,
          taggedHerd: `${lab.environment}/not-${lab.herd}`,
          herd: `${lab.environment}/${lab.herd}`,
        }),
      ]);
      // On its herd's page too, and on no other herd's.
      const [inst] = await t.db
        .select({ herdId: instances.herdId })
        .from(instances)
        .where(eq(instances.id, health.tagDisagreements.rows[0]!.id));
      expect((await fleetHealth(t.db, null, { herdId: inst!.herdId })).tagDisagreements.total).toBe(1);
      expect((await fleetHealth(t.db, null, { herdId: inst!.herdId + 1000 })).tagDisagreements.total).toBe(0);
    } finally {
      await ec2.send(new CreateTagsCommand({ Resources: [ec2Of.instanceId], Tags: [{ Key: 'pgherd:herd', Value: before!.tag! }] }));
    }
    await discoverEc2(t.db, cfg(), () => ec2);
    expect((await fleetHealth(t.db, null)).tagDisagreements.total).toBe(0);

    // Retagged into another environment, the same herd's name: flagged too (the server stays where it is).
    const other = lab.environment === 'production' ? 'staging' : 'production';
    await ec2.send(new CreateTagsCommand({ Resources: [ec2Of.instanceId], Tags: [{ Key: 'pgherd:environment', Value: other }] }));
    try {
      await discoverEc2(t.db, cfg(), () => ec2);
      expect((await fleetHealth(t.db, null)).tagDisagreements.rows).toEqual([
        expect.objectContaining({ hostname: lab.server, taggedHerd: `${other}/${lab.herd}`, herd: `${lab.environment}/${lab.herd}` }),
      ]);
    } finally {
      await ec2.send(
        new CreateTagsCommand({ Resources: [ec2Of.instanceId], Tags: [{ Key: 'pgherd:environment', Value: lab.environment }] }),
      );
    }
    await discoverEc2(t.db, cfg(), () => ec2);
    expect((await fleetHealth(t.db, null)).tagDisagreements.total).toBe(0);

    // A tag deleted while the herd's other members keep theirs: flagged, "?" where the tag was.
    for (const [key, tagged] of [
      ['pgherd:herd', `${lab.environment}/?`],
      ['pgherd:environment', `?/${lab.herd}`],
    ] as const) {
      await ec2.send(new DeleteTagsCommand({ Resources: [ec2Of.instanceId], Tags: [{ Key: key }] }));
      try {
        await discoverEc2(t.db, cfg(), () => ec2);
        expect((await fleetHealth(t.db, null)).tagDisagreements.rows, key).toEqual([
          expect.objectContaining({ hostname: lab.server, taggedHerd: tagged, herd: `${lab.environment}/${lab.herd}` }),
        ]);
      } finally {
        const value = key === 'pgherd:herd' ? before!.tag! : lab.environment;
        await ec2.send(new CreateTagsCommand({ Resources: [ec2Of.instanceId], Tags: [{ Key: key, Value: value }] }));
      }
    }
    await discoverEc2(t.db, cfg(), () => ec2);
    expect((await fleetHealth(t.db, null)).tagDisagreements.total).toBe(0);

    // A fleet that does not tag herds at all: nothing to flag.
    const all = t.lab.aws!.instances.map((i) => i.instanceId);
    await ec2.send(new DeleteTagsCommand({ Resources: all, Tags: [{ Key: 'pgherd:herd' }] }));
    try {
      await discoverEc2(t.db, cfg(), () => ec2);
      expect((await fleetHealth(t.db, null)).tagDisagreements.total).toBe(0);
    } finally {
      for (const x of t.lab.aws!.instances) {
        const herdOf = t.lab.instances.find((i) => i.server === x.server)!.herd;
        await ec2.send(new CreateTagsCommand({ Resources: [x.instanceId], Tags: [{ Key: 'pgherd:herd', Value: herdOf }] }));
      }
    }
    await discoverEc2(t.db, cfg(), () => ec2);
    expect((await fleetHealth(t.db, null)).tagDisagreements.total).toBe(0);
  });

  it('records passes asked for: a second ask while one waits adds none; a failing pass says the AWS error and is not lost', async () => {
    await t.db.delete(discoveryRuns);
    const a = await requestDiscovery(t.db, 'alice');
    const b = await requestDiscovery(t.db, 'bob');
    expect([a.created, b.created, b.run.id]).toEqual([true, false, a.run.id]);
    // Nothing reachable there: the pass fails, and the run says why, AWS's error code first.
    const dead = new EC2Client({
      endpoint: 'http://127.0.0.1:9',
      region: 'eu-west-1',
      maxAttempts: 1,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    });
    await expect(runDiscovery(t.db, cfg(), () => dead, { scheduled: false })).rejects.toThrow();
    dead.destroy();
    const failed = await discoveryRun(t.db, a.run.id);
    expect(failed).toMatchObject({ requestedBy: 'alice', error: expect.stringMatching(/ECONNREFUSED/) });
    expect(failed!.finishedAt).toBeInstanceOf(Date);
    // A pass a worker died in (started, never finished) is taken again by the next.
    const c = await requestDiscovery(t.db, 'carol');
    await t.db.update(discoveryRuns).set({ startedAt: new Date() }).where(eq(discoveryRuns.id, c.run.id));
    const summary = await runDiscovery(t.db, cfg(), () => ec2, { scheduled: false });
    expect(summary!.found).toBeGreaterThanOrEqual(18);
    expect(await discoveryRun(t.db, c.run.id)).toMatchObject({ error: null, summary: { found: summary!.found } });
    // Nothing asked for and not the schedule: no pass.
    expect(await runDiscovery(t.db, cfg(), () => ec2, { scheduled: false })).toBeNull();
  });

  it('refuses a bad configuration, saying what is wrong', () => {
    expect(() => discoveryConfig({ PGHERD_AWS_DISCOVERY: '{' })).toThrow(/is not JSON/);
    expect(() => discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: ['Mars'], tags: {} }) })).toThrow(
      /regions.0: a region such as eu-west-1; tags: at least one tag/,
    );
    expect(() =>
      discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: ['eu-west-1'], tags: { Role: 'x' }, extra: 1 }) }),
    ).toThrow(/extra/);
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
      // Not the reconcile tick's look for asked-for passes: the notification must wake the worker.
      reconcileEveryMs: 600_000,
      quiet: true,
    });
    try {
      await waitFor(
        'the worker to discover the lab servers',
        async () => ((await t.db.$count(servers, eq(servers.cloudState, 'running'))) === 18 ? true : undefined),
        20_000,
      );
      // Asked for on demand (the API's and the button's way): the worker hears of it and runs it.
      await t.db.execute(sql`UPDATE servers SET cloud_state = NULL`);
      const { run } = await requestDiscovery(t.db, 'alice');
      const done = await waitFor(
        'the asked-for pass to finish',
        async () => {
          const r = await discoveryRun(t.db, run.id);
          return r?.finishedAt ? r : undefined;
        },
        20_000,
      );
      expect(done.error).toBeNull();
      expect(done.summary!.updated).toBeGreaterThanOrEqual(18);
      expect(await t.db.$count(servers, eq(servers.cloudState, 'running'))).toBe(18);
    } finally {
      delete process.env.PGHERD_AWS_DISCOVERY;
      await w.close();
    }
  });
});
