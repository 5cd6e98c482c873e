// RDS beside EC2, on a lab of its own: environment "rd" has an EC2 herd (alpha, 127.0.80.x) and an RDS herd
// (reports: a source and two read replicas, DB instances in moto, each a real lab Postgres on 127.0.79.x
// that the lab's AWS front restarts, stops and promotes as RDS would). Discovery makes the herd; the
// refresh observes it over Postgres at RDS's endpoints; actions that need a shell are refused; Resize
// changes a replica's class through the RDS API, drained first, with the real outcome checked: the class
// RDS says, the Postgres restarted and streaming, the read name back, the writer's commits all there.
import { getAction } from '@/lib/actions/registry';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  AddTagsToResourceCommand,
  CreateDBInstanceCommand,
  DescribeDBInstancesCommand,
  CreateDBParameterGroupCommand,
  DescribeDBParametersCommand,
  ModifyDBInstanceCommand,
  ModifyDBParameterGroupCommand,
  PromoteReadReplicaCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { cloudIdentityRules } from '@/lib/features/admin/cloud-identity-checks';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { auditEntries, dnsRecords, environments, herds, instances, ruleRuns, rules, servers, users } from '@/db/schema';
import { rdsClient } from '@/lib/adapters/aws/config';
import { describeRds } from '@/lib/adapters/aws/rds';
import { lookup } from '@/lib/adapters/dns/rfc2136';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import type { AnyAction } from '@/lib/engine/define-action';
import { discoveryConfig } from '@/lib/features/discovery/discovery';
import { discoverRds } from '@/lib/features/discovery/rds-discovery';
import { refreshInstance } from '@/lib/fleet/record-observation';
import { refreshShare } from '@/lib/fleet/refresh-share';
import { settingsPass } from '@/lib/fleet/settings/drift-pass';
import { forgetApiPrices } from '@/lib/fleet/cloud/prices';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { PROJECT_ROOT, startLab, stopLab, writeNameOf, type LabInfo, type LabRds } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { runOperation, startTestWorker, submitPlanned, waitForOperation, type TestWorker } from '@/lib/testing/operations';
import { startReconnectingWriter } from '@/lib/testing/writer';
import { resizeAction } from '@/lib/actions/cloud/resize.action';
import { resizeHerdAction } from '@/lib/actions/cloud/resize-herd.action';
import { restartAction } from '@/lib/actions/control/restart.action';
import { stopAction } from '@/lib/actions/control/stop.action';
import { rebuildAction } from '@/lib/actions/topology/rebuild.action';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { refreshDnsAction } from '@/lib/actions/topology/refresh-dns.action';
import { addReplicaAction } from '@/lib/actions/grow/add-replica.action';
import { drFailoverAction } from '@/lib/actions/topology/dr-failover.action';
import { crash } from '@/lib/lab/faults';
import { powerOffAction, powerOnAction } from '@/lib/actions/cloud/power.action';
import { applySettingsAction } from '@/lib/actions/parameters/apply-settings.action';
import { rdsGroupsView } from '@/lib/features/settings/rds-groups-view';
import { loadAccess, type Actor } from '@/lib/engine/access';
import { fireRequested } from '@/lib/features/rules/fire';
import { ruleBody } from '@/lib/features/rules/rule-body';
import { createRule, requestRun } from '@/lib/features/rules/rules';
import { waitFor } from '@/lib/testing/wait';
import { applyObjectsAction } from '@/lib/actions/objects/apply-objects.action';
import { rotateCredentialsAction } from '@/lib/actions/objects/rotate-credentials.action';
import { secretsClient } from '@/lib/adapters/aws/config';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { objectsPass } from '@/lib/fleet/objects/objects-pass';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-rds-${process.pid}.json`);
const ENV = 'rd';
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker | null = null;
let herd: LabRds;
let solo: LabRds['members'][number];
const ids = new Map<string, number>();
let herdId: number;

const cfg = () =>
  discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [lab.aws!.region], tags: lab.aws!.discoveryTags, rds: true }) })!;
const discover = () => discoverRds(db, cfg(), (region) => rdsClient(region));
const member = (k: number) => herd.members[k]!;
const url = (m: { address: string; port: number }) => `postgres://postgres@${m.address}:${String(m.port)}/postgres`;
const startedAt = async (m: { address: string; port: number }) =>
  (await query<{ t: Date }>(url(m), 'SELECT pg_postmaster_start_time() AS t'))[0]!.t.getTime();
const streaming = async (m: { address: string; port: number }) =>
  (await query<{ s: string }>(url(m), 'SELECT status AS s FROM pg_stat_wal_receiver').catch(() => []))[0]?.s ?? 'not streaming';
