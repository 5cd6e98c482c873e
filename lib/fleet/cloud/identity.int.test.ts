// A server's EC2 instance id is what EC2 confirms, on a lab of its own (production and staging, one
// herd each, on 127.0.12.x): a staging admin who aims a staging server at production's instance is
// refused at the form, at the plan, and at the step that would stop it; production's instance still
// runs in moto and its Postgres still answers. Power off really stops hosts here, hence its own lab.
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { environments, instances, servers } from '@/db/schema';
import { awsSettings, ec2Client } from '@/lib/adapters/aws/config';
import { describeInstancesById } from '@/lib/adapters/aws/ec2';
import type { Access } from '@/lib/engine/access';
import { saveObject } from '@/lib/features/admin/mutations';
import type { Actor } from '@/lib/engine/access';
import { getEditable } from '@/lib/features/admin/registry';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { powerOffAction } from '@/lib/actions/cloud/power.action';
import { planOperation } from '@/lib/engine/plan';
import { startWorker } from '@/jobs/start-worker';
import { refusal } from '@/lib/testing/denials';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { openQueue, submitPlanned, waitForOperation } from '@/lib/testing/operations';
import { discoverEc2, discoveryConfig } from '@/lib/features/discovery/discovery';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-identity-${process.pid}.json`);
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let closeWorker: (() => Promise<void>) | null = null;
let queue: ReturnType<typeof openQueue>['queue'];
/** Run once a target is claimed, before its first step: what a test does between the plan and the run. */
let meanwhile: () => Promise<void> = async () => {};
const envId = new Map<string, number>();

beforeAll(async () => {
  lab = await startLab({
    file: LAB_FILE,
    fleet: { environments: ['production', 'staging'], herds: ['a'], replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.12' },
    ldap: false,
    pgbouncer: [],
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  for (const e of await db.select().from(environments)) envId.set(e.name, e.id);
  const q = openQueue(lab, 'identity');
  queue = q.queue;
  const w = await startWorker({
    databaseUrl: lab.database.url,
    redisUrl: lab.redis!.url,
    sshKeyPath: lab.ssh!.privateKeyPath,
    concurrency: 2,
    refreshEveryMs: 0,
    queuePrefix: 'identity',
    quiet: true,
    beforeSteps: () => meanwhile(),
  });
  closeDb = () => c.pool.end();
  closeWorker = async () => {
    await w.close();
    await q.close();
  };
}, 180_000);

afterAll(async () => {
  await closeWorker?.();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

const member = (environment: string, role: 'primary' | 'replica') =>
  lab.instances.find((i) => i.environment === environment && i.role === role)!;
const ec2Of = (i: LabInstance) => lab.aws!.instances.find((x) => x.server === i.server)!.instanceId;
const serverOf = async (i: LabInstance) => (await db.select().from(servers).where(eq(servers.hostname, i.server)))[0]!;
const instanceIdOf = async (i: LabInstance) => {
  const s = await serverOf(i);
  return (await db.select({ id: instances.id }).from(instances).where(eq(instances.serverId, s.id)))[0]!.id;
};
const as = (username: string, environment: string, role: 'operator' | 'admin'): Actor => {
  const access: Access = {
    userId: null,
    username,
    superuser: false,
    global: null,
    byEnvironment: new Map([[envId.get(environment)!, role]]),
  };
  return { id: null, username, access };
};
const identity = (instanceId: string | null) => ({
  cloudProvider: instanceId ? 'aws' : null,
  cloudRegion: instanceId ? lab.aws!.region : null,
  cloudInstanceId: instanceId,
});
const ec2State = async (i: LabInstance) =>
  (await describeInstancesById(ec2Client(undefined, awsSettings()), lab.aws!.region, [ec2Of(i)]))[0]!.state;
const answers = async (i: LabInstance) => (await query<{ one: number }>(i.dsn, 'SELECT 1 AS one'))[0]!.one === 1;

describe("a server's EC2 identity", () => {
  it("refuses a staging admin's form that gives a staging server production's instance; its own is saved", async () => {
    const stg = member('staging', 'replica');
    const prod = member('production', 'replica');
    const s = await serverOf(stg);
    const admin = as('stg-admin', 'staging', 'admin');
    const res = await saveObject(db, getEditable('servers')!, s.id, { ...s, ...identity(ec2Of(prod)) }, admin);
    expect(res).toMatchObject({
      ok: false,
      fieldErrors: { cloudInstanceId: expect.stringMatching(/is production's .*in staging: refused/) },
    });
    expect((await serverOf(stg)).cloudInstanceId).toBeNull();
    // Another staging server's instance: the right environment, the wrong address.
    const other = await saveObject(db, getEditable('servers')!, s.id, { ...s, ...identity(ec2Of(member('staging', 'primary'))) }, admin);
    expect(other).toMatchObject({ ok: false, fieldErrors: { cloudInstanceId: expect.stringMatching(/private address is 127\.0\.12\.3/) } });
    // Its own: EC2 confirms it.
    expect(await saveObject(db, getEditable('servers')!, s.id, { ...s, ...identity(ec2Of(stg)) }, admin)).toMatchObject({ ok: true });
    // An operator may not set a cloud identity, even on a server they add.
    const op = as('stg-operator', 'staging', 'operator');
    const added = {
      hostname: 'db-stg-new.lab.internal',
      environmentId: envId.get('staging')!,
      address: '127.0.12.99',
      site: 'dc-east',
      sshPort: 22,
      sshUser: 'postgres',
    };
    const tried = saveObject(db, getEditable('servers')!, null, { ...added, ...identity('i-0fedcba9876543210') }, op);
    expect(await refusal(tried.then((r) => (r.ok ? r : Promise.reject(new Error(JSON.stringify(r))))))).toMatch(
      // sshPort and sshUser are given at their defaults: only the fields that change something are named.
      /Setting hostname, address, cloudProvider, cloudRegion, cloudInstanceId of a new server needs the admin role/,
    );
  });

  it("refuses to power off a staging server whose row names production's instance: at the plan, and at the step when the row changes after it", async () => {
    const stg = member('staging', 'replica');
    const prod = member('production', 'replica');
    const target = await instanceIdOf(stg);
    const operator = as('stg-operator', 'staging', 'operator').access;
    // Written behind the form's back (an older pgherd, a script): the plan asks EC2, not the row.
    await db
      .update(servers)
      .set(identity(ec2Of(prod)))
      .where(eq(servers.hostname, stg.server));
    const plan = await planOperation(db, operator, powerOffAction, [target]);
    expect(plan.targets[0]!.refused).toMatch(/is production's .*in staging: refused/);

    // Planned while the row was right; changed between the plan and the step that stops.
    await db
      .update(servers)
      .set(identity(ec2Of(stg)))
      .where(eq(servers.hostname, stg.server));
    const ok = await planOperation(db, operator, powerOffAction, [target]);
    expect(ok.targets[0]!.refused).toBeFalsy();
    meanwhile = async () => {
      await db
        .update(servers)
        .set(identity(ec2Of(prod)))
        .where(eq(servers.hostname, stg.server));
    };
    try {
      const id = await submitPlanned(db, queue, powerOffAction, { instanceIds: [target] }, {}, ok);
      const run = await waitForOperation(db, id);
      expect(run.targets[0]!.status).not.toBe('succeeded');
      expect(run.steps.map((x) => x.name)).not.toContain('EC2: stop');
      expect([run.targets[0]!.error, ...run.steps.map((x) => x.stderrTail)].join(' ')).toMatch(
        /refused at execution: .* is production's .*in staging: refused/,
      );
    } finally {
      meanwhile = async () => {};
    }
    // Nothing was stopped: production's instance runs and its Postgres answers, and so does staging's.
    expect(await ec2State(prod)).toBe('running');
    expect(await answers(prod)).toBe(true);
    expect(await ec2State(stg)).toBe('running');
    expect(await answers(stg)).toBe(true);
  });

  it("keeps discovery's binding over a hand-entered id", async () => {
    const stg = member('staging', 'replica');
    await db.update(servers).set({ ...identity(null), cloudTags: null });
    const cfg = discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [lab.aws!.region], tags: lab.aws!.discoveryTags }) })!;
    await discoverEc2(db, cfg, (region) => ec2Client(region));
    const s = await serverOf(stg);
    expect(s.cloudInstanceId).toBe(ec2Of(stg));
    const res = await saveObject(
      db,
      getEditable('servers')!,
      s.id,
      { ...s, cloudInstanceId: 'i-0123456789abcdef0' },
      as('stg-admin', 'staging', 'admin'),
    );
    expect(res, JSON.stringify(res)).toMatchObject({
      ok: false,
      fieldErrors: { cloudInstanceId: expect.stringMatching(/EC2 discovery bound .* does not replace it/) },
    });
    expect((await serverOf(stg)).cloudInstanceId).toBe(ec2Of(stg));
  });
});
