// The lab's Debian PostgreSQL 17 (lib/lab/debian-build.ts) is a whole PostgreSQL 17 on this Debian 12:
// its pg_upgrade moves a cluster of Debian 12's own 15 to it in place (hard links, the rows there), and
// its pg_basebackup clones the upgraded primary into a replica that streams. What an in-place major
// upgrade and a green herd's replicas need, and npm's builds (postgres, initdb, pg_ctl) do not have.
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { debianBuild } from './debian-build';
import { dsn, initPrimary, PG_BIN, query, startNode, type PgNode } from './postgres';
import { labIdentity, mkdirOwned, run } from './proc';

const id = labIdentity();
const root = mkdtempSync(path.join(tmpdir(), 'pgherd-debian17-'));
chownSync(root, id.uid, id.gid);
chmodSync(root, 0o755);
const started: { node: PgNode; bin: string }[] = [];

afterAll(async () => {
  for (const { node, bin } of started.reverse())
    await run(id, [`${bin}/pg_ctl`, '-D', node.dataDirectory, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const nodeAt = async (name: string): Promise<PgNode> => ({
  name,
  address: '127.0.0.1',
  port: await freePort(),
  dataDirectory: path.join(root, name, 'data'),
  socketDirectory: path.join(root, 'run'),
  logFile: path.join(root, `${name}.log`),
});

/** Each relation file's inode under `dir/base`: pg_upgrade --link leaves the same files under both clusters. */
const inodes = (dir: string) =>
  new Set(
    readdirSync(path.join(dir, 'base'), { recursive: true, encoding: 'utf8' })
      .map((f) => path.join(dir, 'base', f))
      .filter((f) => /\/\d+$/.test(f) && statSync(f).isFile())
      .map((f) => statSync(f).ino),
  );

describe("the lab's Debian PostgreSQL 17", () => {
  it('pg_upgrade --check, then --link, moves a cluster of Debian 12’s 15 to it with every row; its pg_basebackup clones the result into a streaming replica', async () => {
    const b = debianBuild();
    expect(b.versionNum).toBeGreaterThanOrEqual(170000);
    const old = await nodeAt('old15');
    await initPrimary(id, old);
    started.push({ node: old, bin: PG_BIN });
    await startNode(id, old);
    await query(dsn(old), 'CREATE TABLE orders (id bigint PRIMARY KEY, note text NOT NULL)');
    await query(dsn(old), "INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 50000) g");
    await run(id, [`${PG_BIN}/pg_ctl`, '-D', old.dataDirectory, '-m', 'fast', '-w', 'stop']);
    started.pop();

    const next = await nodeAt('new17');
    await initPrimary(id, next, [], b.binDir);
    const upgrade = (mode: string) =>
      run(
        id,
        [
          `${b.binDir}/pg_upgrade`,
          '-b',
          PG_BIN,
          '-B',
          b.binDir,
          '-d',
          old.dataDirectory,
          '-D',
          next.dataDirectory,
          '-p',
          String(old.port),
          '-P',
          String(next.port),
          '-s',
          next.socketDirectory,
          // The clusters' superuser (the lab's initdb -U), not the OS user it runs as.
          '-U',
          'postgres',
          mode,
        ],
        { cwd: root },
      );
    expect((await upgrade('--check')).stdout).toMatch(/Clusters are compatible/);
    expect((await upgrade('--link')).stdout).toMatch(/Upgrade Complete/);
    // Linked, not copied: the new cluster's relation files are the old one's.
    const shared = [...inodes(next.dataDirectory)].filter((i) => inodes(old.dataDirectory).has(i));
    expect(shared.length).toBeGreaterThan(0);

    await startNode(id, next, b.binDir);
    started.push({ node: next, bin: b.binDir });
    const [r] = await query<{ n: number; v: number }>(
      dsn(next),
      "SELECT count(*)::int AS n, current_setting('server_version_num')::int AS v FROM orders",
    );
    expect(r).toEqual({ n: 50000, v: b.versionNum });

    const replica = await nodeAt('replica17');
    mkdirOwned(id, path.dirname(replica.dataDirectory));
    await run(id, [
      `${b.binDir}/pg_basebackup`,
      '-h',
      next.address,
      '-p',
      String(next.port),
      '-U',
      'postgres',
      '-D',
      replica.dataDirectory,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
      '--no-sync',
    ]);
    await run(id, [
      `${b.binDir}/pg_ctl`,
      '-D',
      replica.dataDirectory,
      '-o',
      `-p ${String(replica.port)}`,
      '-l',
      replica.logFile,
      '-w',
      'start',
    ]);
    started.push({ node: replica, bin: b.binDir });
    await query(dsn(next), "INSERT INTO orders VALUES (50001, 'after the upgrade')");
    for (let i = 0; ; i++) {
      const rows = await query<{ n: number }>(dsn(replica), 'SELECT count(*)::int AS n FROM orders').catch(() => [{ n: -1 }]);
      if (rows[0]?.n === 50001) break;
      if (i > 300) throw new Error(`the replica has ${String(rows[0]?.n)} rows, not 50001`);
      await new Promise((res) => setTimeout(res, 100));
    }
    const [s] = await query<{ state: string }>(dsn(next), 'SELECT state FROM pg_stat_replication');
    expect(s?.state).toBe('streaming');
  }, 180_000);
});
