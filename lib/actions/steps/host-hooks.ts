// A herd's resize hooks: executables on the pgherd worker's host or on the member's host, run with
// documented arguments (docs/actions.md, "Resize hooks") and a timeout; their command, exit code and output
// are kept in the step's record. A hook that exits non-zero fails its step.
// Who may edit a herd (an operator of its environment) must not thereby run any program as the
// worker (which holds every environment's keys) or as pgherd's SSH user: a hook runs only from the
// directory the worker's PGHERD_HOOK_DIR names, its real path (symbolic links and .. resolved) inside
// it, on whichever host it runs. Installing a hook there is the deployment's act, not a form's.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { access, constants, readdir, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { ActionDeps } from '@/lib/engine/define-action';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import type { StepContext } from '@/lib/engine/pipeline';
import { refuse } from '@/lib/fleet/refusal';
import { execNoted } from './exec-noted';
import { shellCommand } from '@/lib/adapters/ssh/quote';
import { setting } from '@/lib/settings/settings';

export interface HookConfig {
  path: string;
  on: 'worker' | 'database';
  timeoutSeconds: number;
}

/** The directory hooks run from (PGHERD_HOOK_DIR, absolute), or why none may run. */
export function hookDir(env: Record<string, string | undefined> = process.env): string | { refused: string } {
  let dir: string | null;
  try {
    dir = setting('PGHERD_HOOK_DIR', env);
  } catch (err) {
    // A relative directory stops the worker at start (checkSettings); read here, it refuses the hook, naming it.
    return { refused: (err as Error).message };
  }
  if (!dir) return { refused: "hooks run only from the directory PGHERD_HOOK_DIR names, and the worker's environment sets none" };
  return path.resolve(dir);
}

const inside = (dir: string, p: string) => p.startsWith(`${dir.replace(/\/$/, '')}/`);

/** The hook's real path on the worker's host when it is an executable inside `dir` (also resolved), else what it is not. */
async function realOnWorker(hookPath: string, dir: string): Promise<{ real: string } | { not: 'in-dir' | 'executable' }> {
  const real = await realpath(hookPath).catch(() => null);
  const realDir = await realpath(dir).catch(() => dir);
  if (!real || !inside(realDir, real)) return { not: 'in-dir' };
  const ok = await access(real, constants.X_OK).then(
    () => true,
    () => false,
  );
  return ok ? { real } : { not: 'executable' };
}

/** Exit codes of the wrapper that resolves a hook on the member's host (the hook's own are passed through). */
const NOT_IN_DIR = 201;
const NOT_EXECUTABLE = 202;
/** On the member's host, `sh -c RESOLVE sh HOOK DIR`: $real is the hook's real path, inside DIR's, an executable file. */
const RESOLVE =
  `real=$(readlink -f -- "$1") && dir=$(readlink -f -- "$2") || exit ${NOT_IN_DIR}; case "$real" in "$dir"/*) ;; *) exit ${NOT_IN_DIR};; esac; ` +
  `test -f "$real" -a -x "$real" || exit ${NOT_EXECUTABLE}`;

/**
 * Refuses (nothing changed yet) a hook that is not an executable file inside PGHERD_HOOK_DIR where it
 * will run, its real path resolved there (a link out of the directory is refused).
 */
export async function checkHook(deps: ActionDeps, t: InstanceRef, ctx: StepContext, hook: HookConfig, what: string): Promise<string> {
  if (!hook.path.startsWith('/')) throw refuse('params', `the ${what} hook ${hook.path} is not an absolute path`);
  const dir = hookDir();
  if (typeof dir !== 'string') throw refuse('params', `the ${what} hook ${hook.path} may not run: ${dir.refused}`);
  if (!inside(dir, path.resolve(hook.path))) throw refuse('params', `the ${what} hook ${hook.path} is not in PGHERD_HOOK_DIR (${dir})`);
  if (hook.on === 'worker') {
    const found = await realOnWorker(hook.path, dir);
    if ('not' in found && found.not === 'in-dir')
      throw refuse('params', `the ${what} hook ${hook.path} is not a file in PGHERD_HOOK_DIR (${dir}) on the pgherd worker's host`);
    if ('not' in found) throw refuse('params', `the ${what} hook ${hook.path} is not an executable file on the pgherd worker's host`);
    return `${hook.path}: executable on the worker's host`;
  }
  // On the member's host: the real paths there, and the test, in one command.
  const r = await execNoted(deps, t, ctx, ['sh', '-c', RESOLVE, 'sh', hook.path, dir], 15_000);
  if (r.code === NOT_IN_DIR) throw refuse('params', `the ${what} hook ${hook.path} is not in PGHERD_HOOK_DIR (${dir}) on ${t.ssh.host}`);
  if (r.code !== 0) throw refuse('params', `the ${what} hook ${hook.path} is not an executable file on ${t.ssh.host}`);
  return `${hook.path}: executable on ${t.ssh.host}`;
}

/**
 * Runs the hook with `args`; throws with its exit code and output when it fails or outlives its timeout.
 * Its real path is resolved and checked again as it starts, and that real path is what runs: a hook
 * that became a link out of PGHERD_HOOK_DIR after the first step checked it is refused, not run. At
 * its timeout its whole process group is killed, children included.
 */
