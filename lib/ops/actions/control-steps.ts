// Steps shared by the instance actions: run a driver command over SSH, and record it.
import { shellCommand } from '@/lib/ssh/quote';
import type { SshTarget } from '@/lib/ssh/ssh-client';
import { SshCommandError } from '@/lib/ssh/ssh-errors';
import { driverFor } from '../drivers';
import type { ActionDeps } from '../define-action';
import type { InstanceRef } from '../instance-ref';
import { step, type Step, type StepContext } from '../pipeline';
import type { Observed } from '../observe';
import { refreshInstance } from '../refresh';

type Verb = 'start' | 'stop' | 'restart' | 'reload' | 'promote';

/**
 * Runs argv on the target's host and writes the command, exit code and output into the step's record.
 * `recordOutput: false` for what may hold secrets (a configuration file read back): its size is recorded instead.
 */
export async function execNoted(deps: ActionDeps, t: { ssh: SshTarget }, ctx: StepContext, argv: string[], timeoutMs = 150_000, stdin?: string, recordOutput = true) {
  ctx.note({ command: shellCommand(argv) });
  const r = await deps.ssh.exec(t.ssh, argv, { timeoutMs, stdin });
  ctx.note({ exitCode: r.code, stdout: recordOutput ? r.stdout.slice(-4000) : `(${r.stdout.length} bytes read, not recorded: it may hold passwords)`, stderr: r.stderr.slice(-4000) });
  return r;
}

/** execNoted, failing the step with the host, command, exit code and stderr unless it exits 0. */
export async function execNotedOk(deps: ActionDeps, t: { ssh: SshTarget }, ctx: StepContext, argv: string[], timeoutMs = 150_000, stdin?: string, recordOutput = true) {
  const r = await execNoted(deps, t, ctx, argv, timeoutMs, stdin, recordOutput);
  if (r.code !== 0) throw new SshCommandError(t.ssh.host, shellCommand(argv), r.code, r.signal, r.stderr);
  return r;
}

/** `unless` is asked when the step runs: true skips the command (and says why in the record). */
export function sshControlStep(t: InstanceRef, deps: ActionDeps, verb: Verb, name: string, unless?: () => string | false): Step {
  return step(name, async (ctx) => {
    const why = unless?.();
    if (why) {
      ctx.note({ stdout: `skipped: ${why}` });
      return;
    }
    const d = driverFor(t.controlDriver);
    await execNotedOk(deps, t, ctx, verb === 'stop' ? d.stop(t, 'fast') : d[verb](t));
  }, { timeoutMs: 160_000 });
}

/**
 * Writes the instance's state into the inventory: what the step before observed when it says
 * (`observed()`), else a fresh observation.
 */
export function refreshStep(t: InstanceRef, deps: ActionDeps, observed?: () => Observed | undefined): Step {
  return step('record the observed state in the inventory', async () => {
    await refreshInstance(deps.db, t.id, t, observed?.());
  }, { timeoutMs: 10_000 });
}
