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
import { runOperation, startTestWorker, submitPlanned, waitForOperation } from '@/lib/testing/operations';
import { planOperation } from '@/lib/engine/plan';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { configureBackupsAction } from '@/lib/actions/backups/configure-backups.action';
import { backupAction } from '@/lib/actions/backups/backup.action';
import { addReplicaAction } from '@/lib/actions/grow/add-replica.action';
import { retireAction } from '@/lib/actions/grow/retire.action';
import { memberConfig, memberConfigPath, memberDirs, restoreCommand } from '@/lib/fleet/backups/pgbackrest';
import { herdPolicies } from '@/lib/fleet/backups/policy';
import { secretsOf } from '@/lib/actions/steps/backup-steps';
import { ec2Client } from '@/lib/adapters/aws/config';
import { consoleFingerprints, consoleText } from '@/lib/adapters/aws/ec2-launch';
import { discoverEc2, discoveryConfig } from '@/lib/features/discovery/discovery';
import { setting } from '@/lib/settings/settings';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-provision-lab.json');
const ENV = 'pv';
const RUNS = 4;
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
      const plainRun = async () => {
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
        const tLaunched = performance.now();
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
            secretsOf({ environment: ENV, name: 'h1' }),
          ),
          conf,
        ]);
        await runAsLab(id, ['mkdir', '-m', '0700', dir]);
        await runAsLab(id, ['pgbackrest', `--config=${conf}`, `--stanza=${ENV}-h1`, '--type=standby', 'restore']);
        const tRestored = performance.now();
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
        const tStarted = performance.now();
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
        const s2 = (a: number, b: number) => ((b - a) / 1000).toFixed(2);
        log(
          `plain ${k + 1}: ${((plain[k] ?? 0) / 1000).toFixed(2)} s (launched and its key read ${s2(t0, tLaunched)}; restored ${s2(tLaunched, tRestored)}; started ${s2(tRestored, tStarted)}; streaming, caught up ${s2(tStarted, t0 + (plain[k] ?? 0))})`,
        );
        await runAsLab(id, [`${bin}/pg_ctl`, '-D', dir, '-m', 'immediate', 'stop']);
        await runAsLab(id, ['rm', '-rf', path.dirname(dir)]);
        await ec2.send(new TerminateInstancesCommand({ InstanceIds: [iid] }));
        await sleep(1500);

        // pgherd's: Add replica, confirmed as a person would, from confirm to streaming.
      };
      const pgherdRun = async () => {
        // The confirmation page's plan, then the clock: from confirm (the submit) to the operation's end.
        const params = {
          instanceType: 'm6i.large',
          port: String(26300 + k),
          dataDirectory: path.join(image.dataRoot, `pgherd-${k}`, 'data'),
        };
        const tp = performance.now();
        const plan = await planOperation(db, SYSTEM_ACCESS, addReplicaAction, [herdId], params);
        const planMs = performance.now() - tp;
        const t1 = performance.now();
        const opId = await submitPlanned(db, worker.queue, addReplicaAction, { herdIds: [herdId] }, params, plan);
        const submitMs = performance.now() - t1;
        const r = await ok('add replica', { plan, ...(await waitForOperation(db, opId, { t0: t1 })) });
        const [times] = (
          await db.execute<{ started: string; ended: string }>(sql`
            SELECT extract(epoch FROM (SELECT min(started_at) FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id WHERE t.operation_id = ${opId}) - o.created_at) * 1000 AS started,
                   extract(epoch FROM o.finished_at - (SELECT max(finished_at) FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id WHERE t.operation_id = ${opId})) * 1000 AS ended
            FROM operations o WHERE o.id = ${opId}`)
        ).rows;
        log(
          `pgherd ${k + 1}: the page's plan ${planMs.toFixed(0)} ms (not counted); submit ${submitMs.toFixed(0)} ms; created to its first step ${Number(times?.started ?? 0).toFixed(0)} ms; last step to its end ${Number(times?.ended ?? 0).toFixed(0)} ms`,
        );
        pgherd.push(performance.now() - t1);
        log(
          `pgherd ${k + 1}: ${((pgherd[k] ?? 0) / 1000).toFixed(2)} s (${r.steps
            .filter((s) => s.finishedAt && s.finishedAt.getTime() - s.startedAt.getTime() >= 20)
            .map((s) => `${s.name} ${((s.finishedAt!.getTime() - s.startedAt.getTime()) / 1000).toFixed(2)}`)
            .join('; ')}; ${
            r.steps
              .find((s) => s.name.startsWith('start it'))
              ?.stdoutTail.trim()
              .split('\n')
              .pop() ?? ''
          })`,
        );
        const [m] = await db
          .select()
          .from(instances)
          .where(eq(instances.port, 26300 + k));
        await ok('retire', await runOperation(db, worker.queue, retireAction, { instanceIds: [m!.id] }, { host: 'terminate' }));
      };
      // Alternately first: each pair meets the herd's WAL as the other left it.
      if (k % 2 === 0) {
        await plainRun();
        await pgherdRun();
      } else {
        await pgherdRun();
        await plainRun();
      }
    }
    ec2.destroy();
    // Each pair met the herd as the other left it: Postgres's switch from the archive to streaming takes
    // 0.4 s or about 3 s depending on where the WAL stands, in either path. The pair's ratio says pgherd's cost.
    const ratios = plain.map((x, i) => (pgherd[i] ?? 0) / x);
    const sorted = [...ratios].sort((a, b) => a - b);
    const mid = (sorted[Math.floor((sorted.length - 1) / 2)]! + sorted[Math.ceil((sorted.length - 1) / 2)]!) / 2;
    const secs = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(2)).join(', ');
    return [
      `provisioning a replica on a new EC2 instance from the repository (${(bytes / 1e6).toFixed(0)} MB, ${RUNS} pairs, alternately first):`,
      `  plain script (RunInstances, waiter, console key, pgbackrest restore --type=standby, pg_ctl start, streaming): ${secs(plain)} s (median ${(median(plain) / 1000).toFixed(2)})`,
      `  pgherd Add replica (confirm to streaming, registered, read name): ${secs(pgherd)} s (median ${(median(pgherd) / 1000).toFixed(2)})`,
      `  per pair: ${ratios.map((r) => `${r.toFixed(2)}x`).join(', ')}; median ${mid.toFixed(2)}x (target <= 1.2x: ${mid <= 1.2 ? 'met' : 'NOT met'})`,
    ];
  } finally {
    await worker.close();
    await pool.end();
    await stopLab(FILE);
  }
}
