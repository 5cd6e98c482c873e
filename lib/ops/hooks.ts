// A herd's resize hooks: executables on the pgherd worker's host or on the member's host, run with
// documented arguments (README, "Resize hooks") and a timeout; their command, exit code and output
// are kept in the step's record. A hook that exits non-zero fails its step.
// Who may edit a herd (an operator of its environment) must not thereby run any program as the
// worker (which holds every environment's keys) or as pgherd's SSH user: a hook runs only from the
// directory the worker's PGHERD_HOOK_DIR names, its real path (symbolic links and .. resolved) inside
// it, on whichever host it runs. Installing a hook there is the deployment's act, not a form's.
import { execFile } from 'node:child_process';
import { access, constants, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { ActionDeps } from './define-action';
import type { InstanceRef } from './instance-ref';
import type { StepContext } from './pipeline';
import { refuse } from './refusal';
import { execNoted } from './actions/control-steps';
import { shellCommand } from '@/lib/ssh/quote';

export interface HookConfig {
  path: string;
  on: 'worker' | 'database';
  timeoutSeconds: number;
}

/** The directory hooks run from (PGHERD_HOOK_DIR, absolute), or why none may run. */
export function hookDir(env: Record<string, string | undefined> = process.env): string | { refused: string } {
  const dir = env.PGHERD_HOOK_DIR ?? '';
  if (!dir) return { refused: "hooks run only from the directory PGHERD_HOOK_DIR names, and the worker's environment sets none" };
  if (!path.isAbsolute(dir)) return { refused: `PGHERD_HOOK_DIR (${dir}) is not an absolute path` };
  return path.resolve(dir);
}

const inside = (dir: string, p: string) => p.startsWith(`${dir.replace(/\/$/, '')}/`);

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
    const real = await realpath(hook.path).catch(() => null);
    const realDir = await realpath(dir).catch(() => dir);
    if (!real || !inside(realDir, real))
      throw refuse('params', `the ${what} hook ${hook.path} is not a file in PGHERD_HOOK_DIR (${dir}) on the pgherd worker's host`);
    const ok = await access(real, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (!ok) throw refuse('params', `the ${what} hook ${hook.path} is not an executable file on the pgherd worker's host`);
    return `${hook.path}: executable on the worker's host`;
  }
  // On the member's host: the real paths there, and the test, in one command.
  const r = await execNoted(
    deps,
    t,
    ctx,
    [
      'sh',
      '-c',
      'real=$(readlink -f -- "$1") && dir=$(readlink -f -- "$2") && case "$real" in "$dir"/*) test -f "$real" -a -x "$real";; *) exit 3;; esac',
      'sh',
      hook.path,
      dir,
    ],
    15_000,
  );
  if (r.code === 3) throw refuse('params', `the ${what} hook ${hook.path} is not in PGHERD_HOOK_DIR (${dir}) on ${t.ssh.host}`);
  if (r.code !== 0) throw refuse('params', `the ${what} hook ${hook.path} is not an executable file on ${t.ssh.host}`);
  return `${hook.path}: executable on ${t.ssh.host}`;
}

/** Runs the hook with `args`; throws with its exit code and output when it fails or outlives its timeout. */
export async function runHook(deps: ActionDeps, t: InstanceRef, ctx: StepContext, hook: HookConfig, args: string[]): Promise<void> {
  const argv = [hook.path, ...args];
  if (hook.on === 'database') {
    // Killed on its host when its time is up (closing the SSH channel would leave it running there).
    const r = await execNoted(
      deps,
      t,
      ctx,
      ['timeout', '-k', '5', String(hook.timeoutSeconds), ...argv],
      hook.timeoutSeconds * 1000 + 15_000,
    );
    if (r.code === 124 || r.code === 137 || r.signal === 'SIGKILL')
      throw new Error(`the hook ${hook.path} did not finish within ${hook.timeoutSeconds} s (killed on ${t.ssh.host})`);
    if (r.code !== 0)
      throw new Error(
        `the hook ${hook.path} exited ${r.code ?? `on signal ${r.signal ?? '?'}`}: ${r.stderr.trim().slice(-500) || '(no output)'}`,
      );
    return;
  }
  ctx.note({ command: `${shellCommand(argv)} (on the worker's host)` });
  const r = await new Promise<{ code: number; stdout: string; stderr: string; killed: boolean }>((resolve) => {
    execFile(
      hook.path,
      args,
      { timeout: hook.timeoutSeconds * 1000, maxBuffer: 1024 * 1024, killSignal: 'SIGKILL', signal: ctx.signal },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : 127) : 0, stdout, stderr, killed: !!e?.killed });
      },
    );
  });
  ctx.note({ exitCode: r.code, stdout: r.stdout.slice(-4000), stderr: r.stderr.slice(-4000) });
  if (r.killed) throw new Error(`the hook ${hook.path} did not finish within ${hook.timeoutSeconds} s`);
  if (r.code !== 0) throw new Error(`the hook ${hook.path} exited ${r.code}: ${r.stderr.trim().slice(-500) || '(no output)'}`);
}