const rds = () =>
  new RDSClient({ endpoint: lab.aws!.endpoint, region: lab.aws!.region, credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' } });
const classOf = async (identifier: string) => (await describeRds(rdsClient(lab.aws!.region), lab.aws!.region, identifier))!;
const faults = (rdsFaults: Record<string, unknown>) =>
  writeFileSync(lab.aws!.capacityFile, JSON.stringify({ insufficient: [], rds: rdsFaults }));
const readName = (k: number) => `${member(k).identifier}-ro.${ENV}.db.${lab.dns!.zone}`;
const resolves = async (k: number) => (await lookup({ host: lab.dns!.server, port: lab.dns!.port }, readName(k), 'A'))[0];
const plan = (action: AnyAction, targetIds: number[], params: Record<string, unknown> = {}) =>
  planOperation(db, SYSTEM_ACCESS, action, targetIds, params);
const run = (action: AnyAction, targetIds: number[], params: Record<string, unknown>) =>
  runOperation(db, worker!.queue, action, { instanceIds: targetIds }, params, { username: 'rds-test', timeoutMs: 240_000 });
const stepsOf = (r: { steps: { name: string; status: string; error?: string | null; stderrTail: string; stdoutTail?: string }[] }) =>
  JSON.stringify(r.steps.map((s) => [s.name, s.status, s.error ?? '', s.stderrTail.slice(-300)]));

beforeAll(async () => {
  lab = await startLab({
    file: LAB_FILE,
    fleet: { environments: [ENV], herds: ['alpha'], replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.80' },
    ldap: false,
    backup: false,
    pgbouncer: [],
    rds: [
      { environment: ENV, herd: 'reports', replicas: 2, subnet: '127.0.79' },
      { environment: ENV, herd: 'solo', replicas: 0, subnet: '127.0.79', multiAz: true },
    ],
  });
  herd = lab.rds![0]!;
  solo = lab.rds![1]!.members[0]!;
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  worker = await startTestWorker(lab, 'rds', 4);
}, 180_000);

afterAll(async () => {
  await worker?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

describe('the lab', () => {
  it("RDS's endpoints are the lab's Postgres: the source takes writes, its replicas stream from it", async () => {
    const seen = (await rds().send(new DescribeDBInstancesCommand({}))).DBInstances ?? [];
    for (const m of herd.members) {
      const d = seen.find((x) => x.DBInstanceIdentifier === m.identifier);
      expect(d).toMatchObject({ Engine: 'postgres', DBInstanceStatus: 'available', Endpoint: { Address: m.address, Port: m.port } });
    }
    expect(seen.find((x) => x.DBInstanceIdentifier === member(1).identifier)?.ReadReplicaSourceDBInstanceIdentifier).toBe(
      member(0).identifier,
    );
    expect((await query<{ r: boolean }>(url(member(0)), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    expect(await streaming(member(1))).toBe('streaming');
    expect(await streaming(member(2))).toBe('streaming');
  });
});

describe('discovery', () => {
  it('makes the source and its read replicas one herd run by RDS, in the environment its VPC is mapped to', async () => {
    const s = await discover();
    expect(s.skipped).toEqual([]);
    expect(s.herds.sort()).toEqual([`${ENV}/reports`, `${ENV}/solo`]);
    expect(s.created.sort()).toEqual([...herd.members.map((m) => m.identifier), solo.identifier].sort());
    const [h] = await db.select().from(herds).where(eq(herds.name, 'reports'));
    expect(h).toMatchObject({ controlDriver: 'rds', pgVersion: 15, defaultPort: member(0).port });
    herdId = h!.id;
    const rows = await db
      .select({
        id: instances.id,
        host: servers.hostname,
        address: servers.address,
        role: instances.role,
        upstream: instances.upstreamInstanceId,
        cls: servers.cloudInstanceType,
        provider: servers.cloudProvider,
        details: servers.cloudDetails,
        env: environments.name,
      })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .innerJoin(environments, eq(environments.id, servers.environmentId))
      .where(eq(instances.herdId, herdId));
    for (const r of rows) ids.set(r.host, r.id);
    expect(rows).toHaveLength(3);
    const source = rows.find((r) => r.host === member(0).identifier)!;
    expect(source).toMatchObject({
      role: 'primary',
      upstream: null,
      cls: 'db.m6i.large',
      provider: 'rds',
      address: member(0).address,
      env: ENV,
    });
    expect(source.details).toMatchObject({
      engineVersion: '15.8',
      allocatedStorageGiB: 100,
      multiAz: false,
      endpoint: `${member(0).address}:${String(member(0).port)}`,
    });
    for (const k of [1, 2])
      expect(rows.find((r) => r.host === member(k).identifier)).toMatchObject({
        role: 'replica',
        upstream: source.id,
        address: member(k).address,
      });
    // A second pass finds them all known.
    const again = await discover();
    expect(again).toMatchObject({ created: [], herds: [], updated: 4, skipped: [] });
    const [so] = await db
      .select({ id: instances.id })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .where(eq(servers.hostname, solo.identifier));
    ids.set(solo.identifier, so!.id);
    // Read names for the replicas, as an admin adds them (A records, each matched to its instance).
    for (const k of [1, 2])
      await db.insert(dnsRecords).values({
        herdId,
        name: readName(k),
        type: 'A',
        zone: lab.dns!.zone,
        provider: 'rfc2136',
        match: 'instance',
        matchInstanceId: ids.get(member(k).identifier)!,
        ttl: 1,
      });
    await db.insert(dnsRecords).values({
      herdId,
      name: writeNameOf(ENV, 'reports', lab.dns!.zone),
      type: 'A',
      zone: lab.dns!.zone,
      provider: 'rfc2136',
      match: 'role',
      matchRole: 'primary',
      ttl: 1,
    });
    // Refresh DNS (DNS only: allowed on a herd RDS runs) puts them in the zone.
    const r = await runOperation(db, worker!.queue, refreshDnsAction, { herdIds: [herdId] }, {}, { username: 'rds-test' });
    expect(r.op.status, stepsOf(r)).toBe('succeeded');
    expect(await resolves(1)).toBe(member(1).address);
    expect(await resolves(2)).toBe(member(2).address);
  });

  it('reports a tag that names another environment, obeys the mapping, and skips a DB instance outside every mapped VPC', async () => {
    const arn = (await rds().send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: member(2).identifier }))).DBInstances![0]!
      .DBInstanceArn!;
    await rds().send(new AddTagsToResourceCommand({ ResourceName: arn, Tags: [{ Key: 'pgherd:environment', Value: 'production' }] }));
    // In moto's default VPC, which PGHERD_AWS_ENVIRONMENTS gives to no environment.
    await rds().send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: 'stray',
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        AllocatedStorage: 20,
        MasterUsername: 'postgres',
        MasterUserPassword: 'x'.repeat(12),
      }),
    );
    const s = await discover();
    expect(s.problems).toEqual([
      { instanceId: member(2).identifier, problem: expect.stringMatching(/tag says production.*in rd: the tag is not obeyed/) },
    ]);
    expect(s.skipped).toEqual([
      { instanceId: 'stray', reason: expect.stringMatching(/is in no environment PGHERD_AWS_ENVIRONMENTS names/) },
    ]);
    const [still] = await db
      .select({ env: servers.environmentId })
      .from(servers)
      .where(eq(servers.hostname, member(2).identifier));
    const [rd] = await db.select({ id: environments.id }).from(environments).where(eq(environments.name, ENV));
    expect(still!.env).toBe(rd!.id);
    expect(await db.select().from(servers).where(eq(servers.hostname, 'stray'))).toEqual([]);
  });

  it("the worker's shared refresh observes the RDS herd like any herd", async () => {
    await db.update(instances).set({ observedRole: null, lastObservedAt: null }).where(eq(instances.herdId, herdId));
    await db.execute(sql`UPDATE herds SET observe_due_at = '-infinity'`);
    const share = refreshShare(db, { holder: 'rds-test', intervalMs: 60_000 });
    try {
      await share.round();
    } finally {
      share.close();
    }
    const rows = await db
      .select({ host: servers.hostname, role: instances.observedRole, at: instances.lastObservedAt })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .where(eq(instances.herdId, herdId));
    expect(rows.map((r) => [r.host, r.role, r.at !== null]).sort()).toEqual(
      herd.members.map((m) => [m.identifier, m.role === 'primary' ? 'primary' : 'replica', true]).sort(),
    );
  });

  it('the refresh observes each member over Postgres at its endpoint: role, state, lag', async () => {
    const refs = await loadInstanceRefs(db, [...ids.values()]);
    for (const r of refs) await refreshInstance(db, r.id, r);
    const rows = await db
      .select({
        host: servers.hostname,
        role: instances.observedRole,
        state: instances.state,
        lag: instances.lagBytes,
        v: instances.serverVersionNum,
      })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .where(eq(instances.herdId, herdId));
    expect(rows.find((r) => r.host === member(0).identifier)).toMatchObject({ role: 'primary', state: 'running' });
    for (const k of [1, 2])
      expect(rows.find((r) => r.host === member(k).identifier)).toMatchObject({
        role: 'replica',
        state: 'running',
        lag: expect.any(Number),
      });
    expect(rows.every((r) => (r.v ?? 0) >= 150000)).toBe(true);
  });
});

describe('fleet objects on RDS', () => {
  it('roles and databases are applied through SQL as the master user; pg_hba is refused with the reason, nothing written', async () => {
    const source = member(0);
    const objects = 'role rd_app_owner\nrole rd_app login in=rd_app_owner\ndatabase rd_app owner=rd_app_owner connect=rd_app';
    await db
      .update(herds)
      .set({ objectOverrides: `${objects}\nhba hostssl all all 0.0.0.0/0 reject` })
      .where(eq(herds.id, herdId));
    await objectsPass(db);
    const rules = async () =>
      (
        await query<{ r: string }>(
          url(source),
          "SELECT string_agg(concat_ws(' ', type, database, user_name, address, auth_method), '; ') AS r FROM pg_hba_file_rules",
        )
      )[0]?.r;
    const hbaBefore = await rules();
    const plan = (await planOperation(db, SYSTEM_ACCESS, applyObjectsAction, [herdId], {})).targets[0];
    expect(plan?.refused).toBeUndefined();
    expect(plan?.warnings.join(' ')).toMatch(
      /its access rules \(pg_hba lines\) are not written: RDS has no pg_hba file: who may connect to an RDS instance is its security groups/,
    );
    expect(plan?.steps.join(' ')).not.toMatch(/pg_hba/);
    const r = await runOperation(
      db,
      worker!.queue,
      applyObjectsAction,
      { herdIds: [herdId] },
      {},
      { username: 'dba-test', timeoutMs: 120_000 },
    );
    expect(r.op.status, JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-300)]))).toBe('succeeded');
    const [row] = await query<{ owner: string; member: boolean }>(
      url(source),
      "SELECT pg_get_userbyid(datdba)::text AS owner, pg_has_role('rd_app', 'rd_app_owner', 'MEMBER') AS member FROM pg_database WHERE datname = 'rd_app'",
    );
    expect(row).toEqual({ owner: 'rd_app_owner', member: true });
    expect(await rules()).toBe(hbaBefore);
    // Its declared lines are not drift where there is no file to write them to.
    await objectsPass(db);
    expect(
      (await db.execute<{ d: number }>(sql`SELECT objects_drift AS d FROM instances WHERE herd_id = ${herdId} AND role = 'primary'`))
        .rows[0]?.d,
    ).toBe(0);
    // A replica has them too: RDS replicates them as Postgres does.
    await waitFor(
      'the replica to have the role',
      async () =>
        (await query<{ n: number }>(url(member(1)), "SELECT count(*)::int AS n FROM pg_roles WHERE rolname = 'rd_app'"))[0]?.n === 1 ||
        undefined,
    );
    await db.update(herds).set({ objectOverrides: '' }).where(eq(herds.id, herdId));
  });

  it("rotates a login through AWS Secrets Manager: the secret names the user whose SCRAM verifier is its password's; the old one expires", async () => {
    const source = member(0);
    await db
      .update(herds)
      .set({ objectOverrides: 'rotate rd_rw users=rd_rw_a,rd_rw_b secret=aws:pgherd/{environment}/{herd}/rd_rw grace=1h' })
      .where(eq(herds.id, herdId));
    await objectsPass(db);
    const run = async (action: AnyAction) => {
      const r = await runOperation(db, worker!.queue, action, { herdIds: [herdId] }, {}, { username: 'dba-test', timeoutMs: 120_000 });
      expect(r.op.status, JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-300)]))).toBe('succeeded');
    };
    await run(applyObjectsAction);
    await objectsPass(db);
    const [h] = await db.select({ name: herds.name }).from(herds).where(eq(herds.id, herdId));
    const secretName = `pgherd/${ENV}/${h!.name}/rd_rw`;
    const secret = async () =>
      JSON.parse((await secretsClient(lab.aws!.region).send(new GetSecretValueCommand({ SecretId: secretName }))).SecretString ?? '{}') as {
        username: string;
        password: string;
      };
    await run(rotateCredentialsAction);
    expect((await secret()).username).toBe('rd_rw_a');
    await run(rotateCredentialsAction);
    const now = await secret();
    expect(now.username).toBe('rd_rw_b');
    const [b] = await query<{ p: string }>(url(source), "SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'rd_rw_b'");
    // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>: the StoredKey is the secret's password's.
    const [, iter = '', salt = '', stored = ''] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):/.exec(b?.p ?? '') ?? [];
    const salted = pbkdf2Sync(now.password, Buffer.from(salt, 'base64'), Number(iter), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    expect(createHash('sha256').update(clientKey).digest('base64')).toBe(stored);
    const [a] = await query<{ until: Date | null }>(url(source), "SELECT rolvaliduntil AS until FROM pg_roles WHERE rolname = 'rd_rw_a'");
    expect(a?.until?.getTime() ?? Infinity).toBeLessThan(Date.now() + 2 * 3600_000);
    await db.update(herds).set({ objectOverrides: '' }).where(eq(herds.id, herdId));
  });
});