export async function runHook(deps: ActionDeps, t: InstanceRef, ctx: StepContext, hook: HookConfig, args: string[]): Promise<void> {
  const dir = hookDir();
  if (typeof dir !== 'string') throw refuse('params', `the hook ${hook.path} may not run: ${dir.refused}`);
  if (hook.on === 'database') {
    // One command on its host: resolve, check, and run that real path under timeout (which signals its
    // process group, and is killed on its host when its time is up: closing the SSH channel would leave it running there).
    const r = await execNoted(
      deps,
      t,
      ctx,
      [
        'sh',
        '-c',
        `${RESOLVE}; limit=$3; shift 3; exec timeout -k 5 "$limit" "$real" "$@"`,
        'sh',
        hook.path,
        dir,
        String(hook.timeoutSeconds),
        ...args,
      ],
      hook.timeoutSeconds * 1000 + 15_000,
    );
    if (r.code === NOT_IN_DIR)
      throw refuse('params', `the hook ${hook.path} is no longer in PGHERD_HOOK_DIR (${dir}) on ${t.ssh.host}: not run`);
    if (r.code === NOT_EXECUTABLE)
      throw refuse('params', `the hook ${hook.path} is no longer an executable file on ${t.ssh.host}: not run`);
    if (r.code === 124 || r.code === 137 || r.signal === 'SIGKILL')
      throw new Error(`the hook ${hook.path} did not finish within ${hook.timeoutSeconds} s (killed on ${t.ssh.host})`);
    if (r.code !== 0)
      throw new Error(
        `the hook ${hook.path} exited ${r.code ?? `on signal ${r.signal ?? '?'}`}: ${r.stderr.trim().slice(-500) || '(no output)'}`,
      );
    return;
  }
  const found = await realOnWorker(hook.path, dir);
  if ('not' in found)
    throw refuse(
      'params',
      `the hook ${hook.path} is no longer ${found.not === 'in-dir' ? `in PGHERD_HOOK_DIR (${dir})` : 'an executable file'}: not run`,
    );
  const { real } = found;
  ctx.note({ command: `${shellCommand([real, ...args])} (on the worker's host)` });
  const r = await runGroup(real, args, hook.timeoutSeconds * 1000, ctx.signal);
  ctx.note({ exitCode: r.code, stdout: r.stdout.slice(-4000), stderr: r.stderr.slice(-4000) });
  if (r.killed) throw new Error(`the hook ${hook.path} did not finish within ${hook.timeoutSeconds} s`);
  if (r.code !== 0) throw new Error(`the hook ${hook.path} exited ${r.code}: ${r.stderr.trim().slice(-500) || '(no output)'}`);
}

/** What a hook on the worker's host gets of the worker's environment: never its secrets (database URL, AWS keys, the session secret). */
const HOOK_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'USER', 'LOGNAME', 'TMPDIR'];

/**
 * Every process that carries `mark` in its environment (the hook's descendants, also those that left its
 * process group with setsid): the way Jenkins' ProcessTreeKiller finds what a build left behind.
 */
export async function killMarked(mark: string): Promise<number> {
  const needle = Buffer.from(`\0${mark}\0`);
  let killed = 0;
  for (const pid of (await readdir('/proc').catch(() => [])).filter((d) => /^\d+$/.test(d))) {
    const env = await readFile(`/proc/${pid}/environ`).catch(() => null);
    if (!env || !Buffer.concat([Buffer.from([0]), env]).includes(needle)) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed++;
    } catch {
      // Gone meanwhile, or not ours.
    }
  }
  return killed;
}

/**
 * Runs `file` in a process group of its own, with a small environment marked with this run's id; at
 * `timeoutMs` (or on `signal`) the whole group is killed, and when it ends, whatever carries the mark.
 */
function runGroup(file: string, args: string[], timeoutMs: number, signal?: AbortSignal) {
  const mark = `PGHERD_HOOK_RUN=${randomUUID()}`;
  const env: NodeJS.ProcessEnv = { NODE_ENV: process.env.NODE_ENV, PGHERD_HOOK_RUN: mark.slice('PGHERD_HOOK_RUN='.length) };
  for (const k of HOOK_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
  return new Promise<{ code: number; stdout: string; stderr: string; killed: boolean }>((resolve) => {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    let killed = false;
    let exited: number | null = null;
    const cap = (s: string, d: Buffer) => (s + d.toString()).slice(-1024 * 1024);
    child.stdout.on('data', (d: Buffer) => (stdout = cap(stdout, d)));
    child.stderr.on('data', (d: Buffer) => (stderr = cap(stderr, d)));
    const killGroup = () => {
      if (exited === null) killed = true;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group is gone already.
      }
      // A descendant that left the group (setsid) holds the output open: found by its mark.
      void killMarked(mark);
    };
    const timer = setTimeout(killGroup, timeoutMs);
    signal?.addEventListener('abort', killGroup, { once: true });
    const done = (code: number) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', killGroup);
      // What it left behind, in its group or out of it, is gone before the step goes on.
      void killMarked(mark).finally(() => resolve({ code, stdout, stderr, killed }));
    };
    child.on('error', () => done(127));
    // What the hook left running when it exited is killed with its group: a resize does not leave
    // programs behind on the worker. Then 'close' comes once the output is read to its end.
    child.on('exit', (code) => {
      exited = code ?? 137;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Nothing of the group is left.
      }
      void killMarked(mark);
    });
    child.on('close', (code) => done(exited ?? code ?? 137));
  });
}
