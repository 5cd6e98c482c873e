// A herd's resize hooks: executables on the pgherd worker's host or on the member's host, run with
// documented arguments (README, "Resize hooks") and a timeout; their command, exit code and output
// are kept in the step's record. A hook that exits non-zero fails its step.
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import type { ActionDeps } from './define-action';
import type { InstanceRef } from './instance-ref';
import type { StepContext } from './pipeline';
import { refuse } from './refusal';
import { execNoted, execNotedOk } from './actions/control-steps';
import { shellCommand } from '@/lib/ssh/quote';

export interface HookConfig {
  path: string;
  on: 'worker' | 'database';
  timeoutSeconds: number;
}

/** Refuses (nothing changed yet) a hook that is not an executable file where it will run. */
export async function checkHook(deps: ActionDeps, t: InstanceRef, ctx: StepContext, hook: HookConfig, what: string): Promise<string> {
  if (!hook.path.startsWith('/')) throw refuse('params', `the ${what} hook ${hook.path} is not an absolute path`);
  if (hook.on === 'worker') {
    const ok = await access(hook.path, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (!ok) throw refuse('params', `the ${what} hook ${hook.path} is not an executable file on the pgherd worker's host`);
    return `${hook.path}: executable on the worker's host`;
  }
  const r = await execNoted(deps, t, ctx, ['test', '-f', hook.path, '-a', '-x', hook.path], 15_000);
  if (r.code !== 0) throw refuse('params', `the ${what} hook ${hook.path} is not an executable file on ${t.ssh.host}`);
  return `${hook.path}: executable on ${t.ssh.host}`;
}

/** Runs the hook with `args`; throws with its exit code and output when it fails or outlives its timeout. */
export async function runHook(deps: ActionDeps, t: InstanceRef, ctx: StepContext, hook: HookConfig, args: string[]): Promise<void> {
  const argv = [hook.path, ...args];
  if (hook.on === 'database') {
    await execNotedOk(deps, t, ctx, argv, hook.timeoutSeconds * 1000);
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