describe('what RDS gives no shell for', () => {
  it('refuses pg_ctl, SSH and rebuild actions on an RDS member, and a herd switchover or resize, saying why', async () => {
    const replica = ids.get(member(1).identifier)!;
    for (const action of [stopAction, rebuildAction] as AnyAction[]) {
      const p = await plan(action, [replica]);
      expect(p.targets[0], action.name).toMatchObject({
        refused: expect.stringMatching(/^RDS runs this herd: pgherd acts on its members through the RDS API only/),
      });
    }
    for (const action of [switchoverAction, resizeHerdAction] as AnyAction[]) {
      const p = await plan(action, [herdId], action === resizeHerdAction ? { instanceType: 'db.m6i.xlarge' } : {});
      expect(p.targets[0], action.name).toMatchObject({ refused: expect.stringMatching(/^RDS runs this herd/) });
    }
    // No host key is pinned, and none is asked for: RDS is reached over TLS at its endpoint, never SSH.
    const p = await plan(resizeAction, [replica], { instanceType: 'db.m6i.xlarge' });
    expect(p.targets[0]!.refused).toBeUndefined();
  });

  it("refuses resizing the herd's source, a DB instance RDS does not confirm as the server's, and one that is not available", async () => {
    const source = ids.get(member(0).identifier)!;
    expect((await plan(resizeAction, [source], { instanceType: 'db.m6i.xlarge' })).targets[0]!.refused).toMatch(
      /its herd's source \(it takes the writes\)/,
    );
    const replica = ids.get(member(1).identifier)!;
    // The row aimed at another member's endpoint (an edit behind pgherd's back): RDS says otherwise.
    await db
      .update(servers)
      .set({ address: member(2).address })
      .where(eq(servers.hostname, member(1).identifier));
    try {
      expect((await plan(resizeAction, [replica], { instanceType: 'db.m6i.xlarge' })).targets[0]!.refused).toMatch(
        new RegExp(`RDS says ${member(1).identifier} answers at ${member(1).address.replace(/\./g, '\\.')}.*not this server's DB instance`),
      );
    } finally {
      await db
        .update(servers)
        .set({ address: member(1).address })
        .where(eq(servers.hostname, member(1).identifier));
    }
    faults({ storageFull: [member(1).identifier] });
    try {
      expect((await plan(resizeAction, [replica], { instanceType: 'db.m6i.xlarge' })).targets[0]!.refused).toMatch(
        /RDS says .* is storage-full/,
      );
    } finally {
      faults({});
    }
    expect((await plan(resizeAction, [replica], { instanceType: 'db.nope.large' })).targets[0]!.refused).toMatch(
      /db\.nope\.large is not an RDS class for PostgreSQL/,
    );
  });
});

