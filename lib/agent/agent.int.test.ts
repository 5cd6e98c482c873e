// The agent as shipped: the bundled single file, run with plain node against the lab's instances,
// discovering them from the lock files in their socket directories.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { readLab, PROJECT_ROOT, type LabInfo } from '@/lib/lab/lab';
import { PG_SUPERUSER, query } from '@/lib/lab/postgres';
import { freePort } from '@/lib/lab/ports';
import { isOpsTestHerd } from '@/lib/testing/test-db';
import type { Report } from './report';

const BUNDLE = path.join(PROJECT_ROOT, 'dist', 'pgherd-agent.js');
let lab: LabInfo;
let dir: string;

function agent(args: string[], cfg: object) {
  const file = path.join(dir, `agent-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(cfg));
  return spawnSync(process.execPath, [BUNDLE, '--config', file, ...args], { encoding: 'utf8', timeout: 30_000 });
}

beforeAll(() => {
  lab = readLab(inject('labFile'));
  execFileSync('npm', ['run', '--silent', 'build:agent'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
  dir = mkdtempSync(path.join(tmpdir(), 'pgherd-agent-'));
}, 60_000);

describe('pgherd-agent', () => {
  it('reports each lab server\u2019s instance with the facts the instance itself gives (dry run)', async () => {
    for (const i of lab.instances.filter((x) => !isOpsTestHerd(x.environment, x.herd))) {
      const res = agent(['--dry-run'], {
        server: 'http://127.0.0.1:9',
        tokenFile: '/nonexistent',
        lsclusters: false,
        user: PG_SUPERUSER,
        socketDirectories: [i.socketDirectory],
      });
      expect(res.status, res.stderr).toBe(0);
      const report = JSON.parse(res.stdout) as Report;
      expect(report).toMatchObject({ format: 1, intervalSeconds: 60 });
      const mine = report.instances.filter((x) => x.port === i.port);
      expect(mine, i.server).toHaveLength(1);
      const [real] = await query<{ sysid: string; rec: boolean; dir: string; up: string | null }>(
        i.dsn,
        `
        SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid, pg_is_in_recovery() AS rec,
               current_setting('data_directory') AS dir, (SELECT sender_host FROM pg_stat_wal_receiver) AS up`,
      );
      expect(mine[0]).toMatchObject({
        state: 'running',
        systemIdentifier: real!.sysid,
        inRecovery: real!.rec,
        dataDirectory: real!.dir,
        majorVersion: i.version,
      });
      if (i.upstream) {
        const up = lab.instances.find((x) => x.server === i.upstream)!;
        expect(mine[0]!.upstream).toEqual({ host: up.address, port: up.port });
        expect(mine[0]!.replayedLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      } else {
        expect(mine[0]!.currentLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
        expect(mine[0]!.replicas.length).toBe(lab.instances.filter((x) => x.upstream === i.server).length);
      }
    }
  });

  it('reports the build each instance runs and the builds installed, with their versions', async () => {
    const older = lab.instances.find((x) => x.binDir);
    const debian = lab.instances.find((x) => !x.binDir && !isOpsTestHerd(x.environment, x.herd))!;
    expect(older, 'the lab fleet has a herd on another build').toBeDefined();
    const buildsRoot = path.dirname(path.dirname(older!.binDir!));
    for (const i of [older!, debian]) {
      const res = agent(['--dry-run'], {
        server: 'http://127.0.0.1:9',
        tokenFile: '/nonexistent',
        lsclusters: false,
        user: PG_SUPERUSER,
        socketDirectories: [i.socketDirectory],
        buildDirectories: ['/usr/lib/postgresql/*/bin', `${buildsRoot}/*/bin`, '/nonexistent/*/bin'],
      });
      expect(res.status, res.stderr).toBe(0);
      const report = JSON.parse(res.stdout) as Report;
      const [real] = await query<{ vnum: number }>(i.dsn, `SELECT current_setting('server_version_num')::int AS vnum`);
      const mine = report.instances.find((x) => x.port === i.port)!;
      expect(mine.serverVersionNum).toBe(real!.vnum);
      expect(mine.binDir).toBe(realpathSync(i.binDir ?? lab.pgBin));
      const versions = (report.builds ?? []).map((b) => b.versionNum).sort();
      // Debian's 15, and the lab's 15 a minor behind and 17.
      expect(versions).toEqual(expect.arrayContaining([real!.vnum]));
      expect(versions.filter((v) => Math.floor(v / 10000) === 15)).toHaveLength(2);
      expect(versions.some((v) => Math.floor(v / 10000) === 17)).toBe(true);
      for (const b of report.builds ?? []) {
        expect(b.versionText).toMatch(/^postgres \(PostgreSQL\) \d+\.\d+/);
        // Every build ships plpgsql and the contrib modules the lab's herds use.
        expect(b.extensions).toMatchObject({ plpgsql: '1.0', pg_stat_statements: expect.any(String) });
      }
    }
    expect(older!.binDir).not.toBe(debian.binDir);
  });

  it('exits with a clear code: 2 bad configuration, 3 unsafe token file, 5 server unreachable', async () => {
    const bad = agent(['--once'], { server: 'not a url', tokenFile: '/x' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/server: Invalid URL/i);
    expect(agent(['--bogus'], { server: 'http://127.0.0.1:9', tokenFile: '/x' }).status).toBe(2);
    const token = path.join(dir, 'token');
    writeFileSync(token, `pgha_${'a'.repeat(43)}\n`);
    chmodSync(token, 0o644);
    const base = { server: `http://127.0.0.1:${await freePort()}`, tokenFile: token, lsclusters: false, socketDirectories: [] };
    const unsafe = agent(['--once'], base);
    expect(unsafe.status).toBe(3);
    expect(unsafe.stderr).toMatch(/readable by others \(mode 644\)/);
    chmodSync(token, 0o600);
    const down = agent(['--once'], base);
    expect(down.status).toBe(5);
    expect(down.stderr).toMatch(/cannot reach/);
  });
});
