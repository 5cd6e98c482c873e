// Backups at the speed of the tool: pgherd's Restore to a new herd (the engine, SSH, every check of an
// empty server, the restored cluster's own settings, the first write, the registration) beside a plain
// `pgbackrest restore` of the same backup run by hand on the same scratch server, then started and
// written to. Target: pgherd's restore at most 1.2x the plain one. Also: a restore drill's RTO and RPO,
// and the archive's age (the measured RPO) sampled every second under a pgbench load (target: p99 at
// most 60 s).
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { sql } from 'drizzle-orm';
import { PROJECT_ROOT, startLab, stopLab } from '@/lib/lab/lab';
import { seededDatabase } from '@/lib/lab/seed';
import { query } from '@/lib/lab/postgres';
import { asLabUser, labIdentity, run as runAsLab } from '@/lib/lab/proc';
import { runOperation, startTestWorker } from '@/lib/testing/operations';
import { configureBackupsAction } from '@/lib/actions/backups/configure-backups.action';
import { backupAction } from '@/lib/actions/backups/backup.action';
import { restoreAction } from '@/lib/actions/backups/restore.action';
import { restoreDrillAction } from '@/lib/actions/backups/restore-drill.action';
import { memberConfig, memberConfigPath, memberDirs } from '@/lib/fleet/backups/pgbackrest';
import { herdPolicies } from '@/lib/fleet/backups/policy';
import { secretsOf } from '@/lib/actions/steps/backup-steps';
import { refreshFleet } from '@/lib/fleet/refresher';
import { setting } from '@/lib/settings/settings';

const FILE = path.join(PROJECT_ROOT, '.lab', 'bench-backups-lab.json');
const RUNS = 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? 0;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;

