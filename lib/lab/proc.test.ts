// What uses a lab's directory, found from /proc: by working directory or by a path on the command line.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processesUnder } from './proc';
import { waitFor } from '@/lib/testing/wait';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgherd-lab-proc-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const SLEEP = 'setTimeout(() => {}, 60000)';

/** A process that waits a minute, with `args` on its command line, once it runs (exec'd, not the fork). */
async function sleeper(args: string[], cwd = '/'): Promise<number> {
  const c = spawn(process.execPath, ['-e', SLEEP, '--', ...args], { cwd, stdio: 'ignore' });
  children.push(c);
  const pid = c.pid!;
  await waitFor('the process to run', async () => (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(SLEEP) ? true : undefined));
  return pid;
}

describe('processesUnder', () => {
  it('finds a process that runs in the directory or below it, and one that names a path under it, and no other', async () => {
    mkdirSync(path.join(dir, 'pg', 'data'), { recursive: true });
    const inside = await sleeper([], path.join(dir, 'pg', 'data'));
    const named = await sleeper([`--config=${dir}/pg/postgresql.conf`]);
    const sibling = await sleeper([`${dir}-other/x`]);
    const stranger = await sleeper([]);
    const found = processesUnder(dir).map((p) => p.pid);
    expect(found).toEqual(expect.arrayContaining([inside, named]));
    expect(found).not.toContain(sibling);
    expect(found).not.toContain(stranger);
    expect(processesUnder(dir).find((p) => p.pid === named)?.command).toBe(
      `${process.execPath} -e ${SLEEP} -- --config=${dir}/pg/postgresql.conf`,
    );
  });
});
