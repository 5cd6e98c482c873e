// Steps shared by the instance actions: run a driver command over SSH, and record it.
import { driverFor } from '@/lib/fleet/drivers';
import type { ActionStep } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import type { Observed } from '@/lib/fleet/observe';
import { refreshInstance } from '@/lib/fleet/record-observation';
import { observe, waitObserved } from '@/lib/fleet/observe';
import { hostSaysRunning, proveDirectoryIsInstances, proveDirectoryServed } from './data-directory';
import { execNotedOk } from './exec-noted';

type Verb = 'start' | 'stop' | 'restart' | 'reload' | 'promote';

/**
 * The driver's command for `verb` on the target's host. `unless` is asked when the step runs: a
 * reason skips the command (and the record says why).
 */
export function sshControlStep<S>(
  t: InstanceRef,
  verb: Verb,
  name: string,
  unless?: (state: S) => string | false,
  /**
   * What the step before found, moments ago: Postgres's observation (its data directory is checked), or
   * that the host proved the directory serves the instance's address (postmaster.pid). Else observed here.
   */
  seen?: (state: S) => Observed | 'proven by the host' | undefined,
): ActionStep<S> {
  const d = driverFor(t.controlDriver);
  return {
    name,
    does: {
      kind: `pg.${verb}`,
      instance: memberArg(t),
      driver: t.controlDriver,
      ...(verb === 'stop' || verb === 'restart' ? { mode: 'fast' } : {}),
      sshHost: t.ssh.host,
      dataDirectory: t.dataDirectory,
    },
    says: `${t.controlDriver} ${verb === 'stop' ? 'stop -m fast' : verb === 'restart' ? 'restart -m fast' : verb} on ${t.ssh.host} (${t.dataDirectory})`,
    timeoutMs: 160_000,
    run: async (x) => {
      const why = unless?.(x.state);
      if (why) return void x.note({ stdout: `skipped: ${why}` });
      // The data directory pg_ctl is given must be this instance's: the one Postgres at its address runs
      // from, or, where nothing answers there (a start, a stop of one that hangs), one the host proves.
      const found = seen?.(x.state);
      const o = verb === 'start' || found === 'proven by the host' ? null : (found ?? (await observe(t, 3000)));
      if (found === 'proven by the host') x.note({ stdout: `${t.dataDirectory} serves ${t.host}:${String(t.port)} (postmaster.pid)` });
      else if (o?.reachable) await proveDirectoryServed(x.deps, t, x, o);
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
    does: { kind: 'inventory.record-observed', instance: t.id },
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
    does: { kind: 'pg.wait-up', instance: memberArg(t), startOverSsh: true },
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

/** A fast stop, sent only when the host says a server runs on the target's data directory. */
export function stopIfRunningStep<S>(t: InstanceRef): ActionStep<S> {
  const d = driverFor(t.controlDriver);
  return {
    name: 'stop it',
    does: {
      kind: 'pg.stop',
      instance: memberArg(t),
      driver: t.controlDriver,
      mode: 'fast',
      onlyIfRunning: true,
      dataDirectory: t.dataDirectory,
    },
    says: `stop ${t.label} (fast) if it runs`,
    timeoutMs: 160_000,
    run: async (x) => {
      if (!(await hostSaysRunning(x.deps, t, x))) return void x.note({ stdout: 'skipped: not running (its host says so)' });
      await execNotedOk(x.deps, t, x, d.stop(t, 'fast'));
    },
  };
}
