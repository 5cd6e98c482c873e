// A second demo (or test run) from one checkout must not take over the lab the first one runs.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LabBusyError, refuseIfOwned, startLab, writeLab, type LabInfo } from './lab';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgherd-owner-'));
const file = path.join(dir, 'lab.json');
let owner: ReturnType<typeof spawn> | null = null;
afterEach(() => owner?.kill('SIGKILL'));

function labOwnedBy(pid: number): LabInfo {
  return {
    name: 'lab',
    dir: path.join(dir, 'not-a-lab-dir'),
    osUser: 'pgherd-lab',
    pgBin: '/usr/lib/postgresql/15/bin',
    startedAt: new Date().toISOString(),
    database: { url: 'postgres://x', adminUrl: 'postgres://x' },
    redis: null,
    ssh: null,
    dns: null,
    pgbouncer: [],
    ldap: null,
    tls: null,
    pgAccess: null,
    console: { url: 'http://127.0.0.1:3999', admin: { username: 'admin', password: 'x' } },
    instances: [],
    processes: [],
    ownerPid: pid,
  };
}

describe('lab ownership', () => {
  it('refuses to start a lab whose owner still runs, naming it, and leaves its file alone', async () => {
    owner = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    writeLab(file, labOwnedBy(owner.pid!));
    const before = readFileSync(file, 'utf8');
    await expect(startLab({ file, fleet: false, redis: false })).rejects.toThrow(LabBusyError);
    expect(() => refuseIfOwned(file)).toThrow(`process ${owner.pid!} is running (console at http://127.0.0.1:3999): stop it first`);
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('takes over the file of an owner that is gone (a run killed hard)', async () => {
    owner = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const pid = owner.pid!;
    writeLab(file, labOwnedBy(pid));
    owner.kill('SIGKILL');
    await new Promise((r) => owner!.once('exit', r));
    expect(() => refuseIfOwned(file)).not.toThrow();
    rmSync(file);
  });
});
