// A restart of a member pgherd runs itself, read over the SSH session the restart holds anyway: the
// postmaster's postmaster.pid and `pg_ctl status` before (it must run; the file ties the recorded data
// directory to the instance's address), the file again after (a new postmaster, ready), and one
// connection to Postgres at the end, whose observation goes into the inventory. Where the file cannot
// tie the directory to the address, or only a pending restart is asked for (Postgres says which), the
// restart reads Postgres first, as every control plane's does (verb-flows.ts).
import type { ActionDeps, ActionPlan, ActionStep } from '@/lib/engine/define-action';
import type { StepContext } from '@/lib/engine/pipeline';
import { commonWarnings } from '@/lib/engine/define-action';
import { driverFor, STATUS_NOT_RUNNING } from '@/lib/fleet/drivers';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, waitObserved } from '@/lib/fleet/observe';
import { parsePostmasterPid, servesAddress } from '@/lib/fleet/postmaster-pid';
import { execNoted } from '@/lib/actions/steps/exec-noted';
import { refreshStep, sshControlStep } from '@/lib/actions/steps/control-steps';
import { restartFlow } from '@/lib/actions/drivers/verb-flows';
import { refuse } from '@/lib/fleet/refusal';
import type { RestartState } from '../driver';

const MARK = '--pgherd-status--';
/** The file (when there is one), a mark, then the driver's status command's own output and exit code. */
const READ = `cat -- "$1/postmaster.pid" 2>/dev/null; printf '%s\\n' '${MARK}'; shift; exec "$@"`;

/** pg_ctl restart: `pendingOnly` asks Postgres what is pending, so it reads Postgres first. */
export function pgCtlRestart<S extends RestartState>(t: InstanceRef, pendingOnly: boolean): ActionPlan<S> {
  if (pendingOnly)
    return restartFlow(t, {
      pendingOnly,
      pendingSaidBy: 'postgres',
      ask: sshControlStep(
        t,
        'restart',
        'restart',
        (state) => state.leftAlone ?? false,
        (state) => state.seen,
      ),
    });
  return {
    steps: [
      readPostmasterStep(t),
      sshControlStep(t, 'restart', 'restart', undefined, (state) => (state.host?.servesAddress ? 'proven by the host' : state.seen)),
      restartedStep(t),
      refreshStep(t, (s) => s.after),
    ],
    warnings: commonWarnings(t),
  };
}

async function readPostmaster(deps: ActionDeps, t: InstanceRef, x: StepContext) {
  const r = await execNoted(deps, t, x, ['sh', '-c', READ, 'sh', t.dataDirectory, ...driverFor(t.controlDriver).status(t)], 30_000);
  const [file = '', status = ''] = r.stdout.split(`${MARK}\n`);
  return { code: r.code, file: parsePostmasterPid(file), status: status.trim() || r.stderr.trim() };
}

function readPostmasterStep<S extends RestartState>(t: InstanceRef): ActionStep<S> {
  return {
    name: 'read the postmaster',
    does: { kind: 'pg.read-postmaster', instance: t.id, over: 'ssh', dataDirectory: t.dataDirectory },
    says: `read ${t.dataDirectory}/postmaster.pid and status on ${t.ssh.host} (it must be running: use start otherwise)`,
    timeoutMs: 30_000,
    run: async (x) => {
      const r = await readPostmaster(x.deps, t, x);
      if (r.code === STATUS_NOT_RUNNING) throw new Error(`${t.label} is not running (${r.status.slice(0, 200)}); use start`);
      if (r.code !== 0 || !r.file)
        throw new Error(
          `${t.ssh.host}: cannot tell whether ${t.dataDirectory} runs (status exited ${String(r.code)}: ${r.status.slice(0, 300)})`,
        );
      if (r.file.status === 'stopping' || r.file.status === 'starting')
        throw new Error(
          `${t.label} is ${r.file.status} (postmaster.pid says so): a restart now would undo what is under way; nothing was run`,
        );
      // pg_ctlcluster finds its cluster by version and name, not by this directory: it must be the same postmaster.
      const said = /\(PID: (\d+)\)/.exec(r.status)?.[1];
      if (said && Number(said) !== r.file.pid)
        throw refuse(
          'identity',
          `${t.ssh.host}: ${t.controlDriver} status names postmaster ${said}, while ${t.dataDirectory}/postmaster.pid names ${String(r.file.pid)}: it would act on another cluster; nothing was run`,
        );
      const proven = servesAddress(r.file, t);
      x.state.host = { pid: r.file.pid, startedAt: r.file.startedAt, servesAddress: proven };
      x.note({ stdout: `postmaster ${String(r.file.pid)}, started at ${new Date(r.file.startedAt * 1000).toISOString()}` });
      if (proven) return;
      // The file does not tie the directory to the address: Postgres at the address says which it runs from.
      const seen = await observe(t);
      if (!seen.reachable)
        throw new Error(`${t.label} is not answering (${seen.error ?? 'no reason given'}); its directory cannot be tied to it`);
      x.state.seen = seen;
    },
  };
}

function restartedStep<S extends RestartState>(t: InstanceRef): ActionStep<S> {
  return {
    name: 'wait until restarted',
    does: { kind: 'pg.wait-restarted', instance: t.id, over: 'ssh' },
    says: 'a new postmaster in postmaster.pid, then Postgres answering',
    timeoutMs: 90_000,
    run: async (x) => {
      const before = x.state.host;
      if (!before) throw new Error('the postmaster before the restart was not read');
      // pg_ctl restart -w returned once the new postmaster took connections: both are read at once.
      const [r, after] = await Promise.all([
        readPostmaster(x.deps, t, x),
        waitObserved(t, 'answering', (v) => v.reachable, { signal: x.signal }),
      ]);
      if (r.code !== 0 || !r.file) throw new Error(`${t.label} is not running after the restart (${r.status.slice(0, 300)})`);
      if (r.file.pid === before.pid) throw new Error(`${t.label}: postmaster ${String(before.pid)} still runs; it was not restarted`);
      x.state.after = after;
      x.note({ stdout: `postmaster ${String(r.file.pid)}, started at ${new Date(r.file.startedAt * 1000).toISOString()}` });
    },
  };
}