describe('resize through the RDS API', () => {
  it("prices RDS classes from the Price List API's AmazonRDS offers when PGHERD_PRICE_SOURCE=aws", async () => {
    process.env.PGHERD_PRICE_SOURCE = 'aws';
    forgetApiPrices();
    try {
      const p = await plan(resizeAction, [ids.get(member(1).identifier)!], { instanceType: 'db.m6i.xlarge' });
      const facts = Object.fromEntries((p.targets[0]!.facts ?? []).map((f) => [f.label, f.value]));
      expect(facts.Prices).toMatch(/^the AWS Price List Query API/);
      expect(facts['Target class']).toMatch(/^db\.m6i\.xlarge: 4 vCPU, 16 GiB, \$0\.3969\/h/);
    } finally {
      delete process.env.PGHERD_PRICE_SOURCE;
      forgetApiPrices();
    }
  });

  it('plans with the ranking and the cost of RDS classes', async () => {
    const p = await plan(resizeAction, [ids.get(member(1).identifier)!], { minVcpus: 4, minMemoryGiB: 16 });
    const facts = Object.fromEntries((p.targets[0]!.facts ?? []).map((f) => [f.label, f.value]));
    expect(facts['Class now']).toBe('db.m6i.large: 2 vCPU, 8 GiB, $0.1985/h, $144.91/month');
    expect(facts['Target class']).toMatch(/^db\.m\w+\.xlarge: 4 vCPU, 16 GiB, \$0\.\d+\/h/);
    expect(p.targets[0]!.before).toEqual({ instanceType: 'db.m6i.large' });
    expect(p.cost).toMatchObject({ targets: 1, unpriced: 0 });
  });

  it('drains the replica, asks RDS for the class, waits for RDS and for streaming, and puts the name back; the primary loses no commit', async () => {
    const r = member(1);
    const id = ids.get(r.identifier)!;
    expect(await resolves(1)).toBe(r.address);
    const before = await startedAt(r);
    await query(url(member(0)), 'CREATE TABLE IF NOT EXISTS writes (n bigint PRIMARY KEY)');
    // The synthetic writer through the herd's write name, resolved for each connection.
    const writeName = writeNameOf(ENV, 'reports', lab.dns!.zone);
    const writer = startReconnectingWriter(async () => {
      const to = (await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'A'))[0];
      return `postgres://postgres@${to ?? 'nowhere'}:${String(member(0).port)}/postgres`;
    });
    // What the read name answers while the resize runs, every 50 ms.
    const answers: { at: number; to: string | undefined }[] = [];
    const watching = { on: true };
    const watchUntilStopped = async () => {
      while (watching.on) {
        answers.push({ at: Date.now(), to: await resolves(1).catch(() => 'error') });
        await new Promise((res) => setTimeout(res, 50));
      }
    };
    const watch = watchUntilStopped();
    const res = await run(resizeAction, [id], { instanceType: 'db.m6i.xlarge' });
    watching.on = false;
    await watch;
    await writer.stop();
    expect(res.op.status, stepsOf(res)).toBe('succeeded');
    const step = (name: string) => res.steps.find((s) => s.name === name)!;
    expect(res.steps.map((s) => s.name)).toEqual([
      'check the RDS instance',
      `DNS drain: ${readName(1)}`,
      'wait out the TTL',
      'RDS: new class',
      'RDS: available again',
      'streaming',
      'record the new class',
      'record the observed state in the inventory',
      `DNS back: ${readName(1)}`,
    ]);
    // RDS says the class, its Postgres was restarted by it, it streams again.
    expect(await classOf(r.identifier)).toMatchObject({ instanceClass: 'db.m6i.xlarge', status: 'available', pendingClass: null });
    expect(await startedAt(r)).toBeGreaterThan(before);
    expect(await streaming(r)).toBe('streaming');
    expect(step('RDS: available again').stdoutTail).toMatch(/RDS said: modifying -> available/);
    // Drained from before RDS was asked until after it streamed again, and back on it at the end.
    const from = step('RDS: new class').startedAt.getTime();
    const to = step('streaming').finishedAt!.getTime();
    const during = answers.filter((a) => a.at >= from && a.at <= to);
    expect(during.length).toBeGreaterThan(5);
    expect(during.filter((a) => a.to === r.address)).toEqual([]);
    expect(await resolves(1)).toBe(r.address);
    // The inventory says the class, audited once; the primary took every commit the writer was told of.
    const [s] = await db
      .select({ cls: servers.cloudInstanceType, state: servers.cloudState })
      .from(servers)
      .where(eq(servers.hostname, r.identifier));
    expect(s).toEqual({ cls: 'db.m6i.xlarge', state: 'available' });
    const audits = await db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'server.resized'), sql`${auditEntries.objectLabel} LIKE ${`${r.identifier}%`}`));
    expect(audits.map((a) => a.changes)).toEqual([{ instanceType: ['db.m6i.large', 'db.m6i.xlarge'] }]);
    const rows = await query<{ n: string }>(url(member(0)), 'SELECT n FROM writes');
    const have = new Set(rows.map((x) => Number(x.n)));
    expect(writer.acked.length).toBeGreaterThan(20);
    expect(writer.acked.filter((n) => !have.has(n))).toEqual([]);
    expect(writer.errors).toEqual([]);
  }, 240_000);

  it('takes the next fallback class when RDS has no capacity for the target', async () => {
    faults({ insufficient: ['db.m6i.2xlarge'] });
    try {
      const res = await run(resizeAction, [ids.get(member(2).identifier)!], {
        instanceType: 'db.m6i.2xlarge',
        fallbackTypes: 'db.r6i.large',
      });
      expect(res.op.status, stepsOf(res)).toBe('succeeded');
      expect(res.steps.find((s) => s.name === 'RDS: new class')!.stdoutTail).toMatch(
        /db\.m6i\.2xlarge: InsufficientDBInstanceCapacity.*\n.*db\.r6i\.large: accepted/,
      );
      expect(await classOf(member(2).identifier)).toMatchObject({ instanceClass: 'db.r6i.large', status: 'available' });
      expect(await resolves(2)).toBe(member(2).address);
    } finally {
      faults({});
    }
  }, 240_000);

  it('when RDS has no class to give, changes nothing, says so, and puts the name back', async () => {
    faults({ insufficient: ['db.m6i.2xlarge'] });
    try {
      const res = await run(resizeAction, [ids.get(member(2).identifier)!], { instanceType: 'db.m6i.2xlarge', fallbackTypes: '' });
      expect(res.op.status).toBe('failed');
      expect(res.targets[0]!.error).toMatch(
        /RDS had no class to give: db\.m6i\.2xlarge: InsufficientDBInstanceCapacity.*still runs db\.r6i\.large/,
      );
      expect(await classOf(member(2).identifier)).toMatchObject({ instanceClass: 'db.r6i.large', status: 'available' });
      expect(await resolves(2)).toBe(member(2).address);
      expect(await streaming(member(2))).toBe('streaming');
    } finally {
      faults({});
    }
  }, 240_000);
});

describe("changes made behind pgherd's back", () => {
  it('a class changed outside pgherd: discovery records and audits it as found', async () => {
    const r = member(2);
    const had = (await classOf(r.identifier)).instanceClass;
    await rds().send(
      new ModifyDBInstanceCommand({ DBInstanceIdentifier: r.identifier, DBInstanceClass: 'db.m6i.xlarge', ApplyImmediately: true }),
    );
    await waitFor('RDS says available', async () => ((await classOf(r.identifier)).status === 'available' ? true : undefined));
    await discover();
    const [s2] = await db.select({ cls: servers.cloudInstanceType }).from(servers).where(eq(servers.hostname, r.identifier));
    expect(s2!.cls).toBe('db.m6i.xlarge');
    const audits = await db
      .select({ changes: auditEntries.changes, who: auditEntries.username })
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'server.resized'), eq(auditEntries.objectLabel, `${r.identifier} (found by RDS discovery)`)));
    expect(audits).toEqual([{ changes: { instanceType: [had, 'db.m6i.xlarge'] }, who: 'pgherd (RDS discovery)' }]);
    // Seen once: the next pass audits nothing more.
    await discover();
    expect(
      await db
        .select()
        .from(auditEntries)
        .where(eq(auditEntries.objectLabel, `${r.identifier} (found by RDS discovery)`)),
    ).toHaveLength(1);
  }, 60_000);

  it('a class changed while the resize waits out the TTL: nothing asked of RDS, the change kept', async () => {
    const r = member(2);
    const id = ids.get(r.identifier)!;
    await db
      .update(dnsRecords)
      .set({ ttl: 4 })
      .where(eq(dnsRecords.name, readName(2)));
    try {
      const p = await plan(resizeAction, [id], { instanceType: 'db.m6i.large' });
      const opId = await submitPlanned(db, worker!.queue, resizeAction, { instanceIds: [id] }, { instanceType: 'db.m6i.large' }, p, {
        username: 'rds-test',
      });
      // Drained (its read name answers another member): the resize now waits out the TTL (4 s).
      await waitFor('the read name drained', async () => ((await resolves(2)) !== r.address ? true : undefined), 60_000);
      await rds().send(
        new ModifyDBInstanceCommand({ DBInstanceIdentifier: r.identifier, DBInstanceClass: 'db.r6i.large', ApplyImmediately: true }),
      );
      const res = await waitForOperation(db, opId);
      expect(res.op.status).toBe('failed');
      expect(res.targets[0]).toMatchObject({
        refusal: 'cloud',
        error: expect.stringMatching(
          /is now modifying, db\.m6i\.xlarge .*\(planned: available, db\.m6i\.xlarge\); nothing was asked of RDS|is now .*db\.r6i\.large.*nothing was asked of RDS/,
        ),
      });
      await waitFor('RDS says available', async () => ((await classOf(r.identifier)).status === 'available' ? true : undefined));
      expect((await classOf(r.identifier)).instanceClass).toBe('db.r6i.large');
      // Its name came back if it streamed when the cleanup looked, else stayed drained: Refresh DNS puts it back once it streams.
      await waitFor('streaming again', async () => ((await streaming(r)) === 'streaming' ? true : undefined));
      const back = await runOperation(db, worker!.queue, refreshDnsAction, { herdIds: [herdId] }, {}, { username: 'rds-test' });
      expect(back.op.status, stepsOf(back)).toBe('succeeded');
      expect(await resolves(2)).toBe(r.address);
    } finally {
      await db
        .update(dnsRecords)
        .set({ ttl: 1 })
        .where(eq(dnsRecords.name, readName(2)));
    }
  }, 120_000);

  it("an RDS server's row edited to another DB instance's endpoint: the save is refused with what RDS says", async () => {
    const [s1] = await db
      .select({ id: servers.id, address: servers.address })
      .from(servers)
      .where(eq(servers.hostname, member(1).identifier));
    await db
      .update(servers)
      .set({ address: member(2).address })
      .where(eq(servers.id, s1!.id));
    try {
      expect(await cloudIdentityRules(db, s1!.id, { address: s1!.address })).toEqual({
        cloudInstanceId: expect.stringMatching(
          new RegExp(`RDS says ${member(1).identifier} answers at ${member(1).address.replace(/\./g, '\\.')}`),
        ),
      });
    } finally {
      await db.update(servers).set({ address: s1!.address }).where(eq(servers.id, s1!.id));
    }
    expect(await cloudIdentityRules(db, s1!.id, { address: member(2).address })).toBeNull();
  });
});

