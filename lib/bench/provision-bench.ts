// Provisioning a replica at the speed of its parts: pgherd's Add replica onto a new EC2 instance (the
// engine, the launch with its host key read from the console, SSH, the claim, pgBackRest's standby
// restore, the settings, the start, streaming and caught up, the registration and the read name), from
// confirm to streaming, beside a plain script doing the same steps by hand in the same run (RunInstances
// and the SDK's waiter, the console's host key, `pgbackrest restore --type=standby`, the settings,
// `pg_ctl start`, polling pg_stat_wal_receiver). Target: pgherd at most 1.2x the plain script.
// Lab of its own: 127.0.74.x, moto behind the lab's EC2 front, a backup host, about 100 MB of data.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { DescribeInstancesCommand, RunInstancesCommand, TerminateInstancesCommand, waitUntilInstanceRunning } from '@aws-sdk/client-ec2';
import { eq, sql } from 'drizzle-orm';
import { instances, servers } from '@/db/schema';
import { PROJECT_ROOT, startLab, stopLab } from '@/lib/lab/lab';
import { seededDatabase } from '@/lib/lab/seed';
import { query } from '@/lib/lab/postgres';
import { labIdentity, run as runAsLab } from '@/lib/lab/proc';
import { runOperation, startTestWorker } from '@/lib/testing/operations';
import { configureBackupsAction } from '@/lib/actions/backups/configure-backups.action';
import { backupAction } from '@/lib/actions/backups/backup.action';
import { addReplicaAction } from '@/lib/actions/grow/add-replica.action';
import { retireAction } from '@/lib/actions/grow/retire.action';
import { memberConfig, memberConfigPath, memberDirs, restoreCommand } from '@/lib/fleet/backups/pgbackrest';
import { herdPolicies } from '@/lib/fleet/backups/policy';
import { secretsOf } from '@/lib/actions/backups/backup-steps';
import { ec2Client } from '@/lib/adapters/aws/config';
import { consoleFingerprints, consoleText } from '@/lib/adapters/aws/ec2-launch';
import { discoverEc2, discoveryConfig } from '@/lib/features/discovery/discovery';
import { setting } from '@/lib/settings/settings';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-provision-lab.json');
const ENV = 'pv';
const RUNS = 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function provisionBench(log: (m: string) => void): Promise<string[]> {
  const lab = await startLab({
    file: FILE,
    fleet: { environments: [ENV], herds: ['h1'], replicas: 1, sites: ['dc-a', 'dc-b'], subnet: '127.0.74' },
    ldap: false,
    pgbouncer: [],
    log,
  });
  const { db, pool } = await seededDatabase(lab, 8);
  const worker = await startTestWorker(lab, 'bench-provision', 2);
  const id = labIdentity();
  const bin = setting('PGHERD_PG_BIN');
  const region = lab.aws!.region;
  try {
    const primary = lab.instances.find((i) => i.role === 'primary')!;
    const herdId = (await db.execute<{ id: number }>(sql`SELECT id FROM herds WHERE name = 'h1'`)).rows[0]!.id;
    const cfg = discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [region], tags: lab.aws!.discoveryTags }) })!;
    await discoverEc2(db, cfg, (r) => ec2Client(r));
    await query(primary.dsn, `CREATE TABLE bulk AS SELECT g AS id, repeat(md5(g::text), 20) AS pad FROM generate_series(1, 150000) g`);
    const ok = async (what: string, r: Awaited<ReturnType<typeof runOperation>>) => {
      if (r.op.status !== 'succeeded')
        throw new Error(`${what}: ${r.op.status} ${JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-300)]))}`);
      return r;
    };
    await ok('configure', await runOperation(db, worker.queue, configureBackupsAction, { herdIds: [herdId] }));
    await ok('full backup', await runOperation(db, worker.queue, backupAction, { herdIds: [herdId] }, { type: 'full' }));
    const [size] = await query<{ n: string }>(primary.dsn, 'SELECT sum(pg_database_size(oid))::text AS n FROM pg_database');
    const bytes = Number(size!.n);
    const image = lab.backup!.images.find((i) => i.environment === ENV)!;
    const policy = (await herdPolicies(db, [herdId])).get(herdId)!;
    const [source] = await db.select().from(servers).where(eq(servers.hostname, primary.server));
    const ec2 = ec2Client(region);
    const like = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [source!.cloudInstanceId!] }))).Reservations![0]!
      .Instances![0]!;

    const plain: number[] = [];
    const pgherd: number[] = [];
    for (let k = 0; k < RUNS; k++) {
      // Plain: the same steps by hand, as a script would run them.
      const dir = path.join(image.dataRoot, `plain-${k}`, 'data');
      const port = 26200 + k;
      const t0 = performance.now();
      const launched = await ec2.send(
        new RunInstancesCommand({
          ImageId: like.ImageId,
          InstanceType: 'm6i.large',
          MinCount: 1,
          MaxCount: 1,
          SubnetId: like.SubnetId,
          ClientToken: randomUUID(),
        }),
      );
      const iid = launched.Instances![0]!.InstanceId!;
      await waitUntilInstanceRunning({ client: ec2, maxWaitTime: 300, minDelay: 1, maxDelay: 1 }, { InstanceIds: [iid] });
      const running = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [iid] }))).Reservations![0]!.Instances![0]!;
      const address = running.PrivateIpAddress!;
      while (!consoleFingerprints(await consoleText(ec2, iid)).ed25519) await sleep(1000);
      const conf = memberConfigPath(dir);
      const socket = path.join(path.dirname(dir), 'run');
      await runAsLab(id, ['mkdir', '-p', ...memberDirs(dir), socket]);
      await runAsLab(id, [
        'sh',
        '-c',
        'umask 077; printf "%s\\n" "$1" > "$2"',
        'x',
        memberConfig(
          policy.policy,
          `${ENV}-h1`,
          { label: 'plain', host: address, sshPort: 22, sshUser: id.user, port, dataDirectory: dir, socketDirectory: socket },
          secretsOf(ENV),
        ),
        conf,
      ]);
      await runAsLab(id, ['mkdir', '-m', '0700', dir]);
      await runAsLab(id, ['pgbackrest', `--config=${conf}`, `--stanza=${ENV}-h1`, '--type=standby', 'restore']);
      const settings = [
        `port = ${port}`,
        `listen_addresses = '${address}'`,
        `unix_socket_directories = '${socket}'`,
        `primary_conninfo = 'host=${primary.address} port=${primary.port} user=postgres application_name=plain-${k}'`,
        `restore_command = '${restoreCommand(dir, `${ENV}-h1`)}'`,
        `ssl_cert_file = '${image.tls!.certFile}'`,
        `ssl_key_file = '${image.tls!.keyFile}'`,
      ].join('\n');
      await runAsLab(id, ['sh', '-c', 'printf "%s\\n" "$1" >> "$2/postgresql.auto.conf"', 'x', settings, dir]);
      await runAsLab(id, [`${bin}/pg_ctl`, '-D', dir, '-l', path.join(dir, 'pg_ctl.log'), '-w', 'start']);
      const dsn = `postgres://postgres@${address}:${port}/postgres`;
      const [target] = await query<{ l: string }>(primary.dsn, 'SELECT pg_current_wal_lsn()::text AS l');
      for (;;) {
        const [w] = await query<{ ok: boolean }>(
          dsn,
          `SELECT (SELECT status FROM pg_stat_wal_receiver) = 'streaming' AND pg_last_wal_replay_lsn() >= $1::pg_lsn - 16777216 AS ok`,
          [target!.l],
        ).catch(() => [{ ok: false }]);
        if (w?.ok) break;
        await sleep(200);
      }
      plain.push(performance.now() - t0);
      log(`plain ${k + 1}: ${((plain[k] ?? 0) / 1000).toFixed(2)} s`);
      await runAsLab(id, [`${bin}/pg_ctl`, '-D', dir, '-m', 'immediate', 'stop']);
      await runAsLab(id, ['rm', '-rf', path.dirname(dir)]);
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [iid] }));
      await sleep(1500);

      // pgherd's: Add replica, confirmed as a person would, from confirm to streaming.
      const t1 = performance.now();
      const r = await ok(
        'add replica',
        await runOperation(
          db,
          worker.queue,
          addReplicaAction,
          { herdIds: [herdId] },
          { instanceType: 'm6i.large', port: String(26300 + k), dataDirectory: path.join(image.dataRoot, `pgherd-${k}`, 'data') },
        ),
      );
      pgherd.push(performance.now() - t1);
      log(
        `pgherd ${k + 1}: ${((pgherd[k] ?? 0) / 1000).toFixed(2)} s (${r.steps
          .filter((s) => s.finishedAt)
          .map((s) => `${s.name} ${((s.finishedAt!.getTime() - s.startedAt.getTime()) / 1000).toFixed(2)}`)
          .join('; ')})`,
      );
      const [m] = await db
        .select()
        .from(instances)
        .where(eq(instances.port, 26300 + k));
      await ok('retire', await runOperation(db, worker.queue, retireAction, { instanceIds: [m!.id] }, { host: 'terminate' }));
    }
    ec2.destroy();
    const p = median(plain);
    const g = median(pgherd);
    return [
      `provisioning a replica on a new EC2 instance from the repository (${(bytes / 1e6).toFixed(0)} MB, ${RUNS} runs each, medians):`,
      `  plain script (RunInstances, waiter, console key, pgbackrest restore --type=standby, pg_ctl start, streaming): ${(p / 1000).toFixed(2)} s`,
      `  pgherd Add replica (confirm to streaming, registered, read name): ${(g / 1000).toFixed(2)} s = ${(g / p).toFixed(2)}x (target <= 1.2x: ${g / p <= 1.2 ? 'met' : 'NOT met'})`,
    ];
  } finally {
    await worker.close();
    await pool.end();
    await stopLab(FILE);
  }
}
