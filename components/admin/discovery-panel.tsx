'use client';

import { useActionState, useEffect } from 'react';
import { useRouter } from 'next/navigation';
import type { DiscoverySummary } from '@/lib/features/discovery/discovery';

/** One pass as the page shows it (lib/features/discovery/discovery-runs runView, dates as text). */
export interface DiscoveryRunView {
  id: number;
  requestedBy: string;
  requestedAt: string;
  finishedAt: string | null;
  status: 'waiting' | 'running' | 'done' | 'failed';
  summary: DiscoverySummary | null;
  error: string | null;
}

export interface DiscoveryState {
  runId?: number;
  message?: string;
  error?: string;
}

const when = (iso: string) => iso.replace('T', ' ').slice(0, 19) + ' UTC';

function RunLine({ run }: { run: DiscoveryRunView }) {
  const s = run.summary;
  return (
    <li data-run={run.id} data-status={run.status}>
      #{run.id}, asked by {run.requestedBy} at {when(run.requestedAt)}: {run.status === 'waiting' && 'waiting for a worker'}
      {run.status === 'running' && 'running'}
      {run.status === 'failed' && <span className="errornote-inline">failed{run.error === null ? '' : `: ${run.error}`}</span>}
      {run.status === 'done' && s && (
        <>
          {s.found} instances found, {s.created.length} servers created{s.created.length ? ` (${s.created.join(', ')})` : ''}, {s.updated}{' '}
          updated
          {s.gone.length > 0 && `, gone from EC2: ${s.gone.join(', ')}`}
          {s.skipped.length > 0 && `, skipped: ${s.skipped.map((k) => `${k.instanceId} (${k.reason})`).join('; ')}`}
          {!!s.problems?.length && (
            <span className="errornote-inline">, not obeyed: {s.problems.map((k) => `${k.instanceId} (${k.problem})`).join('; ')}</span>
          )}
        </>
      )}
    </li>
  );
}

/**
 * EC2 discovery on the servers list: why it cannot run here, or its last passes and (for a global
 * admin) a button that asks the workers for one now, then follows it until it is done.
 */
export function DiscoveryPanel({
  unavailable,
  canRequest,
  runs,
  action,
}: {
  unavailable: string | null;
  canRequest: boolean;
  runs: DiscoveryRunView[];
  action: (prev: DiscoveryState, form: FormData) => Promise<DiscoveryState>;
}) {
  const [state, run, pending] = useActionState(action, {});
  const router = useRouter();
  const open = runs.some((r) => r.status === 'waiting' || r.status === 'running');
  // While a pass is waiting or running, the page reads the list again every second.
  useEffect(() => {
    if (!open && state.runId === undefined) return;
    const t = setInterval(() => router.refresh(), 1000);
    return () => clearInterval(t);
  }, [open, state.runId, router]);
  return (
    <div className="module discovery" data-testid="ec2-discovery">
      <h2>EC2 discovery</h2>
      {unavailable ? (
        <p className="muted" role="status" data-testid="cloud-unavailable">
          {unavailable}
        </p>
      ) : (
        canRequest && (
          <form action={run}>
            <button type="submit" className="button" disabled={pending || open}>
              Discover EC2 instances now
            </button>
          </form>
        )
      )}
      {state.error && (
        <p className="errornote" role="alert">
          {state.error}
        </p>
      )}
      {state.message && !state.error && <p role="status">{state.message}</p>}
      {runs.length > 0 && (
        <ul className="discovery-runs">
          {runs.map((r) => (
            <RunLine key={r.id} run={r} />
          ))}
        </ul>
      )}
    </div>
  );
}
