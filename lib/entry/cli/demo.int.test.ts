// The demo stops whole. It is started as people start it (`npm run demo`, here with `--small`), in a
// process group of its own as a terminal or a service manager runs it, then stopped by a signal to
// that group or to the demo alone: nothing of its lab is left running, the lab's directory is gone, and
// lab.json named every process while the demo ran (the stop found nothing it had not listed).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { restartDatabase } from '@/lib/lab/faults';
import { PROJECT_ROOT, readLab, stopLab, type LabInfo, type LabProcess } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { alive, labIdentity, pidRuns, processesUnder, run } from '@/lib/lab/proc';
import { waitFor } from '@/lib/testing/wait';
import { readEnvFile, readUnit, type UnitName } from '@/lib/lab/units';

// A console built beforehand (`npm test` builds one for the browser tests; `npm run build`) is started
// with the demo and asked for its sign-in page; without one the demo runs without it (--no-console).
const BUILT = existsSync(path.join(PROJECT_ROOT, '.next', 'BUILD_ID'));

interface Demo {
  child: ChildProcess;
  pgid: number;
  file: string;
  out: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: Demo[] = [];
afterEach(async () => {
  // A failed test leaves nothing behind for the next one either.
  for (const d of running.splice(0)) {
    try {
      process.kill(-d.pgid, 'SIGKILL');
    } catch {
      // the group is gone already
    }
    await stopLab(d.file);
    rmSync(path.dirname(d.file), { recursive: true, force: true });
  }
});

/** The test's settings are the shared lab's: the demo gets none of them, as from a fresh shell. */
function freshEnv(): NodeJS.ProcessEnv {
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(PGHERD_|AWS_|VITEST|DATABASE_URL$|REDIS_URL$|NODE_ENV$|NODE_OPTIONS$)/.test(k)) env[k] = v;
  // No NODE_ENV (vitest's `test`): the demo's processes set their own.
  return { ...env, PGHERD_SKIP_BUILD: '1', NEXT_TELEMETRY_DISABLED: '1' } as unknown as NodeJS.ProcessEnv;
}

