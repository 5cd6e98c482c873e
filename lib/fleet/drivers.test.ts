import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { shellCommand } from '@/lib/adapters/ssh/quote';
import { debianCluster, driverFor, guarded, notSentBecause, postmasterHeld, STOP_NOT_SENT, stoppedWithin } from '@/lib/fleet/drivers';

const t = { pgVersion: 15, dataDirectory: '/var/lib/postgresql/15/main' };

describe('control drivers', () => {
  it('pg_ctl: the version\u2019s binary, the data directory, a log file, waiting with a deadline', () => {
    expect(shellCommand(driverFor('pg_ctl').stop(t, 'fast'))).toBe(
      '/usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/15/main -m fast -w -t 120 stop',
    );
    expect(driverFor('pg_ctl').start(t)).toContain('-l');
    expect(driverFor('pg_ctl').restart(t).slice(-1)).toEqual(['restart']);
    expect(shellCommand(driverFor('pg_ctl').status(t))).toBe('/usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/15/main status');
  });

  it('keeps a supervisor from starting a fenced primary: start.conf "manual" for pg_ctlcluster; pg_ctl has none', () => {
    expect(driverFor('pg_ctl').keepStopped(t)).toBeNull();
    expect(driverFor('pg_ctlcluster').keepStopped(t)).toMatchObject({
      argv: ['tee', '/etc/postgresql/15/main/start.conf'],
      stdin: 'manual\n',
    });
  });

  it('pg_ctlcluster: version and cluster name', () => {
    expect(driverFor('pg_ctlcluster').stop(t, 'immediate')).toEqual(['pg_ctlcluster', '15', 'main', 'stop', '-m', 'immediate']);
    expect(driverFor('pg_ctlcluster').status(t)).toEqual(['pg_ctlcluster', '15', 'main', 'status']);
    expect(debianCluster('/var/lib/postgresql/16/reports/')).toBe('reports');
  });

  it('refuses drivers it cannot run yet, by name', () => {
    expect(() => driverFor('systemd')).toThrow(/systemd is not supported yet/);
    // Patroni's and RDS's members get no pg_ctl, whatever asks (their drivers say what they do instead).
    for (const d of ['patroni', 'rds'])
      expect(() => driverFor(d)).toThrow(new RegExp(`^refused: ${d} runs this member: pgherd sends it no pg_ctl`));
  });
});

