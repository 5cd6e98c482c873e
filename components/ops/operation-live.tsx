'use client';

import { useEffect, useState } from 'react';
import type { OperationDelta, OperationView } from '@/lib/engine/operation-view';
import { OperationTimeline } from './operation-timeline';
import { IdButton } from '@/components/tables/id-button';

function duration(from: string, to: string | null): string {
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function clock(at: string | null): string {
  return at ? at.slice(11, 19) : '';
}

/** The view after a poll: the operation as answered, each target as last sent, in the answer's order. */
function merge(before: OperationView, delta: OperationDelta): OperationView {
  const byId = new Map(before.targets.map((t) => [t.id, t]));
  for (const t of delta.targets) byId.set(t.id, t);
  const { order, ...rest } = delta;
  return { ...rest, targets: order.map((id) => byId.get(id)).filter((t) => t !== undefined) };
}

/** Shows an operation and follows it until it ends; pause, resume or abort while it runs, retry what failed after. */
export function OperationLive({
  initial,
  cancel,
  pause,
  resume,
  retry,
}: {
  initial: OperationView;
  cancel?: (f: FormData) => Promise<void>;
  pause?: (f: FormData) => Promise<void>;
  resume?: (f: FormData) => Promise<void>;
  retry?: (f: FormData) => Promise<void>;
}) {
  const [op, setOp] = useState(initial);
  const [error, setError] = useState('');
  // When the view was last read (the timeline's "now"): null until mounted, so that the server's
  // render and the browser's agree.
  const [readAt, setReadAt] = useState<number | null>(null);
  useEffect(() => {
    const t = setTimeout(() => setReadAt(Date.now()), 0);
    return () => clearTimeout(t);
  }, []);

  useEffect(() => {
    if (op.finishedAt) return;
    const poll = async () => {
      try {
        const res = await fetch(`/api/operations/${op.id}?since=${encodeURIComponent(op.cursor)}`, { cache: 'no-store' });
        if (!res.ok) throw new Error(`status ${res.status}`);
        // The console's own answer: only the targets that changed, merged into those already shown.
        setOp(merge(op, (await res.json()) as OperationDelta));
        setReadAt(Date.now());
        setError('');
      } catch (err) {
        setError(`lost contact with the console (${(err as Error).message}); retrying`);
        setOp({ ...op });
      }
    };
    const t = setTimeout(() => void poll(), 1000);
    return () => clearTimeout(t);
  }, [op]);

  const retryable = op.targets.some(
    (t) => ['failed', 'interrupted', 'cancelled', 'preempted'].includes(t.status) && !t.error?.startsWith('refused:'),
  );
  return (
    <div className="operation">
      <div className="operation-controls">
        {pause && !op.finishedAt && !op.cancelRequested && !op.pausedAt && op.status !== 'awaiting_approval' && (
          <IdButton action={pause} id={op.id} title="Nothing new starts; running targets finish">
            Pause
          </IdButton>
        )}
        {resume && !op.finishedAt && !op.cancelRequested && op.pausedAt && (
          <IdButton action={resume} id={op.id}>
            Resume
          </IdButton>
        )}
        {cancel && !op.finishedAt && !op.cancelRequested && (
          <IdButton
            action={cancel}
            id={op.id}
            quiet
            title="Nothing new starts; running targets finish their current step and run their cleanups; the rest end cancelled"
          >
            Abort
          </IdButton>
        )}
        {retry && op.finishedAt && retryable && (
          <IdButton action={retry} id={op.id}>
            Retry failed targets
          </IdButton>
        )}
      </div>
      <p>
        Status:{' '}
        <span className={`badge badge-op-${op.status}`} data-testid="operation-status">
          {op.status.replace('_', ' ')}
        </span>
        {op.cancelRequested && !op.finishedAt && <span className="muted"> (aborting: running targets stop after their current step)</span>}{' '}
        · requested by {op.requestedBy} at {op.createdAt.replace('T', ' ').slice(0, 19)}Z
        {op.finishedAt && op.startedAt && <> · took {duration(op.startedAt, op.finishedAt)}</>}
      </p>
      {error && <p className="errornote">{error}</p>}
      {op.pausedAt && !op.finishedAt && (
        <p className="errornote" role="status" data-testid="paused">
          Paused at {clock(op.pausedAt)}: {op.pausedReason}. Nothing new starts until it is resumed; targets that were running finish.
        </p>
      )}
      {op.waves && (
        <section className="module waves" aria-label="Waves">
          <h2>Waves</h2>
          <p className="help">{op.waves.summary}.</p>
          <table className="steps">
            <thead>
              <tr>
                <th scope="col">Wave</th>
                <th scope="col">State</th>
                <th scope="col">Targets</th>
                <th scope="col">Started</th>
                <th scope="col">Ended</th>
                <th scope="col">Gate</th>
              </tr>
            </thead>
            <tbody>
              {op.waves.list.map((w) => (
                <tr key={w.wave} data-wave={w.wave} className={w.wave === op.waves?.current && !op.finishedAt ? 'current' : undefined}>
                  <td className="num">{w.wave}</td>
                  <td>
                    <span className={`badge badge-wave-${w.status}`} data-testid="wave-status">
                      {w.status}
                    </span>
                  </td>
                  <td>
                    {w.targets}:{' '}
                    {Object.entries(w.counts)
                      .map(([k, n]) => `${n} ${k}`)
                      .join(', ')}
                  </td>
                  <td>{clock(w.startedAt)}</td>
                  <td>{clock(w.endedAt)}</td>
                  <td>{w.passedAt ? `passed ${clock(w.passedAt)}` : (w.gateNote ?? '')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      {!op.finishedAt && op.workersAlive === 0 && (
        <p className="errornote" data-testid="no-worker">
          No worker is alive: nothing is running this operation. Start a worker (<code>npm run worker</code>); it then runs what is queued
          and marks what was running as interrupted, with what it last observed.
        </p>
      )}
      {readAt !== null && <OperationTimeline op={op} now={op.finishedAt ? Date.parse(op.finishedAt) : readAt} />}
      {op.hiddenTargets > 0 && (
        <p className="muted" data-testid="hidden-targets">
          {op.hiddenTargets} more target{op.hiddenTargets === 1 ? ' is' : 's are'} in environments you have no role in.
        </p>
      )}
      {op.targets.map((t) => (
        <section key={t.id} className="module target" data-target={t.label}>
          <h2>
            {t.label}{' '}
            <span className={`badge badge-op-${t.status}`} data-testid="target-status">
              {t.status}
            </span>
            {t.attempts > 1 && <span className="muted"> (attempt {t.attempts})</span>}
            {op.waves && <span className="muted"> wave {t.wave}</span>}
            {t.held && t.status === 'queued' && <span className="muted"> (held)</span>}
          </h2>
          {t.outcome && (
            <p className="outcome" data-outcome>
              {t.outcome}
            </p>
          )}
          {t.cleanupFailed && (
            <p className="errornote" data-cleanup-failed>
              <strong>Left for you to finish:</strong> a cleanup of this target failed; what it should have put back is not back.
            </p>
          )}
          {t.error && <p className="errornote">{t.error}</p>}
          <table className="steps">
            <tbody>
              {t.steps.map((s) => (
                <tr key={s.seq}>
                  <td className="num">{s.seq}</td>
                  <td>{s.name}</td>
                  <td>
                    <span className={`badge badge-op-${s.status}`}>{s.status}</span>
                  </td>
                  <td className="num">{duration(s.startedAt, s.finishedAt)}</td>
                  <td>
                    {s.command && <code className="command">{s.command}</code>}
                    {s.exitCode !== null && <span className="muted"> exit {s.exitCode}</span>}
                    {s.output && <pre className="output">{s.output}</pre>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </div>
  );
}
