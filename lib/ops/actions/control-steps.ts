// Steps shared by the instance actions: run a driver command over SSH, and record it.
import { shellCommand } from '@/lib/ssh/quote';
import { SshCommandError } from '@/lib/ssh/ssh-errors';
import { driverFor } from '../drivers';
import type { ActionDeps } from '../define-action';
import type { InstanceRef } from '../instance-ref';
import { step, type Step } from '../pipeline';
import { refreshInstance } from '../refresh';

type Verb = 'start' | 'stop' | 'restart' | 'reload' | 'promote';

/** `unless` is asked when the step runs: true skips the command (and says why in the record). */
export function sshControlStep(t: InstanceRef, deps: ActionDeps, verb: Verb, name: string, unless?: () => string | false): Step {
  return step(name, async (ctx) => {
    const why = unless?.();
    if (why) {
      ctx.note({ stdout: `skipped: ${why}` });
      return;
    }
    const d = driverFor(t.controlDriver);
    const argv = verb === 'stop' ? d.stop(t, 'fast') : d[verb](t);
    ctx.note({ command: shellCommand(argv) });
    const r = await deps.ssh.exec(t.ssh, argv, { timeoutMs: 150_000 });
    ctx.note({ exitCode: r.code, stdout: r.stdout.slice(-4000), stderr: r.stderr.slice(-4000) });
    if (r.code !== 0) throw new SshCommandError(t.ssh.host, shellCommand(argv), r.code, r.signal, r.stderr);
  }, { timeoutMs: 160_000 });
}

export function refreshStep(t: InstanceRef, deps: ActionDeps): Step {
  return step('record the observed state in the inventory', async () => {
    await refreshInstance(deps.db, t.id, t);
  }, { timeoutMs: 10_000 });
}
