// Growing and healing a herd on a lab of its own (real Postgres, pgBackRest, OpenSSH, BIND; moto behind
// the lab's EC2 front, where a launched instance is an sshd on a free loopback address): a replica added on
// a new EC2 instance seeded from the backup repository reads next to nothing from the primary and streams
// however much WAL the primary wrote and dropped meanwhile; the same restore without restore_command falls
// off; a replica seeded from the primary reads the whole database from it; Retire drains, stops, terminates
// and records; what may not be retired is refused with nothing changed.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { DescribeInstancesCommand, StartInstancesCommand, StopInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import {
  autoReplaceDecisions,
  autoReplacePolicies,
  dnsRecords,
  herds,
  instances,
  launchedInstances,
  operationTargets,
  retiredMembers,
  rules,
  servers,
  spotInterruptions,
} from '@/db/schema';
import { startLab, stopLab, PROJECT_ROOT, writeNameOf, type LabInfo } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { run as runAsLab, labIdentity } from '@/lib/lab/proc';
import { runOperation, startTestWorker, submitPlanned, waitForOperation, type TestWorker } from '@/lib/testing/operations';
import { startWriter } from '@/lib/testing/writer';
import { createAgentToken } from '@/lib/features/agents/ingest';
import { receiveSpotNotice } from '@/lib/features/spot/notice';
import { agentConfigSchema } from '@/lib/agent/discover';
import { relaySpotNotice } from '@/lib/agent/spot';
import { planOperation } from '@/lib/engine/plan';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { waitFor } from '@/lib/testing/wait';
import { ec2Client } from '@/lib/adapters/aws/config';
import { catalogueFor } from '@/lib/fleet/cloud/catalogue';
import { describeInstancesById } from '@/lib/adapters/aws/ec2';
import { priceListFor } from '@/lib/fleet/cloud/prices';
import { discoverEc2, discoveryConfig } from '@/lib/features/discovery/discovery';
import { dnsProvider } from '@/lib/adapters/dns/provider';
import { zoneConfig } from '@/lib/adapters/dns/config';
import { configureBackupsAction } from '@/lib/actions/backups/configure-backups.action';
import { backupAction } from '@/lib/actions/backups/backup.action';
import { memberConfigPath, pgbackrest } from '@/lib/fleet/backups/pgbackrest';
import { addReplicaAction } from './add-replica.action';
import { retireAction } from './retire.action';
import { refreshFleet } from '@/lib/fleet/refresher';
import { webhookDeliveries, webhooks } from '@/db/schema';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', 'grow-test.json');
const PREFIX = 't-grow';
const ENV = 'gr';
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker;
let herdId: number;
let readName: string;

const members = () => lab.instances.filter((i) => i.environment === ENV && i.herd === 'alpha');
const primary = () => members().find((i) => i.role === 'primary')!;
const image = () => lab.backup!.images.find((i) => i.environment === ENV)!;
const steps = (r: { steps: { name: string; status: string; stderrTail: string; error?: string | null }[] }) =>
  JSON.stringify(r.steps.map((s) => [s.name, s.status, s.error ?? '', s.stderrTail.slice(-400)]));
const where = (name: string, port: number) => ({
  port: String(port),
  dataDirectory: path.join(image().dataRoot, name, 'data'),
  sslCertFile: image().tls!.certFile,
  sslKeyFile: image().tls!.keyFile,
});

/** The bytes the primary's processes read (rchar), the archiver's subtree left out: what seeding reads of it. */
function primaryReads(): number {
  const pid = Number(readFileSync(path.join(primary().dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const parent = new Map<number, number>();
  const names = new Map<number, string>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      names.set(Number(d), readFileSync(`/proc/${d}/cmdline`, 'utf8'));
    } catch {
      // gone meanwhile
    }
  }
  const under = (p: number, top: number): boolean => {
    for (let q = p, n = 0; q > 1 && n < 64; q = parent.get(q) ?? 0, n++) {
      if (q === top) return true;
      // Not the seed's: the archiver (it reads WAL to archive it) and autovacuum (it reads the tables
      // just written, whenever it wakes: on a slow machine, during the seed).
      if (/archiver|autovacuum/.test(names.get(q) ?? '')) return false;
    }
    return false;
  };
  let total = 0;
  for (const p of parent.keys()) {
    if (!under(p, pid)) continue;
    try {
      total += Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${p}/io`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

const databaseBytes = async () =>
  Number((await query<{ b: string }>(primary().dsn, 'SELECT sum(pg_database_size(datname))::text AS b FROM pg_database'))[0]!.b);

/** An HTTP server on loopback, its URL, and how to close it. */
function listen(handler: http.RequestListener): Promise<{ url: string; close: () => void }> {
  const srv = http.createServer(handler);
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${String(port)}`, close: () => srv.close() });
    }),
  );
}

/** EC2's word on an instance (through the lab's front). */
const ec2State = async (id: string) => {
  const c = ec2Client(lab.aws!.region);
  try {
    const r = await c.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return r.Reservations?.[0]?.Instances?.[0]?.State?.Name;
  } finally {
    c.destroy();
  }
};

const answers = async (name: string) => {
  const zone = zoneConfig(lab.dns!.zone);
  return (await dnsProvider(zone).lookup(name, 'A')).sort();
};

beforeAll(async () => {
  lab = await startLab({
    ldap: false,
    file: LAB_FILE,
    fleet: { environments: [ENV], herds: ['alpha'], replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.73' },
    pgbouncer: [],
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  herdId = (
    await db.execute<{ id: number }>(
      sql`SELECT h.id FROM herds h JOIN environments e ON e.id = h.environment_id WHERE e.name = ${ENV} AND h.name = 'alpha'`,
    )
  ).rows[0]!.id;
  // A read name for the herd's replicas (an A record of every running replica).
  readName = writeNameOf(ENV, 'alpha-ro', lab.dns!.zone);
  await db
    .insert(dnsRecords)
    .values({ herdId, name: readName, type: 'A', zone: lab.dns!.zone, provider: 'rfc2136', match: 'role', matchRole: 'replica', ttl: 5 });
  // Auto-replace looks every 2 s here (its default is 30 s); nothing is replaced until the test gives a policy.
  worker = await startTestWorker(lab, PREFIX, 2, { autoReplaceEveryMs: 2000 });
  const cfg = discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [lab.aws!.region], tags: lab.aws!.discoveryTags }) })!;
  await discoverEc2(db, cfg, (region) => ec2Client(region));
  // A database worth seeding: about 120 MB, frozen and analyzed (no autovacuum reads it during the measure).
  await query(primary().dsn, `CREATE TABLE bulk AS SELECT g AS id, repeat(md5(g::text), 30) AS pad FROM generate_series(1, 120000) g`);
  await query(primary().dsn, 'VACUUM (FREEZE, ANALYZE) bulk');
  await query(primary().dsn, 'CREATE TABLE writes (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
  const conf = await runOperation(db, worker.queue, configureBackupsAction, { herdIds: [herdId] });
  expect(conf.op.status, steps(conf)).toBe('succeeded');
  const full = await runOperation(db, worker.queue, backupAction, { herdIds: [herdId] }, { type: 'full' });
  expect(full.op.status, steps(full)).toBe('succeeded');
}, 300_000);

afterAll(async () => {
  await ifAssigned(worker)?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
}, 60_000);

