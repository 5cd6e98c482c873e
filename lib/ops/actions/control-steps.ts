// Steps shared by the instance actions: run a driver command over SSH, and record it.
import { shellCommand } from '@/lib/ssh/quote';
import type { SshTarget } from '@/lib/ssh/ssh-client';
import { SshCommandError } from '@/lib/ssh/ssh-errors';
import { driverFor } from '../drivers';
import type { ActionDeps, ActionStep } from '../define-action';
import type { InstanceRef } from '../instance-ref';
import type { StepContext } from '../pipeline';
import type { Observed } from '../observe';
import { refreshInstance } from '../refresh';
import { observe, waitObserved } from '../observe';
import { proveDirectoryIsInstances, proveDirectoryServed } from '../data-directory';

type Verb = 'start' | 'stop' | 'restart' | 'reload' | 'promote';

/**
 * Runs argv on the target's host and writes the command, exit code and output into the step's record.
 * `recordOutput: false` for what may hold secrets (a configuration file read back): its size is recorded instead.
 */
export async function execNoted(
  deps: ActionDeps,
  t: { ssh: SshTarget },
  ctx: StepContext,
  argv: string[],
  timeoutMs = 150_000,
  stdin?: string,
  recordOutput = true,
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
  stdin?: string,
  recordOutput = true,
) {
  const r = await execNoted(deps, t, ctx, argv, timeoutMs, stdin, recordOutput);
  if (r.code !== 0) throw new SshCommandError(t.ssh.host, shellCommand(argv), r.code, r.signal, r.stderr);
  return r;
}

/**
 * The driver's command for `verb` on the target's host. `unless` is asked when the step runs: a
 * reason skips the command (and the record says why).
 */
export function sshControlStep<S>(t: InstanceRef, verb: Verb, name: string, unless?: (state: S) => string | false): ActionStep<S> {
  const d = driverFor(t.controlDriver);
  return {
    name,
    says: `${t.controlDriver} ${verb === 'stop' ? 'stop -m fast' : verb === 'restart' ? 'restart -m fast' : verb} on ${t.ssh.host} (${t.dataDirectory})`,
    timeoutMs: 160_000,
    run: async (x) => {
      const why = unless?.(x.state);
      if (why) return void x.note({ stdout: `skipped: ${why}` });
      // The data directory pg_ctl is given must be this instance's: the one Postgres at its address runs
      // from, or, where nothing answers there (a start, a stop of one that hangs), one the host proves.
      const o = verb === 'start' ? null : await observe(t, 3000);
      if (o?.reachable) await proveDirectoryServed(x.deps, t, x, o);
      else await proveDirectoryIsInstances(x.deps, t, x);
      await execNotedOk(x.deps, t, x, verb === 'stop' ? d.stop(t, 'fast') : d[verb](t));
    },
  };
}

/**
 * Writes the instance's state into the inventory: what the step before observed when it says
 * (`observed(state)`), else a fresh observation.
 */
export function refreshStep<S>(t: InstanceRef, observed?: (state: S) => Observed | undefined): ActionStep<S> {
  return {
    name: 'record the observed state in the inventory',
    says: 'record what it is now in the inventory',
    timeoutMs: 10_000,
    run: async (x) => {
      await refreshInstance(x.deps.db, t.id, t, observed?.(x.state));
    },
  };
}

/** How long Postgres may take to answer after its host boots, before it is started over SSH (and again after). */
const BOOT_UP_MS = 60_000;

/** After an EC2 start: wait until Postgres answers; started over SSH when the host does not start it. */
export function postgresUpStep<S>(t: InstanceRef): ActionStep<S> {
  return {
    name: 'Postgres up',
    says: 'wait until Postgres answers (started over SSH if the host does not start it)',
    timeoutMs: BOOT_UP_MS * 2 + 30_000,
    run: async (x) => {
      const up = await waitObserved(t, 'answering', (o) => o.reachable, { timeoutMs: BOOT_UP_MS, signal: x.signal }).catch(() => null);
      if (up) return void x.note({ stdout: 'answering (started with its host)' });
      await sshControlStep<S>(t, 'start', 'start Postgres').run(x);
      await waitObserved(t, 'answering', (o) => o.reachable, { timeoutMs: BOOT_UP_MS, signal: x.signal });
    },
  };
}
