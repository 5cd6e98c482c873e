// What the host says of a data directory, before pgherd moves, deletes or overwrites it. "Postgres did
// not answer" is not "stopped": a saturated, frozen or credential-refusing server does not answer
// either. Only the host can prove that no server runs there (`pg_ctl status`, which reads the
// postmaster.pid and asks the kernel), and only the directory's own pg_control can prove whose data it
// holds (its system identifier).
import type { ActionDeps } from '@/lib/engine/define-action';
import { binDir, binsOf, confInDataDirectory, driverFor, STATUS_NOT_RUNNING } from '@/lib/fleet/drivers';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import type { Observed } from '@/lib/fleet/observe';
import type { StepContext } from '@/lib/engine/pipeline';
import { refuse } from '@/lib/fleet/refusal';
import { execNoted } from './exec-noted';

/** Whether a server runs on the target's data directory, as its host says; throws when the host cannot tell. */
export async function hostSaysRunning(deps: ActionDeps, t: InstanceRef, ctx: StepContext): Promise<boolean> {
  const r = await execNoted(deps, t, ctx, driverFor(t.controlDriver).status(t), 30_000);
  if (r.code === 0) return true;
  if (r.code === STATUS_NOT_RUNNING) return false;
  throw refuse(
    'unreachable',
    `${t.ssh.host}: cannot tell whether a server runs on ${t.dataDirectory} (status exited ${r.code ?? r.signal ?? 'without a code'}: ${r.stderr.trim().slice(0, 300)}); nothing was changed`,
  );
}

/** The system identifier in the directory's pg_control (LC_ALL=C: pg_controldata's words are translated); null when there is no data directory there. */
export async function dataDirectorySystem(
  deps: ActionDeps,
  t: InstanceRef,
  ctx: StepContext,
): Promise<{ exists: boolean; system: string | null; error: string }> {
  const exists = await execNoted(deps, t, ctx, ['test', '-e', t.dataDirectory], 30_000);
  if (exists.code !== 0) return { exists: false, system: null, error: '' };
  const r = await execNoted(deps, t, ctx, ['env', 'LC_ALL=C', `${binDir(t.pgVersion)}/pg_controldata`, '-D', t.dataDirectory], 30_000);
  const m = /^Database system identifier:\s*(\d+)\s*$/m.exec(r.stdout);
  return { exists: true, system: r.code === 0 && m?.[1] ? m[1] : null, error: r.stderr.trim().slice(0, 300) };
}

/**
 * Refuses unless the host proves the target's data directory may be replaced: no server runs on it,
 * and it holds the herd's data (`herdSystem`), or nothing at all. Called right before the step that
 * moves or overwrites it, whatever was checked earlier: a server may have been started meanwhile.
 */
export async function proveReplaceable(
  deps: ActionDeps,
  t: InstanceRef,
  ctx: StepContext,
  herdSystem: string | null,
): Promise<{ exists: boolean }> {
  if (await hostSaysRunning(deps, t, ctx))
    throw refuse(
      'not-applicable',
      `a server runs on ${t.ssh.host}:${t.dataDirectory} (pg_ctl status says so), whether or not it answers pgherd: its data directory is not touched; stop it first`,
    );
  const d = await dataDirectorySystem(deps, t, ctx);
  if (!d.exists) return { exists: false };
  if (!d.system)
    throw refuse(
      'identity',
      `the system identifier of ${t.ssh.host}:${t.dataDirectory} cannot be read (${d.error || 'pg_controldata printed none'}): pgherd replaces only a data directory proven to be the herd's; move it aside by hand if it is`,
    );
  if (!herdSystem)
    throw refuse(
      'identity',
      `the herd's system identifier is not known: ${t.ssh.host}:${t.dataDirectory} (system ${d.system}) cannot be proven to be the herd's`,
    );
  if (d.system !== herdSystem)
    throw refuse(
      'identity',
      `${t.ssh.host}:${t.dataDirectory} holds system ${d.system}, not the herd's ${herdSystem}: it is another cluster's data, and is not touched`,
    );
  ctx.note({ stdout: `${t.dataDirectory}: no server running, system ${d.system} (the herd's)` });
  return { exists: true };
}

const normal = (p: string) => p.replace(/\/+$/, '') || '/';

/**
 * Refuses when the Postgres answering at the instance's address runs from another data directory than
 * the row records: a row pointed at another cluster's directory (another environment's, on a shared
 * host) would otherwise have pg_ctl stop, restart or replace that cluster. Symbolic links are resolved
 * on the host before refusing. Nothing to compare when it does not answer, or pgherd may not read it.
 */
export async function proveDirectoryServed(deps: ActionDeps, t: InstanceRef, ctx: StepContext, o: Observed): Promise<void> {
  if (!o.reachable || !o.dataDirectory || normal(o.dataDirectory) === normal(t.dataDirectory)) return;
  const r = await execNoted(deps, t, ctx, ['readlink', '-f', '--', t.dataDirectory, o.dataDirectory], 30_000);
  const [recorded, served] = r.stdout.trim().split('\n');
  if (r.code === 0 && recorded && recorded === served) return;
  throw refuse(
    'identity',
    `Postgres at ${t.host}:${t.port} runs from ${o.dataDirectory}, not the recorded ${t.dataDirectory}: pgherd does not act on a data directory it cannot tie to this instance; nothing was run`,
  );
}

/**
 * Refuses when the row's data directory is not this instance's, proven without Postgres answering at
 * the row's address (a start; a stop of one that does not answer): its pg_control must hold the herd's
 * system identifier (when the inventory knows it), and, under pg_ctl (whose postgresql.conf lives in
 * the directory), the port it is configured for must be the row's. A row pointed at another cluster's
 * directory on a shared host would otherwise have pg_ctl stop or start that cluster.
 */
export async function proveDirectoryIsInstances(deps: ActionDeps, t: InstanceRef, ctx: StepContext): Promise<void> {
  const d = await dataDirectorySystem(deps, t, ctx);
  if (!d.exists) return; // pg_ctl finds nothing there to act on, and says so
  if (t.herdSystemIdentifier && d.system && d.system !== t.herdSystemIdentifier)
    throw refuse(
      'identity',
      `${t.ssh.host}:${t.dataDirectory} holds system ${d.system}, not the herd's ${t.herdSystemIdentifier}: another cluster's data directory; nothing was run`,
    );
  if (!confInDataDirectory(t.controlDriver)) return;
  const r = await execNoted(deps, t, ctx, [`${binsOf(t)}/postgres`, '-D', t.dataDirectory, '-C', 'port'], 30_000);
  const port = r.stdout.trim();
  if (r.code === 0 && /^\d+$/.test(port) && Number(port) !== t.port)
    throw refuse(
      'identity',
      `${t.ssh.host}:${t.dataDirectory} is configured for port ${port}, not the recorded ${t.port}: it is not this instance's data directory; nothing was run`,
    );
}