describe('power off and on through the RDS API', () => {
  it('refuses what RDS will not stop: a read replica, a source that has read replicas', async () => {
    const p = await plan(powerOffAction, [ids.get(member(1).identifier)!, ids.get(member(0).identifier)!]);
    expect(p.targets.map((t) => t.refused)).toEqual([
      expect.stringMatching(/is a read replica of .*: RDS does not stop a read replica/),
      expect.stringMatching(/has read replicas \(.*\): RDS does not stop a DB instance that has read replicas/),
    ]);
  });

  it('stops a lone DB instance (its Postgres with it) and starts it again', async () => {
    const id = ids.get(solo.identifier)!;
    const off = await run(powerOffAction, [id], {});
    expect(off.op.status, stepsOf(off)).toBe('succeeded');
    expect(off.steps.find((x) => x.name === 'RDS: stop')!.stdoutTail).toMatch(/RDS said: stopping -> stopped/);
    expect(await classOf(solo.identifier)).toMatchObject({ status: 'stopped' });
    await expect(query(url(solo), 'SELECT 1')).rejects.toThrow();
    const [row] = await db.select({ state: instances.state }).from(instances).where(eq(instances.id, id));
    expect(row!.state).toBe('stopped');
    // Stopped: another stop is refused with what RDS says.
    expect((await plan(powerOffAction, [id])).targets[0]!.refused).toMatch(/RDS says .* is stopped: power off needs it available/);
    const on = await run(powerOnAction, [id], {});
    expect(on.op.status, stepsOf(on)).toBe('succeeded');
    expect(await classOf(solo.identifier)).toMatchObject({ status: 'available' });
    expect((await query<{ r: boolean }>(url(solo), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    const [after] = await db.select({ state: instances.state }).from(instances).where(eq(instances.id, id));
    expect(after!.state).toBe('running');
  }, 240_000);
});

describe('restart through the RDS API (a reboot)', () => {
  it('refuses a failover on a Single-AZ instance; reboots a replica, which streams again', async () => {
    const r = member(2);
    const id = ids.get(r.identifier)!;
    expect((await plan(restartAction, [id], { failover: true })).targets[0]!.refused).toMatch(
      /is Single-AZ: RDS reboots with failover only a Multi-AZ instance/,
    );
    // RDS's driver answers what it cannot do in its own words.
    expect((await plan(restartAction, [id], { pendingOnly: true })).targets[0]!.refused).toMatch(/RDS keeps what waits for a reboot/);
    // Restart of a member pgherd runs with pg_ctl, in the same plan: pg_ctl's restart; a failover there is refused.
    const [ec2Member] = await db
      .select({ id: instances.id })
      .from(instances)
      .innerJoin(herds, eq(herds.id, instances.herdId))
      .where(eq(herds.name, 'alpha'));
    const both = await plan(restartAction, [id, ec2Member!.id]);
    expect(both.targets.map((t) => t.steps.some((s) => /^pg_ctl(cluster)? restart -m fast on /.test(s)))).toEqual([false, true]);
    expect(both.targets[0]!.steps[0]).toMatch(/^ask RDS to reboot /);
    expect((await plan(restartAction, [ec2Member!.id], { failover: true })).targets[0]!.refused).toMatch(
      /a restart with failover is what RDS Multi-AZ does: here, use Switchover/,
    );
    // The old name plans the same restart of an RDS member, for one release, and refuses a member over SSH as it did.
    const viaOld = await plan(getAction('rds-reboot')!, [id, ec2Member!.id]);
    expect(viaOld.action).toBe('restart');
    expect(viaOld.targets[0]!.steps).toEqual(both.targets[0]!.steps);
    expect(viaOld.targets[1]!.refused).toMatch(/is not an RDS DB instance: use Restart/);
    const before = await startedAt(r);
    const res = await run(restartAction, [id], {});
    expect(res.op.status, stepsOf(res)).toBe('succeeded');
    expect(res.steps.find((x) => x.name === 'RDS: reboot')!.stdoutTail).toMatch(/RDS said: rebooting -> available/);
    expect(await startedAt(r)).toBeGreaterThan(before);
    expect(await streaming(r)).toBe('streaming');
  }, 120_000);
});

describe('reboot with failover of a Multi-AZ instance', () => {
  it('asks RDS for a failover reboot and waits until it is available again, Postgres answering', async () => {
    const id = ids.get(solo.identifier)!;
    expect((await classOf(solo.identifier)).multiAz).toBe(true);
    const before = await startedAt(solo);
    const res = await run(restartAction, [id], { failover: true });
    expect(res.op.status, stepsOf(res)).toBe('succeeded');
    expect(res.steps.find((x) => x.name === 'RDS: reboot with failover')!.stdoutTail).toMatch(/RDS said: rebooting -> available/);
    expect(await startedAt(solo)).toBeGreaterThan(before);
    expect((await query<{ r: boolean }>(url(solo), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
  }, 120_000);
});

describe("a rule's nightly scale-down and its morning reverse", () => {
  it('resizes the RDS replica to the smaller class at night and back to the class it had in the morning, drained each time', async () => {
    const r = member(1);
    const id = ids.get(r.identifier)!;
    const had = (await classOf(r.identifier)).instanceClass;
    const [u] = await db.insert(users).values({ username: 'night-owl', source: 'local', isSuperuser: true }).returning();
    const owl: Actor = { id: u!.id, username: 'night-owl', access: await loadAccess(db, u!.id) };
    const rule = await createRule(
      db,
      owl,
      ruleBody.parse({
        name: 'reports smaller at night',
        action: 'resize',
        params: { instanceType: 'db.t3.medium', burstable: true },
        instanceIds: [id],
        schedule: { cron: ['0 22 1 1 *'], timezone: 'Europe/Paris' },
        reverse: { schedule: { cron: ['0 6 2 1 *'], timezone: 'Europe/Paris' } },
      }),
    );
    const [companion] = await db.select().from(rules).where(eq(rules.reverseOf, rule.id));
    const deps = { db, queue: worker!.queue, log: () => {} };
    const runNow = async (ruleId: number) => {
      const { runId } = await requestRun(db, owl, ruleId);
      await fireRequested(deps, runId);
      return waitFor(`run #${String(runId)} decided`, async () => {
        const [x] = await db.select().from(ruleRuns).where(eq(ruleRuns.id, runId));
        return x && x.status !== 'firing' && x.status !== 'deciding' ? x : undefined;
      });
    };
    // The synthetic writer through the herd's write name, all night and all morning.
    const writeName = writeNameOf(ENV, 'reports', lab.dns!.zone);
    const writer = startReconnectingWriter(async () => {
      const to = (await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'A'))[0];
      return `postgres://postgres@${to ?? 'nowhere'}:${String(member(0).port)}/postgres`;
    }, 'nightly');
    await query(url(member(0)), 'CREATE TABLE IF NOT EXISTS nightly (n bigint PRIMARY KEY)');
    const night = await runNow(rule.id);
    expect(night.status, night.reason ?? '').toBe('started');
    expect(night.targets).toEqual([{ id, label: expect.any(String), before: { instanceType: had } }]);
    const down = await waitForOperation(db, night.operationId!);
    expect(down.op.status, stepsOf(down)).toBe('succeeded');
    expect(down.steps.map((x) => x.name)).toContain(`DNS drain: ${readName(1)}`);
    expect(await classOf(r.identifier)).toMatchObject({ instanceClass: 'db.t3.medium', status: 'available' });
    const morning = await runNow(companion!.id);
    expect(morning.status, morning.reason ?? '').toBe('started');
    const up = await waitForOperation(db, morning.operationId!);
    expect(up.op.status, stepsOf(up)).toBe('succeeded');
    expect(await classOf(r.identifier)).toMatchObject({ instanceClass: had, status: 'available' });
    expect(await streaming(r)).toBe('streaming');
    expect(await resolves(1)).toBe(r.address);
    expect(await runNow(companion!.id)).toMatchObject({ status: 'nothing' });
    await writer.stop();
    const kept = new Set((await query<{ n: string }>(url(member(0)), 'SELECT n FROM nightly')).map((x) => Number(x.n)));
    expect(writer.acked.length).toBeGreaterThan(20);
    expect(writer.acked.filter((n) => !kept.has(n))).toEqual([]);
    expect(down.steps.map((x) => x.name)).toEqual(expect.arrayContaining([`DNS drain: ${readName(1)}`, `DNS back: ${readName(1)}`]));
    expect(up.steps.map((x) => x.name)).toEqual(expect.arrayContaining([`DNS drain: ${readName(1)}`, `DNS back: ${readName(1)}`]));
  }, 300_000);
});

describe('settings through the DB parameter group', () => {
  const herdIdOf = async (name: string) => (await db.select({ id: herds.id }).from(herds).where(eq(herds.name, name)))[0]!.id;
  const show = async (m: { address: string; port: number }, name: string) =>
    (
      await query<{ v: string; p: boolean }>(url(m), 'SELECT setting AS v, pending_restart AS p FROM pg_settings WHERE name = $1', [name])
    )[0]!;
  /** What each member runs, read as the refresh and the settings pass read it. */
  const readSettingsNow = async () => {
    const share = refreshShare(db, { holder: 'rds-settings-test', intervalMs: 60_000 });
    try {
      await db.execute(sql`UPDATE herds SET observe_due_at = '-infinity'`);
      await share.round();
    } finally {
      share.close();
    }
    await settingsPass(db);
  };
  const applySettings = (herdId: number) =>
    runOperation(db, worker!.queue, applySettingsAction, { herdIds: [herdId] }, {}, { username: 'rds-test', timeoutMs: 240_000 });

  it('writes the herd’s group with ModifyDBParameterGroup: a dynamic setting runs at once, a static one after RDS reboots each member, the primary last', async () => {
    const reports = await herdIdOf('reports');
    await readSettingsNow();
    await db.update(herds).set({ settingOverrides: "work_mem = '6MB'\nshared_buffers = '48MB'" }).where(eq(herds.id, reports));
    const p = await planOperation(db, SYSTEM_ACCESS, applySettingsAction, [reports], {});
    expect(p.targets[0]!.refused).toBeUndefined();
    // The confirmation page names the group, read from RDS as the plan was made, and who uses it.
    const groupName = (await classOf(member(0).identifier)).parameterGroup;
    expect(p.targets[0]!.facts?.find((f) => f.label === `DB parameter group ${groupName}`)?.value).toMatch(
      new RegExp(
        `^used by ${herd.members.map((m) => `${m.identifier} \\(runs what the group holds\\)`).join(', ')} and no other DB instance of `,
      ),
    );
    const order = p.targets[0]!.facts?.find((f) => f.label === 'In order')?.value ?? '';
    // The replicas first, the primary in place last: RDS has no switchover within a herd.
    expect(order).toMatch(new RegExp(`restart .*${member(1).identifier}.*restart .*${member(0).identifier}[^,;]* in place`));
    const before = await Promise.all(herd.members.map(startedAt));
    const r = await applySettings(reports);
    expect(r.op.status, stepsOf(r)).toBe('succeeded');
    for (const m of herd.members) {
      expect(await show(m, 'work_mem'), m.identifier).toEqual({ v: '6144', p: false });
      expect(await show(m, 'shared_buffers'), m.identifier).toEqual({ v: '6144', p: false });
    }
    const after = await Promise.all(herd.members.map(startedAt));
    after.forEach((t, k) => expect(t, herd.members[k]!.identifier).toBeGreaterThan(before[k]!));
    // The group says so too: RDS applies the static one at a reboot, the dynamic one at once.
    const group = (await classOf(member(0).identifier)).parameterGroup;
    expect(group).toMatch(/^pgherd-lab-/);
    const said = await rds().send(new DescribeDBParametersCommand({ DBParameterGroupName: group }));
    const byName = new Map((said.Parameters ?? []).map((x) => [x.ParameterName, [x.ParameterValue, x.ApplyMethod]]));
    // In each parameter's own unit, as RDS takes them: kB for work_mem, 8 kB pages for shared_buffers.
    expect(byName.get('work_mem')).toEqual(['6144', 'immediate']);
    expect(byName.get('shared_buffers')).toEqual(['6144', 'pending-reboot']);
    expect(r.steps.filter((s) => /RDS reboot$/.test(s.name)).map((s) => s.stdoutTail)).toEqual(
      herd.members.map(() => expect.stringMatching(/RDS said: rebooting -> available/)),
    );
    // The herd page's view of the group: it holds what pgherd's groups say, every member runs it.
    const view = await rdsGroupsView(db, reports);
    expect(view).toEqual({
      region: expect.any(String),
      groups: [
        {
          name: group,
          members: herd.members.map((m) => ({ label: expect.any(String), identifier: m.identifier, applyStatus: 'in-sync' })),
          drift: [],
          outside: [],
        },
      ],
    });
  }, 240_000);

  it('a group changed in RDS outside pgherd: the herd page shows it, the members pending their reboot; Apply writes the group back, no reboot', async () => {
    const reports = await herdIdOf('reports');
    const group = (await classOf(member(0).identifier)).parameterGroup;
    // Someone changes the group in the RDS console: a static value pgherd's groups say (64MB for 48MB),
    // and one no pgherd group names.
    await rds().send(
      new ModifyDBParameterGroupCommand({
        DBParameterGroupName: group,
        Parameters: [
          { ParameterName: 'shared_buffers', ParameterValue: '8192', ApplyMethod: 'pending-reboot' },
          { ParameterName: 'log_min_duration_statement', ParameterValue: '250', ApplyMethod: 'immediate' },
        ],
      }),
    );
    const view = await rdsGroupsView(db, reports);
    if (!view || 'error' in view) throw new Error(`no view: ${JSON.stringify(view)}`);
    const [g] = view.groups;
    expect(g!.members.map((m) => m.applyStatus)).toEqual(herd.members.map(() => 'pending-reboot'));
    expect(g!.drift).toEqual([{ name: 'shared_buffers', wanted: '48MB', from: 'herd override', inGroup: '64MB' }]);
    expect(g!.outside).toEqual([{ name: 'log_min_duration_statement', value: '250ms' }]);
    // Every member still runs 48MB: Apply plans the group's value back, and no reboot.
    await readSettingsNow();
    const before = await Promise.all(herd.members.map(startedAt));
    const p = await planOperation(db, SYSTEM_ACCESS, applySettingsAction, [reports], {});
    expect(p.targets[0]!.refused).toBeUndefined();
    expect(p.targets[0]!.facts?.find((f) => f.label === 'Only where the configuration is kept')?.value).toMatch(
      /^shared_buffers 64MB -> 48MB: /,
    );
    const r = await applySettings(reports);
    expect(r.op.status, stepsOf(r)).toBe('succeeded');
    expect(r.steps.filter((s) => /RDS reboot$/.test(s.name))).toEqual([]);
    const said = await rds().send(new DescribeDBParametersCommand({ DBParameterGroupName: group }));
    expect(said.Parameters?.find((x) => x.ParameterName === 'shared_buffers')?.ParameterValue).toBe('6144');
    expect(await Promise.all(herd.members.map(startedAt))).toEqual(before);
    // The setting no pgherd group names is left as it is, and still shown.
    const again = await rdsGroupsView(db, reports);
    expect(again && 'groups' in again ? again.groups[0]!.outside : null).toEqual([{ name: 'log_min_duration_statement', value: '250ms' }]);
    expect(again && 'groups' in again ? again.groups[0]!.drift : null).toEqual([]);
  }, 240_000);

  it('refuses a group another DB instance uses too (a staging herd’s change would reach it), at planning and at submission: nothing changes', async () => {
    const soloHerd = await herdIdOf('solo');
    const reportsGroup = (await classOf(member(0).identifier)).parameterGroup;
    await db.update(herds).set({ settingOverrides: "work_mem = '9MB'" }).where(eq(herds.id, soloHerd));
    await readSettingsNow();
    // Planned while solo has a group of its own: the page names it as solo's alone.
    const early = await planOperation(db, SYSTEM_ACCESS, applySettingsAction, [soloHerd], {});
    expect(early.targets[0]!.refused).toBeUndefined();
    const soloGroup = (await classOf(solo.identifier)).parameterGroup;
    expect(early.targets[0]!.facts?.find((f) => f.label === `DB parameter group ${soloGroup}`)?.value).toMatch(
      new RegExp(`^used by ${solo.identifier} \\(.*\\) and no other DB instance`),
    );
    // Then, before the confirmation, solo is given the reports herd's group.
    await rds().send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: solo.identifier, DBParameterGroupName: reportsGroup }));
    const said = async () =>
      new Map(
        ((await rds().send(new DescribeDBParametersCommand({ DBParameterGroupName: reportsGroup }))).Parameters ?? []).map((x) => [
          x.ParameterName,
          x.ParameterValue,
        ]),
      );
    const groupBefore = await said();
    const running = () => Promise.all([...herd.members, solo].map((m) => show(m, 'work_mem')));
    const runningBefore = await running();
    const sharing = new RegExp(
      `${reportsGroup} is also the group of ${herd.members.map((m) => m.identifier).join(', ')}: .*nothing was changed`,
    );
    // The plan confirmed before: not taken (RDS read again as it is submitted), nothing queued.
    await expect(submitPlanned(db, worker!.queue, applySettingsAction, { herdIds: [soloHerd] }, {}, early)).rejects.toThrow(
      /the inventory changed since this plan was made; review the new plan/,
    );
    // The new plan: refused on the confirmation page.
    const p = await planOperation(db, SYSTEM_ACCESS, applySettingsAction, [soloHerd], {});
    expect(p.targets[0]!.refused).toMatch(sharing);
    expect(await said()).toEqual(groupBefore);
    expect(await running()).toEqual(runningBefore);
  }, 120_000);

  it('refuses a member on RDS’s default group, which cannot be changed: nothing is asked of RDS, nothing changes', async () => {
    const soloHerd = await herdIdOf('solo');
    // RDS has its default groups from the start; moto makes them as they are first asked for.
    await rds()
      .send(
        new CreateDBParameterGroupCommand({
          DBParameterGroupName: 'default.postgres15',
          DBParameterGroupFamily: 'postgres15',
          Description: 'RDS default',
        }),
      )
      .catch(() => undefined);
    await rds().send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: solo.identifier, DBParameterGroupName: 'default.postgres15' }));
    await db.update(herds).set({ settingOverrides: "work_mem = '7MB'" }).where(eq(herds.id, soloHerd));
    await readSettingsNow();
    const was = await show(solo, 'work_mem');
    const p = await planOperation(db, SYSTEM_ACCESS, applySettingsAction, [soloHerd], {});
    expect(p.targets[0]!.refused).toMatch(
      /uses default\.postgres15: RDS's default parameter groups cannot be changed; .*nothing was changed/,
    );
    expect(await show(solo, 'work_mem')).toEqual(was);
  }, 120_000);
});

