'use client';

import { useEffect, useState } from 'react';
import type { OperationView } from '@/lib/ops/operation-view';

function duration(from: string, to: string | null): string {
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Shows an operation and follows it until it ends; cancel while it runs, retry what failed after. */
export function OperationLive({
  initial,
  cancel,
  retry,
}: {
  initial: OperationView;
  cancel?: (f: FormData) => Promise<void>;
  retry?: (f: FormData) => Promise<void>;
}) {
  const [op, setOp] = useState(initial);
  const [error, setError] = useState('');

  useEffect(() => {
    if (op.finishedAt) return;
    const poll = async () => {
      try {
        const res = await fetch(`/api/operations/${op.id}`, { cache: 'no-store' });
        if (!res.ok) throw new Error(`status ${res.status}`);
        // The console's own answer: /api/operations/[id] returns an OperationView.
        setOp((await res.json()) as OperationView);
        setError('');
      } catch (err) {
        setError(`lost contact with the console (${(err as Error).message}); retrying`);
        setOp({ ...op });
      }
    };
    const t = setTimeout(() => void poll(), 1000);
    return () => clearTimeout(t);
  }, [op]);

  const retryable = op.targets.some((t) => ['failed', 'interrupted', 'cancelled'].includes(t.status) && !t.error?.startsWith('refused:'));
  return (
    <div className="operation">
      <div className="operation-controls">
        {cancel && !op.finishedAt && !op.cancelRequested && (
          <form action={cancel}>
            <input type="hidden" name="id" value={op.id} />
            <button type="submit" className="button cancel-link">
              Cancel
            </button>
          </form>
        )}
        {retry && op.finishedAt && retryable && (
          <form action={retry}>
            <input type="hidden" name="id" value={op.id} />
            <button type="submit" className="button">
              Retry failed targets
            </button>
          </form>
        )}
      </div>
      <p>
        Status:{' '}
        <span className={`badge badge-op-${op.status}`} data-testid="operation-status">
          {op.status}
        </span>
        {op.cancelRequested && !op.finishedAt && <span className="muted"> (cancelling between steps)</span>} · requested by {op.requestedBy}{' '}
        at {op.createdAt.replace('T', ' ').slice(0, 19)}Z
        {op.finishedAt && op.startedAt && <> · took {duration(op.startedAt, op.finishedAt)}</>}
      </p>
      {error && <p className="errornote">{error}</p>}
      {!op.finishedAt && op.workersAlive === 0 && (
        <p className="errornote" data-testid="no-worker">
          No worker is alive: nothing is running this operation. Start a worker (<code>npm run worker</code>); it then runs what is queued
          and marks what was running as interrupted, with what it last observed.
        </p>
      )}
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
          </h2>
          {t.outcome && (
            <p className="outcome" data-outcome>
              {t.outcome}
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
