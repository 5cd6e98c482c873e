// Running a command on a target's host as a step: the command, its exit code and its output recorded.
import { shellCommand } from '@/lib/adapters/ssh/quote';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { SshCommandError } from '@/lib/adapters/ssh/ssh-errors';
import type { ActionDeps } from '@/lib/engine/define-action';
import type { StepContext } from '@/lib/engine/pipeline';

/** What a command is given beyond its argv: its stdin, and whether its output may be recorded. */
export interface ExecOptions {
  stdin?: string | undefined;
  /** false for what may hold secrets (a configuration file read back): its size is recorded instead. */
  recordOutput?: boolean;
}

/** Runs argv on the target's host and writes the command, exit code and output into the step's record. */
export async function execNoted(
  deps: ActionDeps,
  t: { ssh: SshTarget },
  ctx: StepContext,
  argv: string[],
  timeoutMs = 150_000,
  { stdin, recordOutput = true }: ExecOptions = {},
) {
  ctx.note({ command: shellCommand(argv) });
  // The step's signal: a step stopped (its lease lost, its deadline passed) kills the command on the host.
  const r = await deps.ssh.exec(t.ssh, argv, { timeoutMs, stdin, signal: ctx.signal });
  ctx.note({
    exitCode: r.code,
    stdout: recordOutput ? r.stdout.slice(-4000) : `(${r.stdout.length} bytes read, not recorded: it may hold passwords)`,
    stderr: r.stderr.slice(-4000),
  });
  return r;
}

/** execNoted, failing the step with the host, command, exit code and stderr unless it exits 0. */
export async function execNotedOk(
  deps: ActionDeps,
  t: { ssh: SshTarget },
  ctx: StepContext,
  argv: string[],
  timeoutMs = 150_000,
  opts: ExecOptions = {},
) {
  const r = await execNoted(deps, t, ctx, argv, timeoutMs, opts);
  if (r.code !== 0) throw new SshCommandError(t.ssh.host, shellCommand(argv), r.code, r.signal, r.stderr);
  return r;
}