describe('DR failover: RDS promotes a read replica', () => {
  it('refuses while the source answers as a primary, whatever RDS says of it (storage-full): nothing promoted', async () => {
    faults({ storageFull: [member(0).identifier] });
    try {
      const res = await runOperation(db, worker!.queue, drFailoverAction, { herdIds: [herdId] }, {}, { username: 'rds-test' });
      expect(res.op.status).toBe('failed');
      expect(res.targets[0]).toMatchObject({
        refusal: 'not-fenced',
        error: expect.stringMatching(/is not proven fenced: RDS says it is storage-full, and it answers as a primary/),
      });
      for (const k of [1, 2]) expect((await query<{ r: boolean }>(url(member(k)), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
    } finally {
      faults({});
    }
  }, 120_000);

  it("refuses when the inventory's port for the source is not RDS's endpoint's (a refused connection there proves nothing)", async () => {
    const id = ids.get(member(0).identifier)!;
    await db.update(instances).set({ port: 5499 }).where(eq(instances.id, id));
    try {
      const res = await runOperation(db, worker!.queue, drFailoverAction, { herdIds: [herdId] }, {}, { username: 'rds-test' });
      expect(res.op.status).toBe('failed');
      expect(res.targets[0]).toMatchObject({
        refusal: 'not-fenced',
        error: expect.stringMatching(
          /cannot be proven fenced: RDS says rd-reports-1 answers on port \d+, and the inventory has rd-reports-1:5499/,
        ),
      });
      for (const k of [1, 2]) expect((await query<{ r: boolean }>(url(member(k)), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
    } finally {
      await db
        .update(instances)
        .set({ port: member(0).port })
        .where(eq(instances.id, id));
    }
  }, 120_000);

  it('refuses while the source answers and RDS calls it available: nothing promoted', async () => {
    const res = await runOperation(
      db,
      worker!.queue,
      drFailoverAction,
      { herdIds: [herdId] },
      { candidateInstanceId: String(ids.get(member(1).identifier)!) },
      { username: 'rds-test' },
    );
    expect(res.op.status).toBe('failed');
    expect(res.targets[0]).toMatchObject({
      refusal: 'not-fenced',
      error: expect.stringMatching(/is not proven fenced: RDS says it is available, and it answers/),
    });
    expect((await classOf(member(1).identifier)).sourceIdentifier).toBe(member(0).identifier);
    expect((await query<{ r: boolean }>(url(member(1)), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
    const [src] = await db
      .select({ state: instances.state })
      .from(instances)
      .where(eq(instances.id, ids.get(member(0).identifier)!));
    expect(src!.state).toBe('running');
  }, 120_000);

  it('the source lost: promoted through RDS, writable, the write name on it; the other replica named as left on the old source', async () => {
    const writeName = writeNameOf(ENV, 'reports', lab.dns!.zone);
    const answers = async () => (await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'A'))[0];
    expect(await answers()).toBe(member(0).address);
    await query(url(member(0)), 'CREATE TABLE IF NOT EXISTS writes (n bigint PRIMARY KEY)');
    await waitFor(
      'the table on the replicas',
      async () =>
        (await Promise.all([1, 2].map((k) => query(url(member(k)), "SELECT to_regclass('writes') IS NOT NULL AS ok")))).every(
          (r) => r[0]?.ok,
        ) || undefined,
    );
    await crash(lab, member(0));
    const t0 = Date.now();
    // When the write name first answers the new primary and a write there commits, as a client sees it.
    const ready = { at: 0 };
    const clientUntilWritten = async () => {
      while (!ready.at && Date.now() - t0 < 120_000) {
        const to = await answers().catch(() => undefined);
        const m = herd.members.find((x) => x.address === to && x !== member(0));
        if (m) {
          const ok = await query(url(m), 'INSERT INTO writes (n) VALUES (-1) ON CONFLICT DO NOTHING').then(
            () => true,
            () => false,
          );
          if (ok) ready.at = Date.now();
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const client = clientUntilWritten();
    const res = await runOperation(db, worker!.queue, drFailoverAction, { herdIds: [herdId] }, {}, { username: 'rds-test' });
    await client;
    expect(res.op.status, stepsOf(res)).toBe('succeeded');
    const promoted = herd.members.find(
      (m) => m !== member(0) && res.targets[0]!.outcome?.startsWith(`${m.identifier}:${String(m.port)} is the primary`),
    )!;
    expect(promoted, res.targets[0]!.outcome ?? '').toBeDefined();
    const other = herd.members.find((m) => m !== member(0) && m !== promoted)!;
    expect(res.steps.map((s) => s.name).filter((n) => !n.startsWith('DNS'))).toEqual([
      'ask the replicas and the DNS servers',
      `fence ${member(0).identifier}:${String(member(0).port)}`,
      'choose the candidate',
      'RDS: promote the candidate',
      'the other read replicas',
      `watch ${member(0).identifier}:${String(member(0).port)} stay fenced`,
      'look at the herd again if the failover stopped',
    ]);
    expect(res.steps.find((s) => s.name === 'RDS: promote the candidate')!.stdoutTail).toMatch(/RDS said: modifying -> available/);
    expect(await classOf(promoted.identifier)).toMatchObject({ status: 'available', sourceIdentifier: null });
    expect(await answers()).toBe(promoted.address);
    expect((await query<{ r: boolean }>(url(promoted), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    expect(res.targets[0]!.outcome).toMatch(
      new RegExp(`still read replicas of .* in RDS, which cannot follow the new primary: ${other.identifier}:${String(other.port)}`),
    );
    const rows = await db
      .select({ id: instances.id, role: instances.role, state: instances.state })
      .from(instances)
      .where(eq(instances.herdId, herdId));
    expect(rows.find((r) => r.id === ids.get(promoted.identifier))).toMatchObject({ role: 'primary', state: 'running' });
    expect(rows.find((r) => r.id === ids.get(member(0).identifier))).toMatchObject({ state: 'fenced' });
    // From confirmation to the write name answering a writable primary, as a client saw it.
    expect(ready.at).toBeGreaterThan(0);
    const ms = ready.at - t0;
    console.log(
      `rds: DR failover by promote, confirmation to a write through the write name: ${String(ms)} ms (the lab's RDS says modifying for 2 s)`,
    );
    expect(ms).toBeLessThan(20_000);
  }, 240_000);
});

describe('a new read replica, made by RDS', () => {
  it('of the new primary: created with its class and zone, entered in the herd, streaming from it', async () => {
    const rows = await db
      .select({ host: servers.hostname, role: instances.role, state: instances.state })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .where(eq(instances.herdId, herdId));
    // The primary RDS promoted (the old source is fenced).
    const primary = herd.members.find((m) => rows.some((r) => r.host === m.identifier && r.role === 'primary' && r.state === 'running'))!;
    expect(
      (await plan(addReplicaAction, [herdId], { instanceClass: 'db.m6i.large', availabilityZone: 'us-east-1a' })).targets[0]!.refused,
    ).toMatch(/us-east-1a is not a zone of eu-west-1/);
    await expect(plan(addReplicaAction, [herdId], { instanceClass: 'm6i.large; rm -rf /' })).rejects.toThrow(
      /an RDS class such as db\.m6i\.large/,
    );
    expect(
      (await plan(addReplicaAction, [herdId], { instanceClass: 'db.m6i.large', availabilityZone: 'eu-west-12a' })).targets[0]!.refused,
    ).toMatch(/eu-west-12a is not a zone of eu-west-1/);
    expect(
      (await plan(addReplicaAction, [herdId], { instanceClass: 'db.bogus.huge', availabilityZone: 'eu-west-1b' })).targets[0]!.refused,
    ).toMatch(/db\.bogus\.huge is not an RDS class for PostgreSQL 15\.8 in eu-west-1b/);
    // Add replica asks the herd's driver: RDS makes the replica, so a server or an EC2 type is not its to take.
    expect(
      (await plan(addReplicaAction, [herdId], { instanceType: 'm6i.large', dataDirectory: '/var/lib/postgresql/r/data' })).targets[0]!
        .refused,
    ).toMatch(
      /RDS makes .*'s read replica itself: give instanceClass \(and availabilityZone\), not instanceType, dataDirectory \(for a herd pgherd lays/,
    );
    await expect(plan(addReplicaAction, [herdId], { instanceClass: 'db.m6i.large', serverId: 7 })).rejects.toThrow(/one of them/);
    // The old name plans the same action on a herd RDS runs, for one release.
    const viaOld = await plan(getAction('rds-add-replica')!, [herdId], { instanceClass: 'db.m6i.large', availabilityZone: 'eu-west-1b' });
    expect(viaOld.action).toBe('add-replica');
    expect(viaOld.targets[0]!.refused).toBeUndefined();
    const p = await plan(addReplicaAction, [herdId], { instanceClass: 'db.m6i.large', availabilityZone: 'eu-west-1b' });
    const facts = Object.fromEntries((p.targets[0]!.facts ?? []).map((f) => [f.label, f.value]));
    expect(facts['New read replica']).toBe(`${primary.identifier}-r1, db.m6i.large in eu-west-1b`);
    expect(facts.Cost).toMatch(/^\+\$144\.91\/month/);
    const res = await runOperation(
      db,
      worker!.queue,
      addReplicaAction,
      { herdIds: [herdId] },
      { instanceClass: 'db.m6i.large', availabilityZone: 'eu-west-1b' },
      { username: 'rds-test' },
    );
    expect(res.op.status, stepsOf(res)).toBe('succeeded');
    const id = `${primary.identifier}-r1`;
    expect(res.steps.find((s) => s.name === 'RDS: create the read replica')!.stdoutTail).toMatch(/RDS said: creating -> available/);
    const made = await classOf(id);
    expect(made).toMatchObject({
      status: 'available',
      instanceClass: 'db.m6i.large',
      availabilityZone: 'eu-west-1b',
      sourceIdentifier: primary.identifier,
    });
    const [row] = await db
      .select({ role: instances.role, upstream: instances.upstreamInstanceId, provider: servers.cloudProvider, address: servers.address })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .where(and(eq(instances.herdId, herdId), eq(servers.hostname, id)));
    expect(row).toMatchObject({ role: 'replica', upstream: ids.get(primary.identifier), provider: 'rds', address: made.endpoint!.address });
    expect(await streaming({ address: made.endpoint!.address, port: made.endpoint!.port })).toBe('streaming');
    // Discovery finds it known.
    expect((await discover()).created).toEqual([]);
  }, 180_000);
});

describe('a replica promoted outside pgherd while its resize waits', () => {
  it('is not resized: refused right before RDS is asked, its postmaster untouched', async () => {
    const rows = await db
      .select({ id: instances.id, host: servers.hostname, address: servers.address, port: instances.port })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .where(and(eq(instances.herdId, herdId), sql`${servers.hostname} LIKE '%-r1'`));
    const r = rows[0]!;
    const name = `${r.host}-ro.${ENV}.db.${lab.dns!.zone}`;
    await db
      .insert(dnsRecords)
      .values({ herdId, name, type: 'A', zone: lab.dns!.zone, provider: 'rfc2136', match: 'instance', matchInstanceId: r.id, ttl: 4 });
    const put = await runOperation(db, worker!.queue, refreshDnsAction, { herdIds: [herdId] }, {}, { username: 'rds-test' });
    expect(put.op.status, stepsOf(put)).toBe('succeeded');
    const at = { address: r.address, port: r.port };
    const before = await startedAt(at);
    const p = await plan(resizeAction, [r.id], { instanceType: 'db.m6i.xlarge' });
    expect(p.targets[0]!.refused).toBeUndefined();
    const opId = await submitPlanned(db, worker!.queue, resizeAction, { instanceIds: [r.id] }, { instanceType: 'db.m6i.xlarge' }, p, {
      username: 'rds-test',
    });
    const resolvesName = async () => (await lookup({ host: lab.dns!.server, port: lab.dns!.port }, name, 'A'))[0];
    await waitFor('its read name drained', async () => ((await resolvesName()) !== r.address ? true : undefined), 60_000);
    await rds().send(new PromoteReadReplicaCommand({ DBInstanceIdentifier: r.host }));
    const res = await waitForOperation(db, opId);
    expect(res.op.status).toBe('failed');
    expect(res.targets[0]).toMatchObject({
      refusal: 'topology',
      error: expect.stringMatching(/answers as a primary: Resize takes read replicas only|is no read replica now/),
    });
    expect((await classOf(r.host)).instanceClass).toBe('db.m6i.large');
    // Promoted by RDS (a restart of its own is not pgherd's): no class change was asked, so none restarted it after.
    expect(
      (await query<{ r: boolean }>(`postgres://postgres@${r.address}:${String(r.port)}/postgres`, 'SELECT pg_is_in_recovery() AS r'))[0]!.r,
    ).toBe(false);
    expect(await startedAt(at)).toBe(before);
  }, 120_000);
});