/** One request from `localAddress` (a client of its own), its status, cookies and body. */
function requestFrom(
  localAddress: string,
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; cookies: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, localAddress }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString('utf8')));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, cookies: (res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!), body }),
      );
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A sign-in with a wrong password, as a browser at `from` sends it (its CSRF token and cookie first). */
async function failedSignIn(url: string, from: string): Promise<void> {
  const csrf = await requestFrom(from, `${url}/api/auth/csrf`);
  const { csrfToken } = JSON.parse(csrf.body) as { csrfToken: string };
  await requestFrom(from, `${url}/api/auth/callback/credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrf.cookies.join('; ') },
    body: new URLSearchParams({ csrfToken, username: 'nobody-here', password: 'wrong-password', json: 'true' }).toString(),
  });
}

function startDemo(extra: string[] = []): Demo {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgherd-demo-test-')), 'lab.json');
  // Addresses of its own (127.0.50.x, Patroni 127.0.51.x, RDS 127.0.52.x, --ha's sites 127.0.53.x), as each
  // test file's lab has, beside the shared lab.
  const args = [
    'run',
    '--silent',
    'demo',
    '--',
    '--small',
    '--subnet',
    '127.0.50',
    '--file',
    file,
    ...(BUILT ? [] : ['--no-console']),
    ...extra,
  ];
  const child = spawn('npm', args, { cwd: PROJECT_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: freshEnv() });
  const out: string[] = [];
  for (const s of [child.stdout, child.stderr]) s.on('data', (b: Buffer) => out.push(...b.toString('utf8').split('\n').filter(Boolean)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  const demo = { child, pgid: child.pid!, file, out, exited };
  running.push(demo);
  return demo;
}

/** Up: the demo says it is ready, lab.json describes it, and the console (when there is one) answers. */
async function up(demo: Demo): Promise<LabInfo> {
  let gone = false;
  void demo.exited.then(() => (gone = true));
  await waitFor(
    'the demo to be ready',
    async () => {
      if (gone) throw new Error(`the demo exited:\n${demo.out.join('\n')}`);
      return demo.out.some((l) => /is ready/.test(l)) ? true : undefined;
    },
    240_000,
  );
  const lab = readLab(demo.file);
  if (BUILT) expect((await fetch(`${lab.console!.url}/login`)).status).toBe(200);
  return lab;
}

/** Those of lab.json's processes that do not run what lab.json says, at the PID it says. */
const untrue = (lab: LabInfo) =>
  lab.processes.filter((p) => !(alive(p.pid) && pidRuns(p.pid, p.program))).map((p) => `${p.name} (${p.pid})`);

/** The processes in `pgid` (the demo's group: npm, the demo, the console, the worker and their helpers). */
function group(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** What lab.json listed, what uses the lab's directory and what is in the demo's group, still running. */
function leftOf(demo: Demo, listed: LabProcess[], dir: string): string[] {
  return [
    ...listed.filter((p) => alive(p.pid) && pidRuns(p.pid, p.program)).map((p) => `${p.name} (${p.pid})`),
    ...processesUnder(dir).map((p) => `${p.pid} ${p.command}`),
    ...group(demo.pgid).map((pid) => `group member ${pid}`),
  ];
}

/** The parent of `pid`, from /proc; null once it is gone. */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** Whether `pid` is one of `roots` or below one, asked as it is now (backends come and go meanwhile). */
function under(pid: number, roots: Set<number>): boolean | 'gone' {
  for (let p: number | null = pid; p && p > 1; p = parentOf(p)) if (roots.has(p)) return true;
  return alive(pid) ? false : 'gone';
}

/** Everything the lab runs: the processes lab.json lists and theirs (backends, sessions, helpers). */
function expectAllListed(lab: LabInfo, demo: Demo) {
  // What the demo printed says why a process it listed is gone (a worker's last words go to its stderr).
  expect(untrue(lab), demo.out.slice(-40).join('\n')).toEqual([]);
  const roots = new Set(lab.processes.map((p) => p.pid));
  expect(processesUnder(lab.dir).filter((p) => under(p.pid, roots) === false)).toEqual([]);
}

async function expectStoppedWhole(demo: Demo, listed: LabProcess[], dir: string) {
  const { code } = await demo.exited;
  // npm has exited once the demo has: nothing of the group may outlive it for long.
  await waitFor(
    'the demo\u2019s group and lab to be gone',
    async () => (leftOf(demo, listed, dir).length ? undefined : true),
    20_000,
  ).catch(() => {});
  expect(leftOf(demo, listed, dir)).toEqual([]);
  expect(existsSync(dir)).toBe(false);
  expect(existsSync(demo.file)).toBe(false);
  expect(demo.out.filter((l) => /did not list|the stop failed|an unexpected error/.test(l))).toEqual([]);
  expect(demo.out).toContain('demo: stopped; nothing left running');
  expect(code).toBe(0);
}

describe('the demo stops whole', () => {
  it('on SIGTERM to its process group, after pgherd\u2019s database was restarted: lab.json names the new postmaster, which the stop stops', async () => {
    const demo = startDemo();
    const lab = await up(demo);
    const names = lab.processes.map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['pgherd-db', 'redis', 'worker', 'etcd', 'moto', 'aws-front', 'slapd', 'named']));
    if (BUILT) expect(names).toContain('console');
    expectAllListed(lab, demo);
    if (BUILT) {
      // The agents' Patroni addresses were accepted as the seed's admin: the Patroni herd is run through Patroni.
      const members = await query<{ url: string; driver: string }>(
        lab.database.url,
        `SELECT i.patroni_url AS url, h.control_driver::text AS driver FROM instances i JOIN herds h ON h.id = i.herd_id
         WHERE h.name = 'ledger'`,
      );
      expect(members.length).toBeGreaterThan(0);
      for (const m of members) expect(m).toEqual({ url: expect.stringMatching(/^https:\/\//), driver: 'patroni' });
      const [accepted] = await query<{ n: number }>(
        lab.database.url,
        `SELECT count(*)::int AS n FROM audit_entries WHERE action = 'patroni.accept' AND username = 'admin' AND object_type = 'instances'`,
      );
      expect(accepted!.n).toBe(members.length);
    }

    const before = lab.processes.find((p) => p.name === 'pgherd-db')!.pid;
    const pid = await restartDatabase(lab, demo.file);
    expect(pid).not.toBe(before);
    expect(alive(before)).toBe(false);
    const now = readLab(demo.file);
    expect(now.processes.find((p) => p.name === 'pgherd-db')!.pid).toBe(pid);
    expect(await query<{ n: number }>(lab.database.url, 'SELECT 1 AS n')).toEqual([{ n: 1 }]);
    expectAllListed(now, demo);

    process.kill(-demo.pgid, 'SIGTERM');
    await expectStoppedWhole(demo, now.processes, lab.dir);
    expect(alive(pid) && pidRuns(pid, 'postgres')).toBe(false);
  }, 300_000);

  it('on SIGINT to the demo alone, twice; a fleet Postgres restarted behind its back is named in lab.json with its new PID, and stopped', async () => {
    const demo = startDemo();
    const lab = await up(demo);
    // As pgherd's restart action does it over SSH: a new postmaster that no one tells the lab about.
    const primary = lab.instances.find((i) => i.role === 'primary' && !i.patroniUrl)!;
    const entry = lab.processes.find((p) => p.name === primary.server)!;
    await run(labIdentity(), [
      `${lab.pgBin}/pg_ctl`,
      '-D',
      primary.dataDirectory,
      '-l',
      path.join(lab.dir, 'log', `${primary.server}.log`),
      '-m',
      'fast',
      '-w',
      'restart',
    ]);
    const restarted = await waitFor('lab.json to name the restarted postmaster', async () => {
      const p = readLab(demo.file).processes.find((x) => x.name === primary.server)!;
      return p.pid !== entry.pid ? p.pid : undefined;
    });
    expect(alive(entry.pid)).toBe(false);
    const now = readLab(demo.file);
    expectAllListed(now, demo);

    process.kill(now.ownerPid!, 'SIGINT');
    await waitFor('the demo to stop', async () => (demo.out.some((l) => /SIGINT: stopping/.test(l)) ? true : undefined));
    process.kill(now.ownerPid!, 'SIGINT');
    await expectStoppedWhole(demo, now.processes, lab.dir);
    expect(demo.out.filter((l) => /already stopping/.test(l))).toHaveLength(1);
    expect(alive(restarted) && pidRuns(restarted, 'postgres')).toBe(false);
  }, 300_000);

  it('on SIGINT to its process group while it starts: what it had started is stopped, and the lab removed', async () => {
    const demo = startDemo();
    // Cut in the middle of the fleet: some processes up, others starting.
    const file = await waitFor(
      'the lab to be starting its fleet',
      async () => {
        if (!existsSync(demo.file)) return undefined;
        const lab = readLab(demo.file);
        return lab.processes.length >= 3 ? lab : undefined;
      },
      120_000,
    );
    process.kill(-demo.pgid, 'SIGINT');
    await expectStoppedWhole(demo, file.processes, file.dir);
  }, 300_000);

  it('killed with SIGKILL: `npm run lab -- down` stops what it ran, console and worker included, from lab.json', async () => {
    const demo = startDemo();
    const lab = await up(demo);
    expectAllListed(lab, demo);
    process.kill(lab.ownerPid!, 'SIGKILL');
    await demo.exited;
    const orphans = lab.processes.filter((p) => ['worker', 'console'].includes(p.name));
    expect(orphans.filter((p) => alive(p.pid)).map((p) => p.name)).toEqual(orphans.map((p) => p.name));
    const down = spawn('npm', ['run', '--silent', 'lab', '--', 'down', '--file', demo.file], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: freshEnv(),
    });
    const said: string[] = [];
    for (const s of [down.stdout, down.stderr]) s.on('data', (b: Buffer) => said.push(b.toString('utf8')));
    expect(await new Promise((r) => down.once('exit', r))).toBe(0);
    expect(said.join('')).not.toMatch(/did not list/);
    expect(leftOf(demo, lab.processes, lab.dir)).toEqual([]);
    expect(existsSync(lab.dir)).toBe(false);
  }, 300_000);

  it('--ha: pgherd on three sites; site a lost (kill-site): the consoles\u2019 front answers ready from site b, and the stop leaves nothing', async () => {
    const demo = startDemo(['--ha']);
    const lab = await up(demo);
    expectAllListed(lab, demo);
    expect(lab.controlPlane?.sites.map((x) => x.address)).toEqual(['127.0.53.1', '127.0.53.2', '127.0.53.3']);
    const onA = lab.processes.filter((p) => p.site === 'a').map((p) => p.name);
    expect(onA).toEqual(expect.arrayContaining(['etcd-a', 'patroni-a', 'haproxy-a', 'redis-a', 'sentinel-a', 'worker-a']));
    expect(demo.out.some((l) => /npm run lab -- kill-site a/.test(l))).toBe(true);
    // Each site's console and worker run as deploy/systemd's units start them, from the site's environment file.
    for (const site of ['a', 'b']) {
      const env = readEnvFile(path.join(lab.dir, `site-${site}`, 'pgherd.env'));
      expect(env.DATABASE_URL).toBe(lab.controlPlane?.databaseUrls[site]);
      const units: [string, UnitName][] = [
        [`worker-${site}`, 'pgherd-worker.service'],
        ...(BUILT ? [[`console-${site}`, 'pgherd-web.service'] as [string, UnitName]] : []),
      ];
      for (const [name, unit] of units) {
        const p = lab.processes.find((x) => x.name === name)!;
        expect(
          readFileSync(`/proc/${String(p.pid)}/cmdline`, 'utf8')
            .split('\0')
            .filter(Boolean),
        ).toEqual(readUnit(unit).start);
        const environ = Object.fromEntries(
          readFileSync(`/proc/${String(p.pid)}/environ`, 'utf8')
            .split('\0')
            .filter(Boolean)
            .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
        );
        expect(environ).toMatchObject({ ...env, NODE_ENV: 'production' });
      }
    }
    const ready = async () => {
      const res = await fetch(`${lab.console!.url}/readyz`).catch(() => null);
      return res?.status === 200 ? ((await res.json()) as object) : undefined;
    };
    if (BUILT) {
      expect(await ready()).toEqual({ ready: true, database: 'writable', queue: 'reachable' });
      // A failed sign-in through the front from 127.0.0.77: audited (and throttled) as that address, which
      // the front passes on and the consoles trust, not as the front's own.
      await failedSignIn(lab.console!.url, '127.0.0.77');
      const [row] = await query<{ remote_addr: string }>(
        lab.controlPlane!.databaseUrls.b!,
        "SELECT remote_addr FROM audit_entries WHERE action = 'auth.sign_in_failed' ORDER BY id DESC LIMIT 1",
      );
      expect(row?.remote_addr).toBe('127.0.0.77');
    }
    const kill = spawn('npm', ['run', '--silent', 'lab', '--', 'kill-site', 'a', '--file', demo.file], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: freshEnv(),
    });
    const said: string[] = [];
    for (const x of [kill.stdout, kill.stderr]) x.on('data', (b: Buffer) => said.push(b.toString('utf8')));
    const lostAt = Date.now();
    expect(await new Promise((r) => kill.once('exit', r)), said.join('')).toBe(0);
    const killed = lab.processes.filter((p) => p.site === 'a');
    expect(killed.filter((p) => alive(p.pid)).map((p) => p.name)).toEqual([]);
    expect(readLab(demo.file).processes.filter((p) => p.site === 'a')).toEqual([]);
    if (BUILT) {
      // Served by site b's console: its database (the promoted replica) writable, its queue (Sentinel's new master) reachable.
      await waitFor('the consoles\u2019 front ready again', ready, 60_000);
      console.log(`--ha demo: site a lost; the console ready again from site b after ${((Date.now() - lostAt) / 1000).toFixed(1)} s`);
    }
    const now = readLab(demo.file);
    process.kill(-demo.pgid, 'SIGTERM');
    await expectStoppedWhole(demo, now.processes, lab.dir);
  }, 420_000);
});