export async function backupsBench(log: (m: string) => void): Promise<string[]> {
  const lab = await startLab({
    file: FILE,
    fleet: { environments: ['bench'], herds: ['h1'], replicas: 1, sites: ['dc-a', 'dc-b'], subnet: '127.0.25' },
    dns: false,
    ldap: false,
    aws: false,
    pgbouncer: [],
    log,
  });
  const { db, pool } = await seededDatabase(lab, 8);
  const worker = await startTestWorker(lab, 'bench-backups', 2);
  const id = labIdentity();
  const bin = setting('PGHERD_PG_BIN');
  try {
    const primary = lab.instances.find((i) => i.role === 'primary')!;
    const herdId = (await db.execute<{ id: number }>(sql`SELECT id FROM herds WHERE name = 'h1'`)).rows[0]!.id;
    log('pgbench -i -s 20 (about 300 MB) on the primary');
    await runAsLab(id, [
      `${bin}/pgbench`,
      '-i',
      '-s',
      '20',
      '-q',
      '-h',
      primary.address,
      '-p',
      String(primary.port),
      '-U',
      'postgres',
      'postgres',
    ]);
    const ok = async (what: string, r: Awaited<ReturnType<typeof runOperation>>) => {
      if (r.op.status !== 'succeeded')
        throw new Error(`${what}: ${r.op.status} ${JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-300)]))}`);
      return r;
    };
    await ok('configure', await runOperation(db, worker.queue, configureBackupsAction, { herdIds: [herdId] }));
    await ok('full backup', await runOperation(db, worker.queue, backupAction, { herdIds: [herdId] }, { type: 'full' }));
    const [size] = await query<{ n: string }>(primary.dsn, 'SELECT sum(pg_database_size(oid))::text AS n FROM pg_database');
    const bytes = Number(size!.n);

    const scratch = lab.backup!.scratch[0]!;
    const serverId = (await db.execute<{ id: number }>(sql`SELECT id FROM servers WHERE hostname = ${scratch.server}`)).rows[0]!.id;
    const policy = (await herdPolicies(db, [herdId])).get(herdId)!;
    const plain: number[] = [];
    const pgherd: number[] = [];
    for (let k = 0; k < RUNS; k++) {
      // Plain: the same restore by hand, as the lab user on the scratch server: pgbackrest restore, pg_ctl
      // start, then wait for the first write (the same work, without pgherd's checks, engine and SSH).
      const dir = path.join(scratch.dataRoot, `plain-${k}`, 'data');
      const conf = memberConfigPath(dir);
      const port = 26000 + k;
      const text = memberConfig(
        policy.policy,
        'bench-h1',
        {
          label: 'plain',
          host: scratch.address,
          sshPort: 22,
          sshUser: id.user,
          port,
          dataDirectory: dir,
          socketDirectory: path.join(path.dirname(dir), 'run'),
        },
        secretsOf({ environment: 'bench', name: 'h1' }),
      );
      await runAsLab(id, ['mkdir', '-p', ...memberDirs(dir), path.join(path.dirname(dir), 'run')]);
      await writeAsLab(id, conf, text);
      const t0 = performance.now();
      await runAsLab(id, ['pgbackrest', `--config=${conf}`, '--stanza=bench-h1', `--pg1-path=${dir}`, '--type=default', 'restore']);
      await writeAsLab(
        id,
        path.join(dir, 'postgresql.auto.conf'),
        `port = ${port}\nlisten_addresses = '${scratch.address}'\nunix_socket_directories = '${path.join(path.dirname(dir), 'run')}'\narchive_mode = 'off'\nssl_cert_file = '${scratch.tls!.certFile}'\nssl_key_file = '${scratch.tls!.keyFile}'\n`,
        true,
      );
      await runAsLab(id, [`${bin}/pg_ctl`, '-D', dir, '-l', path.join(path.dirname(dir), 'postgresql.log'), '-w', 'start']);
      for (;;) {
        try {
          const [r] = await query<{ rec: boolean }>(
            `postgres://postgres@${scratch.address}:${port}/postgres`,
            'SELECT pg_is_in_recovery() AS rec',
          );
          if (!r!.rec) {
            await query(`postgres://postgres@${scratch.address}:${port}/postgres`, 'CREATE TEMP TABLE w (x int); INSERT INTO w VALUES (1)');
            break;
          }
        } catch {
          /* not up yet */
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      plain.push(performance.now() - t0);
      await runAsLab(id, [`${bin}/pg_ctl`, '-D', dir, '-m', 'immediate', 'stop']);
      await runAsLab(id, ['rm', '-rf', path.dirname(dir)]);

      // pgherd's: the Restore action, confirmed as a person would.
      const t1 = performance.now();
      const r = await ok(
        'restore',
        await runOperation(
          db,
          worker.queue,
          restoreAction,
          { herdIds: [herdId] },
          {
            name: `h1-restored-${k}`,
            serverId: String(serverId),
            port: String(26100 + k),
            dataDirectory: path.join(scratch.dataRoot, `pgherd-${k}`, 'data'),
            sslCertFile: scratch.tls!.certFile,
            sslKeyFile: scratch.tls!.keyFile,
          },
        ),
      );
      pgherd.push(performance.now() - t1);
      void r;
      // Taken away, and its herd forgotten, for the next run.
      await runAsLab(id, [`${bin}/pg_ctl`, '-D', path.join(scratch.dataRoot, `pgherd-${k}`, 'data'), '-m', 'immediate', 'stop']);
      await runAsLab(id, ['rm', '-rf', path.join(scratch.dataRoot, `pgherd-${k}`)]);
      await db.execute(sql`DELETE FROM herds WHERE name = ${`h1-restored-${k}`}`);
      log(`run ${k + 1}: plain ${Math.round(plain.at(-1)!)} ms, pgherd ${Math.round(pgherd.at(-1)!)} ms`);
    }

    // A drill: its RTO and RPO as it records them.
    const drill = await ok(
      'drill',
      await runOperation(
        db,
        worker.queue,
        restoreDrillAction,
        { herdIds: [herdId] },
        {
          serverId: String(serverId),
          port: '26200',
          dataDirectory: path.join(scratch.dataRoot, 'drill', 'data'),
          sslCertFile: scratch.tls!.certFile,
          sslKeyFile: scratch.tls!.keyFile,
        },
      ),
    );
    const d = (
      await db.execute<{ rto_ms: number; rpo_ms: number }>(
        sql`SELECT rto_ms, rpo_ms FROM restore_drills WHERE operation_id = ${drill.op.id}`,
      )
    ).rows[0]!;

    // The archive's age under load: pgbench for 60 s, the primary observed every second as the refresher does.
    log('pgbench -c 4 -T 60 on the primary; the archive observed every second');
    const load = spawn(
      asLabUser(id, [`${bin}/pgbench`])[0]!,
      [
        ...asLabUser(id, [`${bin}/pgbench`]).slice(1),
        '-c',
        '4',
        '-T',
        '60',
        '-n',
        '-h',
        primary.address,
        '-p',
        String(primary.port),
        '-U',
        'postgres',
        'postgres',
      ],
      { stdio: 'ignore' },
    );
    const loadEnded = new Promise((r) => load.once('exit', r));
    const ages: number[] = [];
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      await refreshFleet(db);
      const [a] = (
        await db.execute<{ s: number | null }>(
          sql`SELECT extract(epoch FROM now() - archive_pending_since)::float8 AS s FROM instances WHERE herd_id = ${herdId} AND role = 'primary'`,
        )
      ).rows;
      ages.push(a?.s ?? 0);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await loadEnded;

    const ratio = median(pgherd) / median(plain);
    return [
      `backups (pgBackRest ${lab.instances.length}-member herd, ${(bytes / 1e6).toFixed(0)} MB, posix repository on the backup host, encrypted, zst; ${RUNS} runs each, medians)`,
      `  plain pgbackrest restore + start + first write, by hand: ${Math.round(median(plain))} ms (${(bytes / 1e6 / (median(plain) / 1000)).toFixed(1)} MB/s)`,
      `  pgherd's Restore to a new herd, confirm to done:       ${Math.round(median(pgherd))} ms (${(bytes / 1e6 / (median(pgherd) / 1000)).toFixed(1)} MB/s)`,
      `  pgherd / plain: ${ratio.toFixed(2)}x (target at most 1.2x)${ratio <= 1.2 ? '' : ' NOT MET'}`,
      `  restore drill: RTO ${(d.rto_ms / 1000).toFixed(1)} s, RPO ${(d.rpo_ms / 1000).toFixed(1)} s`,
      `  archive age under pgbench -c 4 (archive_timeout 30 s, ${ages.length} samples): p50 ${pct(ages, 0.5).toFixed(1)} s, p99 ${pct(ages, 0.99).toFixed(1)} s, max ${Math.max(...ages).toFixed(1)} s (target p99 at most 60 s)`,
    ];
  } finally {
    await worker.close();
    await pool.end();
    await stopLab(FILE, log);
  }
}

/** Writes (or appends to) a file as the lab user. */
async function writeAsLab(id: ReturnType<typeof labIdentity>, file: string, text: string, append = false) {
  const [cmd, ...args] = asLabUser(id, ['sh', '-c', append ? 'cat >> "$1"' : 'umask 077; cat > "$1"', 'w', file]);
  await new Promise<void>((resolve, reject) => {
    const c = spawn(cmd!, args, { stdio: ['pipe', 'ignore', 'inherit'] });
    c.once('error', reject);
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writing ${file}: exit ${String(code)}`))));
    c.stdin.end(text);
  });
}