describe('Add replica', () => {
  let launchedId: number;

  it('plans a new EC2 instance seeded from the repository, saying why, priced, nothing done', async () => {
    const plan = await planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], { instanceType: 'm6i.large', ...where('r1', 26001) });
    const t = plan.targets[0]!;
    expect(t.refused).toBeFalsy();
    expect(t.facts!.find((f) => f.label === 'Seeded from')!.value).toMatch(/^the herd's backup repository \(stanza gr-alpha/);
    expect(t.facts!.find((f) => f.label === 'WAL')!.value).toMatch(/restore_command from the repository/);
    expect(t.facts!.find((f) => f.label === 'New instance')!.value).toMatch(/m6i\.large like .*\/h on demand/);
    expect(t.steps[0]).toMatch(/^launch a m6i\.large/);
    expect(await db.select().from(launchedInstances)).toEqual([]);
  });

  it('plans a new instance by size: the cheapest type offered in its zone with at least that, on demand and on spot', async () => {
    const c = ec2Client(lab.aws!.region);
    try {
      const primary = lab.instances.find((i) => i.herd === 'alpha' && i.role === 'primary')!;
      const zone = lab.aws!.instances.find((x) => x.server === primary.server)!.availabilityZone;
      const prices = await priceListFor([lab.aws!.region]);
      const cat = await catalogueFor(c, lab.aws!.region, zone, { endpoint: lab.aws!.endpoint, prices });
      // (A type of another architecture than the image's would not boot it: not a candidate.)
      const ec2Id = lab.aws!.instances.find((x) => x.server === primary.server)!.instanceId;
      const arch = (await describeInstancesById(c, lab.aws!.region, [ec2Id]))[0]!.architecture;
      const fits = [...cat.types.values()].filter(
        (t) => t.vcpus >= 4 && t.memoryGiB >= 16 && !t.burstable && cat.offered.has(t.name) && t.architectures.includes(arch),
      );
      expect(fits.length).toBeGreaterThan(1);
      const newInstance = async (params: Record<string, unknown>) => {
        const plan = await planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], { ...params, ...where('z1', 26021) });
        expect(plan.targets[0]!.refused ?? null, JSON.stringify(plan.targets[0])).toBeNull();
        return plan.targets[0]!.facts!.find((f) => f.label === 'New instance')!.value;
      };
      // On demand: the type chosen has what was asked, and no type that has it is cheaper.
      const onDemand = await newInstance({ minVcpus: 4, minMemoryGiB: 16 });
      const chosen = /^(\S+) like /.exec(onDemand)![1]!;
      const t = cat.types.get(chosen)!;
      expect([t.vcpus >= 4, t.memoryGiB >= 16, t.burstable]).toEqual([true, true, false]);
      const cheapest = Math.min(...fits.map((f) => cat.perHour(f.name) ?? Infinity));
      expect(cat.perHour(chosen)).toBe(cheapest);
      expect(onDemand).toContain(
        `the cheapest on demand of ${String(fits.length)} types offered in ${zone} with at least 4 vCPU and 16 GiB`,
      );
      // On spot: by EC2's spot prices, said as such.
      const spot = await newInstance({ minVcpus: 4, minMemoryGiB: 16, market: 'spot' });
      expect(spot).toMatch(/\/h on spot .*the cheapest on spot of \d+ types/);
      // What no type has: refused, saying so; a type and a size together: a bad parameter.
      const none = await planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], {
        minVcpus: 2048,
        minMemoryGiB: 65536,
        ...where('z2', 26022),
      });
      expect(none.targets[0]!.refused).toMatch(/no instance type offered in .* has at least 2048 vCPU and 65536 GiB/);
      await expect(
        planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], { instanceType: 'm6i.large', minVcpus: 4, ...where('z3', 26023) }),
      ).rejects.toThrow(/one of them/);
    } finally {
      c.destroy();
    }
    expect(await db.select().from(launchedInstances)).toEqual([]);
  });

  it('refuses bad input and impossible seeds, nothing launched', async () => {
    await expect(planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], { ...where('x', 26002) })).rejects.toThrow(
      /serverId.*instanceType/,
    );
    await expect(
      planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], {
        instanceType: 'm6i.large',
        ...where('x', 26002),
        dataDirectory: '/data',
      }),
    ).rejects.toThrow(/folder of its own/);
    await expect(
      planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], { serverId: '1', market: 'spot', ...where('x', 26002) }),
    ).rejects.toThrow(/market spot is for a new EC2 instance/);
    const other = await planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], {
      instanceType: 'm6i.large',
      like: '999999',
      ...where('x', 26002),
    });
    expect(other.targets[0]!.refused).toMatch(/instance 999999 \(like\) is not a member/);
    const [p] = await db.select().from(instances).where(eq(instances.herdId, herdId));
    const occupied = await planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], {
      serverId: String(p!.serverId),
      ...where('x', 26002),
    });
    expect(occupied.targets[0]!.refused).toMatch(/holds 1 instance\(s\) of pgherd's inventory/);
    expect(await db.select().from(launchedInstances)).toEqual([]);
  });

  it('from the repository onto a new instance: reads under 5% of the database from the primary, streams through more WAL than wal_keep_size', async () => {
    // The primary keeps 16 MB of WAL for its replicas; 96 MB are written and checkpointed away after the backup.
    await query(primary().dsn, `ALTER SYSTEM SET wal_keep_size = '16MB'`);
    await query(primary().dsn, 'SELECT pg_reload_conf()');
    const [oldest] = await query<{ w: string }>(primary().dsn, 'SELECT min(name) AS w FROM pg_ls_waldir() WHERE name ~ $1', [
      '^[0-9A-F]{24}$',
    ]);
    for (let k = 0; k < 6; k++) {
      await query(primary().dsn, `INSERT INTO writes (n) SELECT g FROM generate_series(${k * 100000 + 1}, ${(k + 1) * 100000}) g`);
      await query(primary().dsn, `SELECT pg_switch_wal()`);
      await query(primary().dsn, 'CHECKPOINT');
    }
    // The rows just written vacuumed now (with data checksums, setting their hint bits writes WAL), not by
    // autovacuum during the seed: that WAL archived with the rest.
    await query(primary().dsn, 'VACUUM ANALYZE writes');
    await query(primary().dsn, 'SELECT pg_switch_wal()');
    await query(primary().dsn, 'CHECKPOINT');
    // Archived, and gone from the primary: a replica starting from the backup finds it only in the repository.
    await waitFor(
      'the primary to recycle the WAL of the backup',
      async () => {
        const [w] = await query<{ w: string }>(primary().dsn, 'SELECT min(name) AS w FROM pg_ls_waldir() WHERE name ~ $1', [
          '^[0-9A-F]{24}$',
        ]);
        await query(primary().dsn, 'CHECKPOINT');
        return w!.w > oldest!.w ? w : null;
      },
      60_000,
    );

    // Every segment but the one being written is in the repository before the seed starts.
    const [last] = await query<{ w: string }>(primary().dsn, 'SELECT pg_walfile_name(pg_switch_wal()) AS w');
    await waitFor('the last segment archived', async () => {
      const [a] = await query<{ ok: boolean }>(primary().dsn, 'SELECT last_archived_wal >= $1 AS ok FROM pg_stat_archiver', [last!.w]);
      return a!.ok ? true : undefined;
    });
    const size = await databaseBytes();
    const lsnAt = async () => (await query<{ l: string }>(primary().dsn, 'SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    const lsnBefore = await lsnAt();
    const before = primaryReads();
    const r = await runOperation(
      db,
      worker.queue,
      addReplicaAction,
      { herdIds: [herdId] },
      { instanceType: 'm6i.large', ...where('r1', 26001) },
    );
    const read = primaryReads() - before;
    // What the primary wrote meanwhile (pgherd's own statements, hint bits): the replica streams it, read by the walsender.
    const [made] = await query<{ b: number }>(primary().dsn, 'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::float8 AS b', [lsnBefore]);
    expect(r.op.status, steps(r)).toBe('succeeded');
    console.log(
      `seed from the repository: the primary read ${read} bytes of a ${size}-byte database (${((read / size) * 100).toFixed(2)}%), ${made!.b} bytes of WAL made meanwhile`,
    );
    // None of the data files: under 5% of the database, beyond the WAL streamed (what was made meanwhile,
    // and the one segment being written when the seed started, which the repository has not yet).
    expect(read).toBeLessThan(size * 0.05 + made!.b + 16 * 1024 * 1024);

    const [l] = await db.select().from(launchedInstances);
    launchedId = l!.id;
    expect(l!.keptInstanceId).not.toBeNull();
    const [m] = await db.select().from(instances).where(eq(instances.id, l!.keptInstanceId!));
    expect(m).toMatchObject({ herdId, role: 'replica', state: 'running', port: 26001, upstreamInstanceId: expect.any(Number) });
    const [s] = await db.select().from(servers).where(eq(servers.id, m!.serverId));
    // The outcome names the launched instance, not the plan's words for it ("a new m6i.large instance").
    expect(r.targets[0]!.outcome).toMatch(new RegExp(`^${s!.hostname.replace(/\./g, '\\.')}:26001 \\(instance \\d+\\) streams from`));
    const dsn = `postgres://postgres@${s!.address}:26001/postgres`;
    // It streams from the primary, has every row, and takes the rows written now.
    const [w] = await query<{ status: string; host: string }>(dsn, 'SELECT status, sender_host AS host FROM pg_stat_wal_receiver');
    expect(w).toEqual({ status: 'streaming', host: primary().address });
    await query(primary().dsn, 'INSERT INTO writes (n) VALUES (0)');
    await waitFor(
      'the new replica to replay the row written now',
      async () => (await query<{ n: number }>(dsn, 'SELECT count(*)::int AS n FROM writes'))[0]!.n === 600001,
      10_000,
    );
    const [cmd] = await query<{ c: string }>(dsn, `SELECT current_setting('restore_command') AS c`);
    expect(cmd!.c).toContain('--stanza=gr-alpha archive-get');
    // The read name answers it beside the first replica.
    const first = members().find((i) => i.role === 'replica')!;
    expect(await answers(readName)).toEqual([first.address, s!.address].sort());
  }, 300_000);

  it('a writer producing more WAL than wal_keep_size during the seed: the new replica streams at the end, every row there', async () => {
    const lsn = async () => (await query<{ l: string }>(primary().dsn, 'SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    const from = await lsn();
    const flag = { stop: false };
    let rows = 0;
    // About 2 MB of WAL a batch, a checkpoint every 4 batches: the primary recycles what wal_keep_size does
    // not keep. At most 48 batches (about 100 MB): the lab's disk holds every segment the archive gets.
    const writer = (async () => {
      for (let k = 0; !flag.stop && k < 48; k++) {
        await query(
          primary().dsn,
          `INSERT INTO writes (n) SELECT g FROM generate_series(${1_000_000 + k * 20000}, ${1_000_000 + k * 20000 + 19999}) g`,
        );
        rows += 20000;
        if (k % 4 === 3) await query(primary().dsn, 'CHECKPOINT');
      }
    })();
    const r = await runOperation(
      db,
      worker.queue,
      addReplicaAction,
      { herdIds: [herdId] },
      { instanceType: 'm6i.large', ...where('r2', 26002) },
    );
    flag.stop = true;
    await writer;
    expect(r.op.status, steps(r)).toBe('succeeded');
    const [{ b }] = (await query<{ b: string }>(primary().dsn, `SELECT (pg_current_wal_lsn() - $1::pg_lsn)::text AS b`, [from])) as [
      { b: string },
    ];
    console.log(`during the seed: ${rows} rows, ${b} bytes of WAL (wal_keep_size 16 MB)`);
    expect(Number(b)).toBeGreaterThan(16 * 1024 * 1024);
    const m = (await db.select().from(instances).where(eq(instances.port, 26002)))[0]!;
    const [s] = await db.select().from(servers).where(eq(servers.id, m.serverId));
    const dsn = `postgres://postgres@${s!.address}:26002/postgres`;
    const [w] = await query<{ status: string }>(dsn, 'SELECT status FROM pg_stat_wal_receiver');
    expect(w!.status).toBe('streaming');
    const total = (await query<{ n: number }>(primary().dsn, 'SELECT count(*)::int AS n FROM writes'))[0]!.n;
    await waitFor(
      'the new replica to have every row',
      async () => (await query<{ n: number }>(dsn, 'SELECT count(*)::int AS n FROM writes'))[0]!.n === total,
      30_000,
    );
  }, 300_000);

  it('the same restore without restore_command falls off: the primary no longer has the WAL it asks for', async () => {
    const dir = path.join(image().dataRoot, 'no-archive');
    const data = path.join(dir, 'data');
    const conf = memberConfigPath(path.join(image().dataRoot, 'r1', 'data'));
    const lab$ = labIdentity();
    await runAsLab(lab$, ['mkdir', '-p', '-m', '0700', data]);
    try {
      await runAsLab(lab$, pgbackrest(conf, 'gr-alpha', '--type=standby', `--pg1-path=${data}`, 'restore'));
      const settings = [
        `port = 26009`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = '${dir}'`,
        `primary_conninfo = 'host=${primary().address} port=${primary().port} user=postgres'`,
        `restore_command = ''`,
        `archive_mode = off`,
        `ssl = off`,
      ].join('\n');
      await runAsLab(lab$, ['sh', '-c', 'printf "%s\\n" "$1" >> "$2/postgresql.auto.conf"', 'x', settings, data]);
      await runAsLab(lab$, ['/usr/lib/postgresql/15/bin/pg_ctl', '-D', data, '-l', path.join(dir, 'log'), '-W', 'start']);
      await waitFor(
        'the walreceiver to be refused the WAL the primary dropped',
        () => /has already been removed/.test(readFileSync(path.join(dir, 'log'), 'utf8')),
        30_000,
      );
    } finally {
      await runAsLab(lab$, ['/usr/lib/postgresql/15/bin/pg_ctl', '-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
      await runAsLab(lab$, ['rm', '-rf', '--', dir]);
    }
  }, 120_000);

  it('from the primary onto a scratch server: the primary reads the whole database (the last resort, said as such)', async () => {
    const scratch = lab.backup!.scratch.find((x) => x.environment === ENV)!;
    const [srv] = await db.select().from(servers).where(eq(servers.hostname, scratch.server));
    const params = {
      serverId: String(srv!.id),
      seed: 'primary',
      port: '26003',
      dataDirectory: path.join(scratch.dataRoot, 'r3', 'data'),
      sslCertFile: scratch.tls!.certFile,
      sslKeyFile: scratch.tls!.keyFile,
    };
    const plan = await planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], params);
    expect(plan.targets[0]!.facts!.find((f) => f.label === 'Seeded from')!.value).toMatch(/^the primary .*the last resort/);
    expect(plan.targets[0]!.warnings).toContain('the seed reads the whole database from the primary, loading it while it runs');
    const size = await databaseBytes();
    const before = primaryReads();
    const r = await runOperation(db, worker.queue, addReplicaAction, { herdIds: [herdId] }, params);
    const read = primaryReads() - before;
    expect(r.op.status, steps(r)).toBe('succeeded');
    console.log(`seed from the primary: the primary read ${read} bytes of a ${size}-byte database (${((read / size) * 100).toFixed(1)}%)`);
    expect(read).toBeGreaterThan(size * 0.8);
    // Its primary_conninfo verifies the primary's certificate against the environment's CA, and it streams over TLS.
    const dsn = `postgres://postgres@${scratch.address}:26003/postgres`;
    const [{ c } = { c: '' }] = await query<{ c: string }>(dsn, `SELECT current_setting('primary_conninfo') AS c`);
    expect(c).toMatch(/sslmode='verify-full' sslrootcert='[^']+\/\.pgherd\/ca-[0-9a-f]{16}\.crt'/);
    const [w] = await query<{ ssl: boolean }>(
      `postgres://postgres@${primary().address}:${primary().port}/postgres`,
      `SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = $1`,
      [scratch.server.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 63)],
    );
    expect(w).toEqual({ ssl: true });
  }, 300_000);

  it('a seed that fails leaves nothing: no folder, no instance, no server', async () => {
    // Its port taken on every address an instance of the environment may get: the new replica cannot start.
    const squatters = await Promise.all(
      lab
        .backup!.launch.filter((l) => l.environment === ENV)
        .map(
          (l) =>
            new Promise<net.Server>((resolve, reject) => {
              // Whoever connects is hung up on at once: a port taken, not a server that answers.
              const srv = net.createServer((c) => c.destroy());
              srv.once('error', reject);
              srv.listen(26004, l.address, () => resolve(srv));
            }),
        ),
    );
    const r = await runOperation(
      db,
      worker.queue,
      addReplicaAction,
      { herdIds: [herdId] },
      {
        instanceType: 'm6i.large',
        ...where('r-bad', 26004),
        seed: 'repository',
      },
    );
    await Promise.all(squatters.map((q) => new Promise((resolve) => q.close(resolve))));
    expect(r.op.status, steps(r)).toBe('failed');
    expect(r.targets[0]!.error).toMatch(/did not start: .*could not create any TCP\/IP sockets/);
    const left = await runAsLab(labIdentity(), [
      'sh',
      '-c',
      'test -e "$1" && echo left || echo gone',
      'x',
      path.join(image().dataRoot, 'r-bad'),
    ]);
    expect(left.stdout.trim()).toBe('gone');
    const launched = await db
      .select()
      .from(launchedInstances)
      .where(
        inArray(
          launchedInstances.targetId,
          r.targets.map((t) => t.id),
        ),
      );
    expect(launched[0]!.terminatedAt).not.toBeNull();
    expect(await ec2State(launched[0]!.instanceId!)).toBe('terminated');
    expect((await db.select().from(instances).where(eq(instances.herdId, herdId))).length).toBe(5);
  }, 300_000);

  describe('Retire member', () => {
    const memberOn = async (port: number) => (await db.select().from(instances).where(eq(instances.port, port)))[0]!;

    it('refuses the primary, a pinned name, terminating what pgherd did not launch unconfirmed, the last replica a rule needs', async () => {
      const [p] = await db
        .select()
        .from(instances)
        .where(sql`herd_id = ${herdId} AND role = 'primary'`);
      expect((await planOperation(db, SYSTEM_ACCESS, retireAction, [p!.id])).targets[0]!.refused).toMatch(
        /is the herd's primary: switch over first/,
      );
      const first = (
        await db
          .select()
          .from(instances)
          .where(sql`herd_id = ${herdId} AND role = 'replica' AND port = ${members().find((m) => m.role === 'replica')!.port}`)
      )[0]!;
      const t = await planOperation(db, SYSTEM_ACCESS, retireAction, [first.id], { host: 'terminate' });
      expect(t.targets[0]!.refused).toMatch(/pgherd did not launch i-\w+ .* typing its id/);
      const [pin] = await db
        .insert(dnsRecords)
        .values({
          herdId,
          name: writeNameOf(ENV, 'pinned', lab.dns!.zone),
          type: 'CNAME',
          zone: lab.dns!.zone,
          provider: 'rfc2136',
          match: 'instance',
          matchInstanceId: first.id,
          ttl: 5,
        })
        .returning();
      try {
        expect((await planOperation(db, SYSTEM_ACCESS, retireAction, [first.id])).targets[0]!.refused).toMatch(
          /is pinned to .*point it elsewhere first/,
        );
      } finally {
        await db.delete(dnsRecords).where(eq(dnsRecords.id, pin!.id));
      }
      // A herd left with one replica that a switchover rule needs: that one is not retired.
      const [rule] = await db
        .insert(rules)
        .values({
          name: 'weekly switchover',
          ownerName: 'admin',
          action: 'switchover',
          scope: { herdIds: [herdId] },
          schedule: { cron: ['0 3 * * 0'], timezone: 'UTC' },
        })
        .returning();
      try {
        const lone = await db
          .select()
          .from(instances)
          .where(sql`herd_id = ${herdId} AND role = 'replica'`);
        expect(lone.length).toBe(4);
        // Four replicas: any one may go.
        expect((await planOperation(db, SYSTEM_ACCESS, retireAction, [first.id])).targets[0]!.refused).toBeFalsy();
        await db
          .update(instances)
          .set({ state: 'stopped' })
          .where(
            inArray(
              instances.id,
              lone.filter((x) => x.id !== first.id).map((x) => x.id),
            ),
          );
        expect((await planOperation(db, SYSTEM_ACCESS, retireAction, [first.id])).targets[0]!.refused).toMatch(
          /last running replica .* rule "weekly switchover" runs switchover/,
        );
      } finally {
        await db.delete(rules).where(eq(rules.id, rule!.id));
        await db
          .update(instances)
          .set({ state: 'running' })
          .where(sql`herd_id = ${herdId}`);
      }
    });

    it('a launched replica: its read name drained, stopped, its instance terminated, recorded as retired', async () => {
      const m = await memberOn(26001);
      const [srv] = await db.select().from(servers).where(eq(servers.id, m.serverId));
      const [l] = await db.select().from(launchedInstances).where(eq(launchedInstances.id, launchedId));
      const r = await runOperation(db, worker.queue, retireAction, { instanceIds: [m.id] }, { host: 'terminate' });
      expect(r.op.status, steps(r)).toBe('succeeded');
      expect(await answers(readName)).not.toContain(srv!.address);
      expect(await ec2State(l!.instanceId!)).toBe('terminated');
      expect(await db.select().from(instances).where(eq(instances.id, m.id))).toEqual([]);
      expect(await db.select().from(servers).where(eq(servers.id, m.serverId))).toEqual([]);
      const [ret] = await db.select().from(retiredMembers).where(eq(retiredMembers.instanceId, m.id));
      expect(ret).toMatchObject({ herdId, host: 'terminated', port: 26001, cloudInstanceId: l!.instanceId, operationId: r.op.id });
      // Nothing answers where it ran.
      await expect(query(`postgres://postgres@${srv!.address}:26001/postgres`, 'SELECT 1')).rejects.toThrow();
    }, 180_000);

    it('a second launched replica: EC2 asked again right before TerminateInstances; terminated once it says the instance is the server\u2019s', async () => {
      const m = await memberOn(26002);
      const [l] = await db.select().from(launchedInstances).where(eq(launchedInstances.serverId, m.serverId));
      // Between the plan and the termination, the instance stopped being this environment's (its VPC is
      // another's now): nothing is terminated, and the step says why.
      const saved = process.env.PGHERD_AWS_ENVIRONMENTS!;
      process.env.PGHERD_AWS_ENVIRONMENTS = JSON.stringify(
        (JSON.parse(saved) as { environment: string }[]).map((e) => ({ ...e, environment: 'elsewhere' })),
      );
      try {
        const refused = await runOperation(db, worker.queue, retireAction, { instanceIds: [m.id] }, { host: 'terminate' });
        expect(refused.op.status, steps(refused)).toBe('failed');
        expect(refused.targets[0]!.error).toMatch(/is elsewhere's .*: refused; the instance was not terminated/);
      } finally {
        process.env.PGHERD_AWS_ENVIRONMENTS = saved;
      }
      expect(await ec2State(l!.instanceId!)).not.toBe('terminated');
      expect(await db.select({ id: instances.id }).from(instances).where(eq(instances.id, m.id))).toHaveLength(1);
      const r = await runOperation(db, worker.queue, retireAction, { instanceIds: [m.id] }, { host: 'terminate' });
      expect(r.op.status, steps(r)).toBe('succeeded');
      expect(await db.select().from(instances).where(eq(instances.id, m.id))).toEqual([]);
    }, 180_000);

    it('a replica on a server kept: stopped, its data left, out of the inventory, its herd intact', async () => {
      const m = await memberOn(26003);
      const r = await runOperation(db, worker.queue, retireAction, { instanceIds: [m.id] });
      expect(r.op.status, steps(r)).toBe('succeeded');
      const [ret] = await db.select().from(retiredMembers).where(eq(retiredMembers.instanceId, m.id));
      expect(ret!.host).toMatch(/^kept/);
      const st = await runAsLab(labIdentity(), [
        'sh',
        '-c',
        '/usr/lib/postgresql/15/bin/pg_ctl -D "$1" status >/dev/null; echo $?; test -f "$1/PG_VERSION" && echo kept',
        'x',
        m.dataDirectory,
      ]);
      expect(st.stdout.trim().split('\n')).toEqual(['3', 'kept']);
      expect((await db.select().from(herds).where(eq(herds.id, herdId))).length).toBe(1);
      const left = await db.select().from(instances).where(eq(instances.herdId, herdId));
      expect(left.map((x) => x.role).sort()).toEqual(['primary', 'replica']);
    }, 120_000);
  });
});

describe('Spot', () => {
  const TOKEN = 'spot-events-token-0123456789';
  const notice = (instanceId: string) => ({
    version: '0',
    id: `e-${instanceId}`,
    'detail-type': 'EC2 Spot Instance Interruption Warning',
    source: 'aws.ec2',
    account: '123456789012',
    time: new Date().toISOString(),
    region: lab.aws!.region,
    resources: [`arn:aws:ec2:${lab.aws!.region}:123456789012:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, 'instance-action': 'terminate' },
  });
  const send = (instanceId: string, token = TOKEN, body: unknown = notice(instanceId)) =>
    receiveSpotNotice(db, worker.queue, { authorization: `Bearer ${token}`, body });
  let spotId: number;
  /** The operation, once it ended; its steps said when it does not end in time. */
  const ended = async (id: number) => {
    try {
      return (await waitForOperation(db, id, { timeoutMs: 150_000 })).op;
    } catch (err) {
      const st = await db.execute(
        sql`SELECT s.name, s.status, s.stdout_tail, s.stderr_tail FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id WHERE t.operation_id = ${id} ORDER BY s.id`,
      );
      throw new Error(`${(err as Error).message}: ${JSON.stringify(st.rows)}`);
    }
  };

  beforeAll(() => {
    process.env.PGHERD_SPOT_EVENTS_TOKEN = TOKEN;
  });

  it('a replica on spot capacity: priced from the spot price history, launched as a one-time spot request', async () => {
    const params = { instanceType: 'm6i.large', market: 'spot', ...where('s1', 26011) };
    const plan = await planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], params);
    expect(plan.targets[0]!.facts!.find((f) => f.label === 'New instance')!.value).toMatch(
      /\/h on spot \(.*\/month, saving \$[\d.]+\/month on the on-demand .*\); EC2 may take it back/,
    );
    const r = await runOperation(db, worker.queue, addReplicaAction, { herdIds: [herdId] }, params);
    expect(r.op.status, steps(r)).toBe('succeeded');
    const [l] = await db
      .select()
      .from(launchedInstances)
      .where(
        inArray(
          launchedInstances.targetId,
          r.targets.map((t) => t.id),
        ),
      );
    expect(l!.spot).toBe(true);
    const c = ec2Client(lab.aws!.region);
    try {
      const i = (await c.send(new DescribeInstancesCommand({ InstanceIds: [l!.instanceId!] }))).Reservations?.[0]?.Instances?.[0];
      expect(i?.InstanceLifecycle).toBe('spot');
    } finally {
      c.destroy();
    }
    spotId = l!.keptInstanceId!;
  }, 300_000);

  it('refuses notices it cannot trust or place, evacuating nothing', async () => {
    const [m] = await db.select().from(instances).where(eq(instances.id, spotId));
    const [s] = await db.select().from(servers).where(eq(servers.id, m!.serverId));
    expect((await receiveSpotNotice(db, worker.queue, { authorization: null, body: notice(s!.cloudInstanceId!) })).status).toBe(401);
    expect((await send(s!.cloudInstanceId!, 'not-the-events-token-at-all')).status).toBe(403);
    // A stranger learns nothing of the body's shape: the token is asked first.
    expect((await send(s!.cloudInstanceId!, 'not-the-events-token-at-all', { nothing: true })).status).toBe(403);
    expect(
      (await send(s!.cloudInstanceId!, TOKEN, { ...notice(s!.cloudInstanceId!), 'detail-type': 'EC2 Instance State-change Notification' }))
        .status,
    ).toBe(400);
    expect((await send('i-0000000000000dead')).status).toBe(404);
    // An agent speaks for its own instance only.
    const other = (await db.select().from(servers).where(eq(servers.hostname, primary().server)))[0]!;
    const agentToken = await createAgentToken(db, other.id, { id: null, username: 'test' });
    expect((await send(s!.cloudInstanceId!, agentToken)).status).toBe(403);
    expect(await db.select().from(spotInterruptions)).toEqual([]);
  });

  it('an agent\u2019s notice EC2 does not confirm is held: a forged one for its own on-demand instance moves nothing, audited', async () => {
    // The primary's host is on-demand capacity; its agent token is what a database superuser there can read.
    const p = (await db.select().from(servers).where(eq(servers.hostname, primary().server)))[0]!;
    const [m] = await db.select().from(instances).where(eq(instances.id, spotId));
    const [s] = await db.select().from(servers).where(eq(servers.id, m!.serverId));
    const before = {
      members: (await db.select().from(instances).where(eq(instances.herdId, herdId))).map((i) => [i.id, i.role, i.state]),
      operations: (await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM operations`)).rows[0]!.n,
    };
    const forged = await send(p.cloudInstanceId!, await createAgentToken(db, p.id, { id: null, username: 'test' }));
    expect(forged.status, JSON.stringify(forged.body)).toBe(409);
    expect(forged.body.error).toBe(
      `spot notice held, nothing moved: EC2 says ${p.cloudInstanceId!} is on-demand capacity, not spot: it has no interruption to give`,
    );
    // A spot instance's own agent, while EC2 has no interruption pending for it: held as well.
    const early = await send(s!.cloudInstanceId!, await createAgentToken(db, s!.id, { id: null, username: 'test' }));
    expect(early.status, JSON.stringify(early.body)).toBe(409);
    expect(early.body.error).toMatch(
      /^spot notice held, nothing moved: EC2 has no interruption pending for i-\w+ \(its spot request is not found/,
    );
    expect(await db.select().from(spotInterruptions)).toEqual([]);
    expect((await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM operations`)).rows[0]!.n).toBe(before.operations);
    expect((await db.select().from(instances).where(eq(instances.herdId, herdId))).map((i) => [i.id, i.role, i.state])).toEqual(
      before.members,
    );
    expect(await ec2State(p.cloudInstanceId!)).toBe('running');
    const audited = await db.execute<{ username: string; object_id: string; label: string }>(
      sql`SELECT username, object_id, object_label AS label FROM audit_entries WHERE action = 'spot.notice.refused' ORDER BY id`,
    );
    expect(audited.rows).toEqual([
      { username: `agent:${p.hostname}`, object_id: String(p.id), label: `${p.cloudInstanceId!}: ${forged.body.error!}` },
      { username: `agent:${s!.hostname}`, object_id: String(s!.id), label: `${s!.cloudInstanceId!}: ${early.body.error!}` },
    ]);
  });

  it('a notice for a spot replica while a seed holds the herd: the seed is preempted and cleaned, the read name leaves it within 10 s, a successor streams, the old one is retired and terminated', async () => {
    const [m] = await db.select().from(instances).where(eq(instances.id, spotId));
    const [s] = await db.select().from(servers).where(eq(servers.id, m!.serverId));
    expect(await answers(readName)).toContain(s!.address);
    // A new replica seeding from the repository onto a new instance holds the herd when the notice comes.
    const seedParams = { instanceType: 'm6i.large', ...where('r-pre', 26013), seed: 'repository' };
    const seedPlan = await planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], seedParams);
    const seedId = await submitPlanned(db, worker.queue, addReplicaAction, { herdIds: [herdId] }, seedParams, seedPlan);
    await waitFor(
      'the seed to be laying down its data',
      async () =>
        (
          await db.execute(sql`SELECT 1 FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id
                               WHERE t.operation_id = ${seedId} AND s.name LIKE 'seed it%' AND s.status = 'running'`)
        ).rows.length > 0,
      120_000,
    );
    const t0 = Date.now();
    const a = await send(s!.cloudInstanceId!);
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(a.body.operations).toHaveLength(1);
    await waitFor('the read name to leave the spot replica', async () => !(await answers(readName)).includes(s!.address), 10_000);
    const drained = Date.now() - t0;
    console.log(`spot replica: read name off it ${drained} ms after the notice, a seed preempted on the way`);
    expect(drained).toBeLessThan(10_000);
    const seed = await ended(seedId);
    expect(seed.status).toBe('preempted');
    const [seedTarget] = await db.select().from(operationTargets).where(eq(operationTargets.operationId, seedId));
    expect(seedTarget!.error).toContain(`preempted by operation #${a.body.operations![0]!}`);
    // Its folder taken away, its instance terminated, no member registered.
    const left = await runAsLab(labIdentity(), [
      'sh',
      '-c',
      'test -e "$1" && echo left || echo gone',
      'x',
      path.join(image().dataRoot, 'r-pre'),
    ]);
    expect(left.stdout.trim()).toBe('gone');
    const [launched] = await db.select().from(launchedInstances).where(eq(launchedInstances.targetId, seedTarget!.id));
    expect(launched!.terminatedAt).not.toBeNull();
    expect(await ec2State(launched!.instanceId!)).toBe('terminated');
    // The same notice again starts nothing more.
    const again = await send(s!.cloudInstanceId!);
    expect(again.body).toMatchObject({ duplicate: true, operations: a.body.operations });
    const op = await ended(a.body.operations![0]!);
    expect(op.status, JSON.stringify(op)).toBe('succeeded');
    console.log(`spot replica: successor streaming and the old one retired ${Date.now() - t0} ms after the notice`);
    expect(await db.select().from(instances).where(eq(instances.id, spotId))).toEqual([]);
    // No step pointed a read name back at the host EC2 takes back once it was drained.
    const dnsSteps = await db.execute<{ name: string; out: string }>(sql`
      SELECT s.name, s.stdout_tail AS out FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id
      WHERE t.operation_id = ${op.id} AND s.name LIKE '%DNS%' OR (t.operation_id = ${op.id} AND s.name LIKE 'drain%') ORDER BY s.id`);
    expect(dnsSteps.rows.length).toBeGreaterThan(0);
    for (const d of dnsSteps.rows) expect(d.out.split('now answers:')[1] ?? '', d.name).not.toContain(s!.address);
    const successor = (
      await db
        .select()
        .from(instances)
        .where(sql`herd_id = ${herdId} AND id > ${spotId}`)
    )[0]!;
    expect(successor).toMatchObject({ role: 'replica', state: 'running' });
    const [ss] = await db.select().from(servers).where(eq(servers.id, successor.serverId));
    expect(await answers(readName)).toContain(ss!.address);
    const [l] = await db.select().from(launchedInstances).where(eq(launchedInstances.keptInstanceId, successor.id));
    expect(l!.spot).toBe(true);
    expect(await ec2State(s!.cloudInstanceId!)).toBe('terminated');
    const [row] = await db.select().from(spotInterruptions);
    expect(row).toMatchObject({ cloudInstanceId: s!.cloudInstanceId, source: 'eventbridge', operationId: a.body.operations![0] });
  }, 300_000);

  it('a notice a spot replica\u2019s agent relays from its metadata, once EC2 has its interruption pending: evacuated', async () => {
    const [l] = await db
      .select()
      .from(launchedInstances)
      .where(sql`spot AND kept_instance_id IN (SELECT id FROM instances WHERE herd_id = ${herdId})`);
    const [m] = await db.select().from(instances).where(eq(instances.id, l!.keptInstanceId!));
    const [s] = await db.select().from(servers).where(eq(servers.id, m!.serverId));
    const id = s!.cloudInstanceId!;
    // The instance's metadata (EC2 writes the notice there) and pgherd's endpoint as the route answers it.
    const imds = await listen((req, res) => {
      const at = req.url ?? '';
      const body =
        req.method === 'PUT' && at === '/latest/api/token'
          ? 'imds-session'
          : req.headers['x-aws-ec2-metadata-token'] !== 'imds-session'
            ? null
            : at === '/latest/meta-data/spot/instance-action'
              ? JSON.stringify({ action: 'terminate', time: new Date(Date.now() + 120_000).toISOString() })
              : at === '/latest/meta-data/instance-id'
                ? id
                : at === '/latest/meta-data/placement/region'
                  ? lab.aws!.region
                  : null;
      res.writeHead(body === null ? (at.startsWith('/latest/meta-data/') ? 404 : 401) : 200).end(body ?? '');
    });
    const endpoint = await listen((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        void receiveSpotNotice(db, worker.queue, { authorization: req.headers.authorization ?? null, body: JSON.parse(text) }).then((a) =>
          res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body)),
        );
      });
    });
    const tokenFile = path.join(mkdtempSync(path.join(tmpdir(), 'agent-')), 'token');
    writeFileSync(tokenFile, await createAgentToken(db, s!.id, { id: null, username: 'test' }), { mode: 0o600 });
    const cfg = agentConfigSchema.parse({ server: endpoint.url, tokenFile, spot: { metadataUrl: imds.url } });
    const faults = JSON.parse(readFileSync(lab.aws!.capacityFile, 'utf8')) as Record<string, unknown>;
    // EC2 (the lab's front) marks the instance's spot request for termination, as it does with the warning.
    writeFileSync(lab.aws!.capacityFile, JSON.stringify({ ...faults, interruptions: { [id]: 'terminate' } }));
    try {
      const relayed = await relaySpotNotice(cfg, readFileSync(tokenFile, 'utf8').trim());
      expect(relayed?.status, relayed?.body).toBe(200);
      const a = JSON.parse(relayed!.body) as { operations?: number[] };
      expect(a.operations).toHaveLength(1);
      const op = await ended(a.operations![0]!);
      expect(op.status, JSON.stringify(op)).toBe('succeeded');
    } finally {
      imds.close();
      endpoint.close();
      writeFileSync(lab.aws!.capacityFile, JSON.stringify(faults));
    }
    expect(await db.select().from(instances).where(eq(instances.id, m!.id))).toEqual([]);
    expect(await ec2State(id)).toBe('terminated');
    const [row] = await db.select().from(spotInterruptions).where(eq(spotInterruptions.cloudInstanceId, id));
    expect(row).toMatchObject({ source: 'agent', instanceAction: 'terminate' });
  }, 300_000);

  it('a notice for the primary\u2019s instance: switched over within 30 s, no acknowledged commit lost, its successor streaming from the new primary', async () => {
    const old = primary();
    const [p] = await db
      .select()
      .from(instances)
      .where(sql`herd_id = ${herdId} AND role = 'primary'`);
    const [ps] = await db.select().from(servers).where(eq(servers.id, p!.serverId));
    const first = members().find((i) => i.role === 'replica')!;
    await query(old.dsn, 'CREATE TABLE IF NOT EXISTS acked (n int PRIMARY KEY)');
    await waitFor(
      'the table on the replica',
      async () => (await query(first.dsn, `SELECT to_regclass('acked') IS NOT NULL AS ok`))[0]!.ok === true,
      10_000,
    );
    const writer = startWriter(old.dsn, 'acked', { everyMs: 20 });
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    const a = await send(ps!.cloudInstanceId!);
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    await waitFor(
      'the replica to be the primary',
      async () => !(await query<{ rec: boolean }>(first.dsn, 'SELECT pg_is_in_recovery() AS rec'))[0]!.rec,
      30_000,
    );
    const switched = Date.now() - t0;
    await writer.stop();
    const w = { acknowledged: writer.acked };
    console.log(`spot primary: switched over ${switched} ms after the notice; ${w.acknowledged.length} commits acknowledged`);
    expect(switched).toBeLessThan(30_000);
    const have = new Set((await query<{ n: number }>(first.dsn, 'SELECT n FROM acked')).map((r) => r.n));
    expect(w.acknowledged.filter((n) => !have.has(n))).toEqual([]);
    const op = await ended(a.body.operations![0]!);
    expect(op.status, JSON.stringify(op)).toBe('succeeded');
    const now = await db.select().from(instances).where(eq(instances.herdId, herdId));
    expect(now.find((i) => i.id === p!.id)).toBeUndefined();
    const newPrimary = now.find((i) => i.role === 'primary')!;
    expect(now.filter((i) => i.role === 'replica').every((i) => i.upstreamInstanceId === newPrimary.id)).toBe(true);
    const [row] = await db.select().from(spotInterruptions).where(eq(spotInterruptions.cloudInstanceId, ps!.cloudInstanceId!));
    expect(row).toMatchObject({ source: 'eventbridge', instanceAction: 'terminate' });
  }, 300_000);
});

describe('Auto-replace', () => {
  /** The herd's running replicas on EC2 instances, with what stopping them takes. */
  const replicas = async () =>
    (
      await db.execute<{ id: number; data_directory: string; pg_version: number; instance_id: string; label: string }>(sql`
        SELECT i.id::float8 AS id, i.data_directory, i.pg_version, s.cloud_instance_id AS instance_id, s.hostname || ':' || i.port AS label
        FROM instances i JOIN servers s ON s.id = i.server_id
        WHERE i.herd_id = ${herdId} AND i.role = 'replica' AND i.state = 'running' AND s.cloud_instance_id IS NOT NULL ORDER BY i.id`)
    ).rows;
  const pgCtl = (r: { pg_version: number; data_directory: string }, ...args: string[]) =>
    runAsLab(labIdentity(), [`/usr/lib/postgresql/${r.pg_version}/bin/pg_ctl`, '-D', r.data_directory, ...args]);
  const ec2 = () => ec2Client(lab.aws!.region);
  const decisionsOf = (id: number) => db.select().from(autoReplaceDecisions).where(eq(autoReplaceDecisions.instanceId, id));
  let environmentId: number;
  let flapper = 0;

  beforeAll(async () => {
    environmentId = (await db.select().from(herds).where(eq(herds.id, herdId)))[0]!.environmentId;
  });

  it('off without a policy: a replica whose instance EC2 stopped and whose Postgres is down is left alone', async () => {
    const [r] = await replicas();
    await pgCtl(r!, '-m', 'immediate', 'stop');
    await ec2().send(new StopInstancesCommand({ InstanceIds: [r!.instance_id] }));
    try {
      await refreshFleet(db, { ids: [r!.id] });
      // Silent since before any policy's time: were there a policy, this is a replacement.
      await db.execute(sql`UPDATE instances SET answered_at = now() - interval '1 hour' WHERE id = ${r!.id}`);
      await new Promise((res) => setTimeout(res, 5000));
      expect(await decisionsOf(r!.id)).toEqual([]);
    } finally {
      await ec2().send(new StartInstancesCommand({ InstanceIds: [r!.instance_id] }));
      await pgCtl(r!, '-w', '-l', path.join(path.dirname(r!.data_directory), 'auto-replace-test.log'), 'start');
      await refreshFleet(db, { ids: [r!.id] });
    }
  }, 120_000);

  it('a flapping replica (up a moment every 20 s) is never replaced, though EC2 says its instance is impaired', async () => {
    await db.insert(autoReplacePolicies).values({ environmentId, afterSeconds: 30, perHour: 2 });
    const [r] = await replicas();
    flapper = r!.id;
    // EC2's status checks fail for it (the lab's front says so), and its Postgres goes up and down.
    const faults = JSON.parse(readFileSync(lab.aws!.capacityFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(lab.aws!.capacityFile, JSON.stringify({ ...faults, impaired: [r!.instance_id] }));
    const log = path.join(path.dirname(r!.data_directory), 'auto-replace-test.log');
    const flapping = { on: true };
    // What the refresher does every few seconds (the test's worker has it off): observe the herd.
    const observing = (async () => {
      while (flapping.on) {
        await refreshFleet(db, { ids: [r!.id] });
        await new Promise((res) => setTimeout(res, 1000));
      }
    })();
    try {
      for (let round = 0; round < 2; round++) {
        await pgCtl(r!, '-m', 'immediate', 'stop');
        await new Promise((res) => setTimeout(res, 17_000));
        await pgCtl(r!, '-w', '-l', log, 'start');
        await new Promise((res) => setTimeout(res, 3000));
      }
    } finally {
      flapping.on = false;
      await observing;
      writeFileSync(lab.aws!.capacityFile, JSON.stringify(faults));
    }
    // 40 s of flapping, 17 s down at a time: should an observation miss an up moment and make it look
    // silent for the policy's 30 s, the watch that follows sees it come back. Never replaced.
    const ds = await decisionsOf(r!.id);
    expect(ds.filter((d) => d.verdict !== 'held')).toEqual([]);
    for (const d of ds) expect(d.reason).toMatch(/came back while watched/);
    expect((await db.select().from(instances).where(eq(instances.id, r!.id)))[0]).toMatchObject({ state: 'running' });
  }, 180_000);

  it('replicas EC2 terminated and whose Postgres died: replaced one at a time, audited with the evidence, the webhook told; the budget stops the third in the hour', async () => {
    const hook = await listen((_req, res) => res.writeHead(204).end());
    const [w] = await db
      .insert(webhooks)
      .values({ name: 'auto-replace', url: hook.url, secret: 'auto-replace-secret-0123456789', events: ['herd.auto_replaced'] })
      .returning();
    // Three replicas on EC2 instances to lose (a new one added for the third). The one that flapped is
    // among them: left to a person for an hour should it have come back while watched, else lost like the others.
    const lose = async () => (await replicas()).sort((a, b) => Number(b.id === flapper) - Number(a.id === flapper));
    for (let n = (await lose()).length; n < 3; n++) {
      const add = await runOperation(
        db,
        worker.queue,
        addReplicaAction,
        { herdIds: [herdId] },
        {
          instanceType: 'm6i.large',
          ...where(`r-auto-${n}`, 26020 + n),
          seed: 'repository',
        },
      );
      expect(add.op.status, steps(add)).toBe('succeeded');
    }
    const dead = (await lose()).slice(0, 3);
    expect(dead.length, 'three replicas on EC2 to lose').toBe(3);
    // As the refresher would have: each answered a moment ago.
    await refreshFleet(db, { ids: dead.map((r) => r.id) });
    const t0 = Date.now();
    for (const r of dead) {
      await pgCtl(r, '-m', 'immediate', 'stop');
      await ec2().send(new TerminateInstancesCommand({ InstanceIds: [r.instance_id] }));
    }
    await refreshFleet(db, { ids: dead.map((r) => r.id) });
    const replaced = async (n: number) =>
      waitFor(
        `${n} replacement(s) to succeed`,
        async () => {
          const rows = (
            await db.execute<{ id: number; status: string }>(sql`
              SELECT o.id, o.status FROM auto_replace_decisions d JOIN operations o ON o.id = d.operation_id
              WHERE d.environment_id = ${environmentId} AND d.verdict = 'replace'`)
          ).rows;
          const bad = rows.find((x) => ['failed', 'partial', 'cancelled', 'interrupted', 'preempted'].includes(x.status));
          if (bad) {
            const st = await db.execute(
              sql`SELECT s.name, s.status, right(s.stderr_tail, 400) AS err, t.error FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id
                  WHERE t.operation_id = ${bad.id} ORDER BY s.id`,
            );
            throw new Error(`replacement #${bad.id} ${bad.status}: ${JSON.stringify(st.rows)}`);
          }
          return rows.filter((x) => x.status === 'succeeded').length >= n;
        },
        240_000,
      );
    await replaced(1);
    console.log(
      `auto-replace: the first replica's successor streaming ${Date.now() - t0} ms after its instance was terminated (policy: 30 s silent)`,
    );
    await replaced(2);
    console.log(`auto-replace: the second ${Date.now() - t0} ms after`);
    // The third: held, the budget spent (2 an hour), said once.
    const third = await waitFor(
      'the third to be held by the budget',
      async () => {
        for (const r of dead) {
          const ds = await decisionsOf(r.id);
          const held = ds.find((d) => d.verdict === 'held' && /budget is spent/.test(d.reason));
          if (held && !ds.some((d) => d.verdict === 'replace')) return { r, held };
        }
        return undefined;
      },
      60_000,
    );
    await new Promise((res) => setTimeout(res, 5000));
    const heldRows = (await decisionsOf(third.r.id)).filter((d) => /budget is spent/.test(d.reason));
    expect(heldRows, 'a held decision is written once while its reason holds').toHaveLength(1);
    expect((await db.select().from(instances).where(eq(instances.id, third.r.id)))[0]).toBeDefined();
    // The two replaced: their rows retired, a successor each, streaming; the evidence audited.
    const done = dead.filter((r) => r.id !== third.r.id);
    for (const r of done) {
      expect(await db.select().from(instances).where(eq(instances.id, r.id))).toEqual([]);
      expect(await db.select().from(retiredMembers).where(eq(retiredMembers.instanceId, r.id))).toHaveLength(1);
      const [d] = (await decisionsOf(r.id)).filter((x) => x.verdict === 'replace');
      // The row keeps its label; instance_id is set null once it is retired: found by the label instead.
      expect(d).toBeUndefined();
    }
    const decided = await db
      .select()
      .from(autoReplaceDecisions)
      .where(sql`environment_id = ${environmentId} AND verdict = 'replace'`);
    expect(decided.map((d) => d.label).sort()).toEqual(done.map((r) => r.label).sort());
    for (const d of decided) {
      expect(d.reason).toMatch(/EC2 says i-[0-9a-f]+ is (terminated|shutting-down)/);
      expect(d.reason).toMatch(/no server runs on its data directory/);
      expect(d.evidence).toMatchObject({ afterS: 30 });
      const audit = await db.execute(
        sql`SELECT 1 FROM audit_entries WHERE action = 'auto_replace.replace' AND object_label LIKE ${`${d.label}:%`}`,
      );
      expect(audit.rows).toHaveLength(1);
    }
    const running = await db.execute<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM instances WHERE herd_id = ${herdId} AND role = 'replica' AND state = 'running'`,
    );
    expect(running.rows[0]!.n).toBeGreaterThanOrEqual(dead.length - 1);
    await waitFor(
      'the webhook to be told twice',
      async () =>
        (await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, w!.id))).filter(
          (x) => x.event === 'herd.auto_replaced',
        ).length === 2,
      30_000,
    );
    hook.close();
    await db.delete(autoReplacePolicies);
  }, 420_000);
});