describe('the guard before a fence stop', () => {
  // A real process in place of a postmaster: its PID in a postmaster.pid, its state as /proc says.
  const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-guard-'));
  const guard = (command: string[]) => spawnSync(guarded(dir, command)[0]!, guarded(dir, command).slice(1), { encoding: 'utf8' });
  const sent = (r: ReturnType<typeof guard>) => r.stdout.includes('SENT');
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
    child = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const postmaster = () => {
    child = spawn('sleep', ['30'], { stdio: 'ignore' });
    writeFileSync(path.join(dir, 'postmaster.pid'), `${String(child.pid)}\n${dir}\n`);
    return child.pid!;
  };
  const stateOf = (pid: number) => readFileSync(`/proc/${String(pid)}/stat`, 'utf8').replace(/^.*\) /s, '')[0];

  it('runs the stop when the process would act on a signal: running or sleeping', () => {
    postmaster();
    const r = guard(['echo', 'SENT']);
    expect([r.status, sent(r)]).toEqual([0, true]);
  });

  it('sends nothing to a stopped process: exit STOP_NOT_SENT, its state, the reason in words', async () => {
    const pid = postmaster();
    process.kill(pid, 'SIGSTOP');
    for (let i = 0; stateOf(pid) !== 'T' && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    const r = guard(['echo', 'SENT']);
    expect([r.status, sent(r), r.stdout.trim()]).toEqual([STOP_NOT_SENT, false, 'T']);
    expect(r.stderr).toMatch(new RegExp(`postmaster ${String(pid)} is in state T: a signal would wait in it; nothing sent`));
    expect(notSentBecause({ code: r.status, stdout: r.stdout })).toBe('its postmaster is stopped (SIGSTOP)');
    // Only looking: the same answer, nothing run.
    expect(
      spawnSync(postmasterHeld({ pgVersion: 15, dataDirectory: dir })[0]!, postmasterHeld({ pgVersion: 15, dataDirectory: dir }).slice(1))
        .status,
    ).toBe(STOP_NOT_SENT);
    process.kill(pid, 'SIGCONT');
  });

  // Where this runs as root with the cgroup v2 hierarchy mounted (the lab's machines, CI).
  const cgv2 = (() => {
    try {
      const line = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .find((l) => / - cgroup2 /.test(l));
      const mnt = line?.split(' ')[4];
      return mnt && process.getuid?.() === 0 ? mnt : null;
    } catch {
      return null;
    }
  })();
  it.runIf(cgv2)('sends nothing to a process in a frozen cgroup (systemctl freeze, docker pause), which /proc shows sleeping', async () => {
    const pid = postmaster();
    const group = path.join(cgv2!, `pgherd-guard-${String(process.pid)}`);
    mkdirSync(group);
    try {
      writeFileSync(path.join(group, 'cgroup.procs'), String(pid));
      writeFileSync(path.join(group, 'cgroup.freeze'), '1');
      for (let i = 0; !readFileSync(path.join(group, 'cgroup.events'), 'utf8').includes('frozen 1') && i < 200; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(stateOf(pid)).toBe('S');
      const r = guard(['echo', 'SENT']);
      expect([r.status, sent(r), r.stdout.trim()]).toEqual([STOP_NOT_SENT, false, 'F']);
      expect(notSentBecause({ code: r.status, stdout: r.stdout })).toMatch(/cgroup is frozen/);
      writeFileSync(path.join(group, 'cgroup.freeze'), '0');
      const again = guard(['echo', 'SENT']);
      expect([again.status, sent(again)]).toEqual([0, true]);
    } finally {
      writeFileSync(path.join(group, 'cgroup.freeze'), '0');
      child?.kill('SIGKILL');
      for (let i = 0; readFileSync(path.join(group, 'cgroup.procs'), 'utf8').trim() && i < 200; i++)
        await new Promise((r) => setTimeout(r, 10));
      rmdirSync(group);
    }
  });

  it('leaves the stop command to say there is nothing to stop: no postmaster.pid, or no such process', () => {
    rmSync(path.join(dir, 'postmaster.pid'), { force: true });
    expect(sent(guard(['echo', 'SENT']))).toBe(true);
    writeFileSync(path.join(dir, 'postmaster.pid'), '2147483646\n');
    expect(sent(guard(['echo', 'SENT']))).toBe(true);
    expect(notSentBecause({ code: 0, stdout: '' })).toBeNull();
  });

  it('quotes the data directory as one argument: a directory with spaces and quotes is read as it is', () => {
    const odd = path.join(dir, "a b'c");
    mkdirSync(odd, { recursive: true });
    const pid = postmaster();
    writeFileSync(path.join(odd, 'postmaster.pid'), `${String(pid)}\n`);
    process.kill(pid, 'SIGSTOP');
    const argv = guarded(odd, ['echo', 'SENT']);
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv.slice(3)).toEqual(['pgherd-fence', odd, 'echo', 'SENT']);
    const r = spawnSync('sh', ['-c', shellCommand(argv)], { encoding: 'utf8' });
    process.kill(pid, 'SIGCONT');
    expect(r.status).toBe(STOP_NOT_SENT);
  });

  it('waits for the postmaster to be gone after a stop sent without waiting, looking every 10 ms, as long as it was given', async () => {
    const run = (argv: string[], env: NodeJS.ProcessEnv = process.env) =>
      new Promise<{ code: number | null; out: string; err: string; ms: number }>((resolve) => {
        const t0 = Date.now();
        const c = spawn('sh', ['-c', shellCommand(argv)], { env });
        let out = '';
        let err = '';
        c.stdout.on('data', (b: Buffer) => (out += b.toString()));
        c.stderr.on('data', (b: Buffer) => (err += b.toString()));
        c.on('close', (code) => resolve({ code, out, err, ms: Date.now() - t0 }));
      });
    const pidFile = path.join(dir, 'postmaster.pid');
    writeFileSync(pidFile, '1\n');
    // Its looks counted, not timed (a timed bound fails on a busy machine): a `sleep` first on the PATH
    // writes down each pause it is asked for, and the postmaster goes during the third. Done at the
    // look right after, each pause 10 ms (not pg_ctl's 100).
    const bin = mkdtempSync(path.join(tmpdir(), 'pgherd-sleep-'));
    const pauses = path.join(bin, 'pauses');
    writeFileSync(
      path.join(bin, 'sleep'),
      `#!/bin/sh\necho "$1" >> '${pauses}'\n[ "$(wc -l < '${pauses}')" -ge 3 ] && rm -f '${pidFile}'\nexit 0\n`,
      { mode: 0o755 },
    );
    const gone = await run(stoppedWithin(dir, ['true']), { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` });
    expect([gone.code, gone.out.trim()]).toEqual([0, 'server stopped']);
    expect(readFileSync(pauses, 'utf8').split('\n').filter(Boolean)).toEqual(['0.01', '0.01', '0.01']);
    rmSync(bin, { recursive: true, force: true });
    // The stop failing: its own exit code and words, and no wait.
    const failed = await run(stoppedWithin(dir, ['sh', '-c', 'echo "pg_ctl: PID file does not exist" >&2; exit 3']));
    expect([failed.code, failed.err.trim()]).toEqual([3, 'pg_ctl: PID file does not exist']);
    // A postmaster that does not go within the time given: what pg_ctl -w -t says.
    writeFileSync(pidFile, '1\n');
    const argv = stoppedWithin(dir, ['true']);
    argv[5] = '1'; // the seconds it may take
    const stuck = await run(argv);
    rmSync(pidFile, { force: true });
    expect([stuck.code, stuck.err.trim()]).toEqual([1, 'pg_ctl: server does not shut down']);
    expect(stuck.ms).toBeGreaterThanOrEqual(1000);
  });

  it('puts each driver\u2019s stop behind it', () => {
    const t2 = { pgVersion: 15, dataDirectory: '/var/lib/postgresql/15/main' };
    expect(driverFor('pg_ctl').fenceStop(t2, 'immediate').slice(3, 8)).toEqual([
      'pgherd-fence',
      t2.dataDirectory,
      'sh',
      '-c',
      expect.any(String),
    ]);
    expect(driverFor('pg_ctl').fenceStop(t2, 'immediate').slice(8)).toEqual([
      'pgherd-stop',
      t2.dataDirectory,
      '120',
      '/usr/lib/postgresql/15/bin/pg_ctl',
      '-D',
      t2.dataDirectory,
      '-m',
      'immediate',
      '-W',
      'stop',
    ]);
    expect(driverFor('pg_ctlcluster').fenceStop(t2, 'immediate').slice(3)).toEqual([
      'pgherd-fence',
      t2.dataDirectory,
      'pg_ctlcluster',
      '15',
      'main',
      'stop',
      '-m',
      'immediate',
    ]);
  });
});
