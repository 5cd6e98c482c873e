// lib/adapters/aws against the lab's AWS (moto behind the lab front), and the front's promise that EC2 state is
// real for the lab: a stopped EC2 instance's Postgres is down, a started one's is up again, a type
// changes only while stopped, and a test can take a type's capacity away.
// Its own two-member lab (a primary and a replica): stopping their hosts disturbs no other test file.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  ModifyInstanceAttributeCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { waitFor } from '@/lib/testing/wait';
import { awsSettings, ec2Client } from './config';
import { awsErrorText } from './errors';
import { latestSpotPrices } from './ec2-spot';
import {
  describeInstances,
  describeInstancesById,
  describeTypes,
  Ec2StartFailed,
  Ec2WaitTimeout,
  isCapacityOrTypeRefusal,
  setInstanceType,
  startInstance,
  stopInstance,
  tagFilters,
  typesOfferedIn,
} from './ec2';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', 'aws-test.json');
let lab: LabInfo;
const settings = () => awsSettings({ PGHERD_AWS_ENDPOINT: lab.aws!.endpoint, PGHERD_AWS_REGION: lab.aws!.region });
const ec2 = () => ec2Client(undefined, settings());

beforeAll(async () => {
  lab = await startLab({
    file: LAB_FILE,
    fleet: { environments: ['cloud'], herds: ['a'], replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.9' },
    redis: false,
    dns: false,
    ldap: false,
    pgbouncer: [],
  });
  process.env.AWS_ACCESS_KEY_ID = lab.aws!.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = lab.aws!.secretAccessKey;
}, 120_000);
afterAll(async () => {
  await stopLab(LAB_FILE);
});

const replica = () => lab.instances.find((i) => i.role === 'replica')!;
const instanceOf = (server: string) => lab.aws!.instances.find((i) => i.server === server)!.instanceId;
const answers = async (dsn: string) =>
  query(dsn, 'SELECT 1').then(
    () => true,
    () => false,
  );
const capacity = (insufficient: string[], slow: Record<string, number> = {}, lateInsufficient: string[] = []) =>
  writeFileSync(lab.aws!.capacityFile, JSON.stringify({ insufficient, slow, lateInsufficient }));
const quick = { maxWaitSeconds: 60, minDelaySeconds: 1, maxDelaySeconds: 1 };

describe('EC2 through lib/adapters/aws', () => {
  it('finds the lab servers by tag, with their cloud identity', async () => {
    const found = await describeInstances(ec2(), lab.aws!.region, tagFilters(lab.aws!.discoveryTags));
    expect(found.map((i) => i.tags.Name).sort()).toEqual(lab.instances.map((i) => i.server).sort());
    for (const i of found) {
      expect(i).toMatchObject({ region: 'eu-west-1', instanceType: 'm6i.large', architecture: 'x86_64', state: 'running' });
      const site = lab.instances.find((x) => x.server === i.tags.Name)!.site;
      expect(i.availabilityZone).toBe(site === 'dc-east' ? 'eu-west-1a' : 'eu-west-1b');
      expect(i.tags['pgherd:herd']).toBe('a');
    }
    expect(await describeInstances(ec2(), 'eu-west-1', tagFilters({ Role: 'Nothing' }))).toEqual([]);
  });

  it('reads the type catalogue and the types offered in a zone', async () => {
    const [big, arm] = await describeTypes(ec2(), ['m6i.xlarge', 'm7g.large']);
    expect(big).toMatchObject({ name: 'm6i.xlarge', vcpus: 4, memoryGiB: 16, architectures: ['x86_64'], burstable: false });
    expect(arm).toMatchObject({ name: 'm7g.large', architectures: ['arm64'] });
    const offered = await typesOfferedIn(ec2(), 'eu-west-1a');
    expect(offered.has('m6i.xlarge')).toBe(true);
    expect(offered.size).toBeGreaterThan(100);
  });
});

describe('spot prices', () => {
  it('reads the latest spot price of each type asked for in a zone, and nothing for a type EC2 does not know', async () => {
    const prices = await latestSpotPrices(ec2(), 'eu-west-1a', ['m6i.large', 'r6i.large', 'nonexistent.large']);
    for (const t of ['m6i.large', 'r6i.large']) {
      const p = prices.get(t);
      expect(p, t).toBeDefined();
      expect(p!.perHour).toBeGreaterThan(0);
      expect(p!.availabilityZone).toBe('eu-west-1a');
    }
    expect(prices.has('nonexistent.large')).toBe(false);
    expect((await latestSpotPrices(ec2(), 'eu-west-1a', [])).size).toBe(0);
  });
});

describe("the lab's EC2 is real for its Postgres", () => {
  it('refuses a type change while running; a stop takes Postgres down; capacity can be taken away; a start brings it back', async () => {
    const r = replica();
    const id = instanceOf(r.server);
    const c = ec2();
    // AWS refuses to retype a running instance (moto alone would accept it).
    const running = await c
      .send(new ModifyInstanceAttributeCommand({ InstanceId: id, InstanceType: { Value: 'm6i.xlarge' } }))
      .catch((e: unknown) => e);
    expect(awsErrorText(running)).toMatch(/^IncorrectInstanceState: /);
    expect((await describeInstancesById(c, 'eu-west-1', [id]))[0]!.instanceType).toBe('m6i.large');
    expect(await answers(r.dsn)).toBe(true);

    await c.send(new StopInstancesCommand({ InstanceIds: [id] }));
    await waitUntilInstanceStopped({ client: c, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { InstanceIds: [id] });
    expect(await answers(r.dsn)).toBe(false); // its host is down
    // The primary's host is untouched.
    expect(await answers(lab.instances.find((i) => i.role === 'primary')!.dsn)).toBe(true);

    await c.send(new ModifyInstanceAttributeCommand({ InstanceId: id, InstanceType: { Value: 'm6i.xlarge' } }));
    capacity(['m6i.xlarge@eu-west-1b']);
    const refused = await c.send(new StartInstancesCommand({ InstanceIds: [id] })).catch((e: unknown) => e);
    expect(awsErrorText(refused)).toMatch(/^InsufficientInstanceCapacity: .*m6i\.xlarge/);
    expect((await describeInstancesById(c, 'eu-west-1', [id]))[0]!.state).toBe('stopped');
    expect(await answers(r.dsn)).toBe(false);

    capacity([]);
    await c.send(new StartInstancesCommand({ InstanceIds: [id] }));
    await waitUntilInstanceRunning({ client: c, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { InstanceIds: [id] });
    expect((await describeInstancesById(c, 'eu-west-1', [id]))[0]).toMatchObject({ state: 'running', instanceType: 'm6i.xlarge' });
    // Its Postgres comes up with the host, and streams from the primary again.
    await waitFor('the replica after its host started', async () => ((await answers(r.dsn)) ? true : undefined), 30_000);
    const [row] = await query<{ s: string }>(r.dsn, 'SELECT status AS s FROM pg_stat_wal_receiver');
    expect(row?.s).toBe('streaming');
  });
});

describe('stop, retype and start through lib/adapters/aws, every wait bounded', () => {
  it('stops and starts with the waiters; a capacity refusal is one to fall back from; a slow boot ends the wait at its deadline', async () => {
    const r = replica();
    const id = instanceOf(r.server);
    const c = ec2();
    await stopInstance(c, id, quick);
    expect((await describeInstancesById(c, 'eu-west-1', [id]))[0]!.state).toBe('stopped');
    expect(await answers(r.dsn)).toBe(false);
    await setInstanceType(c, id, 'r6i.large');
    capacity(['r6i.large']);
    const refused = await startInstance(c, id, quick).catch((e: unknown) => e);
    expect(isCapacityOrTypeRefusal(refused)).toBe(true);
    expect(isCapacityOrTypeRefusal(new Error('ECONNREFUSED'))).toBe(false);

    // Accepted, pending for 3 s, then stopped again for want of capacity: the start ends when EC2 says
    // stopped, with its reason, as a capacity refusal (the SDK's waiter would wait out all 60 s).
    capacity([], { [id]: 3 }, ['r6i.large']);
    const t1 = Date.now();
    const lateNo = await startInstance(c, id, quick).catch((e: unknown) => e);
    expect(lateNo).toBeInstanceOf(Ec2StartFailed);
    expect((lateNo as Error).message).toBe(
      `${id} did not start: EC2 says stopped (Server.InsufficientInstanceCapacity: Insufficient capacity.)`,
    );
    expect(isCapacityOrTypeRefusal(lateNo)).toBe(true);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(3000);
    expect(Date.now() - t1).toBeLessThan(20_000);
    expect((await describeInstancesById(c, 'eu-west-1', [id]))[0]!.state).toBe('stopped');
    expect(await answers(r.dsn)).toBe(false);

    // The host boots slowly: EC2 says pending for 20 s; a wait of 3 s ends, saying so, and the host still boots.
    capacity([], { [id]: 20 });
    const t0 = Date.now();
    const late = await startInstance(c, id, { maxWaitSeconds: 3, minDelaySeconds: 1, maxDelaySeconds: 1 }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(Ec2WaitTimeout);
    expect((late as Error).message).toBe(`${id} was not running within 3 s`);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await describeInstancesById(c, 'eu-west-1', [id]))[0]!.state).toBe('pending');
    capacity([]);
    await waitFor('the slow host to boot', async () => ((await answers(r.dsn)) ? true : undefined), 40_000);
    expect((await describeInstancesById(c, 'eu-west-1', [id]))[0]).toMatchObject({ state: 'running', instanceType: 'r6i.large' });
  }, 90_000);
});
