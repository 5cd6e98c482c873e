// A plan as the confirmation page shows it, and the operation page shows it again to an approver.
import Link from 'next/link';
import { TopologyDiagram } from '@/components/herds/topology-diagram';
import { ParamsForm, WaveField } from '@/components/ops/plan-forms';
import { ResultTable } from '@/components/tables/result-table';
import type { PlanView } from '@/lib/features/operations/confirmation-view';

/**
 * A plan as the confirmation page draws it: notices, parameters and waves (their forms where the page
 * offers them), the herds before and after, the cost, every target's steps, and the confirm form when
 * `confirmAction` is given (the operation page shows a plan awaiting approval without one).
 */
export function PlanBody({
  view,
  confirmAction,
}: {
  view: PlanView & { actionLabel: string; back: string };
  confirmAction?: (form: FormData) => Promise<void>;
}) {
  return (
    <>
      {view.retryOf !== null && (
        <p className="help" data-testid="retry-of">
          A retry of <Link href={`/operations/${view.retryOf}`}>operation #{view.retryOf}</Link>: planned again against the inventory as it
          is now; confirming starts a new operation.
        </p>
      )}
      {view.notices.stale && (
        <p className="errornote" role="alert">
          The inventory changed since you saw the plan. This is the new plan: read it again.
        </p>
      )}
      {view.notices.mistyped && (
        <p className="errornote" role="alert">
          The confirmation did not match. Nothing has been run.
        </p>
      )}
      {view.notices.nothing && (
        <p className="errornote" role="alert">
          Every target is refused: nothing to run.
        </p>
      )}
      {view.missing.length > 0 && <p className="errornote">Not in the inventory (any more): ids {view.missing.join(', ')}.</p>}
      {view.paramsForm && <ParamsForm {...view.paramsForm} />}
      {view.wavesForm && <WavesForm keep={view.wavesForm.keep} values={view.wavesForm.values} />}
      {view.wavesError !== null && (
        <p className="errornote" role="alert" data-testid="waves-error">
          Waves: {view.wavesError}. Nothing has been run.
        </p>
      )}
      {view.waves && (
        <section className="waves-plan" aria-label="Waves" data-testid="waves-plan">
          <h2>Waves</h2>
          <p>{view.waves.summary}.</p>
          <ol>
            {view.waves.waves.map((w) => (
              <li key={w.wave} data-wave={w.wave}>
                {w.count}: {w.labels}
              </li>
            ))}
          </ol>
        </section>
      )}
      {view.diagrams.length > 0 && (
        <section className="plan-diagrams" aria-label="The herd before and after">
          <h2>Before and after</h2>
          {view.failoverNote && (
            <p className="help">
              After: the candidate as planned. Without a named candidate, the failover takes the replica with the most WAL when it runs.
            </p>
          )}
          {view.diagrams.map((d) => (
            <div key={d.key} className="diagram-pair" data-diagrams={d.label}>
              <TopologyDiagram input={d.before} title={d.title} testId="topology-before" />
              <TopologyDiagram input={d.after} title={`after ${view.actionLabel.toLowerCase()}`} testId="topology-after" />
            </div>
          ))}
          {view.diagramsNote !== null && <p className="help">{view.diagramsNote}</p>}
        </section>
      )}
      {view.cost !== null && (
        <p className="plan-cost" data-testid="plan-cost">
          <strong>Cost, in total:</strong> {view.cost}
        </p>
      )}
      <PlanTable view={view} />
      {view.approval && (
        <p className="approval" data-testid="plan-needs-approval">
          <strong>This plan needs approval:</strong> {view.approval.approvers}. Confirming it asks for that approval; nothing runs, nothing
          is queued and no herd is held until then.
        </p>
      )}
      {view.notices.breakGlass && (
        <p className="errornote" role="alert" data-testid="break-glass-refused">
          Break glass was refused (not an admin in every environment of the plan, a policy forbids it, or no reason given). Nothing has been
          run.
        </p>
      )}
      {view.confirm && confirmAction && (
        <form action={confirmAction} className="confirm-form">
          {view.confirm.hidden.map(([k, v]) => (
            <input key={k} type="hidden" name={k} value={v} />
          ))}
          {view.confirm.typeToConfirm !== null && (
            <p>
              <label>
                Type <code>{view.confirm.typeToConfirm}</code> to confirm:{' '}
                <input name="confirmation" autoComplete="off" required aria-label="Confirmation" />
              </label>
            </p>
          )}
          {view.approval?.breakGlass === 'offered' && (
            <details className="break-glass" data-testid="break-glass">
              <summary>Break glass: run it now, without approval</summary>
              <p className="help">
                For the worst day, when no approver can be reached. It runs at once; the operation, the audit log, the approval.break_glass
                webhook and the dashboard say so, with your reason.
              </p>
              <p>
                <label>
                  <input type="checkbox" name="breakGlassNow" value="1" /> Run it now without approval
                </label>
              </p>
              <p>
                <label>
                  Reason (at least 10 characters):
                  <br />
                  <textarea name="breakGlassReason" rows={2} maxLength={500} aria-label="Break glass reason" />
                </label>
              </p>
            </details>
          )}
          <button type="submit" className="button danger">
            {view.confirm.button}
            {view.approval ? ' (after approval)' : ''}
          </button>{' '}
          <Link className="button cancel-link" href={view.back}>
            No, take me back
          </Link>
        </form>
      )}
    </>
  );
}

function PlanTable({ view }: { view: PlanView }) {
  const rolling = view.waves !== null;
  return (
    <ResultTable
      className="plan"
      rows={view.targets}
      rowKey={({ key }) => key}
      rowData={({ target: t }) => ({ target: t.label })}
      rowClass={({ target: t }) => (t.refused ? 'refused' : undefined)}
      columns={[
        {
          header: view.onHerds ? 'Herd' : 'Instance',
          cell: ({ target: t, href }) => (
            <Link prefetch={false} href={href}>
              {t.label}
            </Link>
          ),
        },
        { header: 'Environment / herd', cell: ({ target: t }) => `${t.environment} / ${t.herd}` },
        ...(rolling ? [{ header: 'Wave', cell: ({ wave }: Row) => wave ?? '' }] : []),
        { header: 'What will happen', cell: ({ target: t }) => <TargetPlan target={t} /> },
        {
          header: 'Warnings',
          cell: ({ target: t }) =>
            t.warnings.map((w, i) => (
              <div key={i} className="warn">
                {w}
              </div>
            )),
        },
      ]}
    />
  );
}

function WavesForm({ keep, values }: { keep: [string, string][]; values: Record<string, string> }) {
  const v = (k: string) => values[k] ?? '';
  return (
    <form method="get" className="action-params waves-form" aria-label="Waves">
      {keep.map(([k, val]) => (
        <input key={k} type="hidden" name={k} value={val} />
      ))}
      <fieldset>
        <legend>Run in waves</legend>
        <p className="help">
          Leave the size empty to start every target at once. With a soak time, each wave waits until every herd the last one touched has a
          writable primary and streaming replicas within the lag limits for that long.
        </p>
        <p>
          <WaveField field="size" label="Wave size: " value={v('size')} placeholder="3 or 10%" size={6} />{' '}
          <WaveField field="canary" label="canary first: " value={v('canary')} placeholder="0" size={4} />{' '}
          <label htmlFor="w-order">order: </label>
          <select id="w-order" name="w.order" defaultValue={v('order') || 'listed'}>
            <option value="listed">as listed</option>
            <option value="site">site by site</option>
            <option value="environment">environment by environment</option>
          </select>
        </p>
        <p>
          <WaveField field="soak" label="Health gate: soak (s): " value={v('soak')} placeholder="none" size={5} />{' '}
          <WaveField field="lagMiB" label="lag under (MiB): " value={v('lagMiB')} placeholder="16" size={5} />{' '}
          <WaveField field="lagSeconds" label="and (s): " value={v('lagSeconds')} placeholder="30" size={5} />{' '}
          <WaveField field="deadline" label="pause after (s): " value={v('deadline')} placeholder="600" size={5} />
        </p>
        <p>
          <WaveField field="failures" label="Failure budget: pause after " value={v('failures')} placeholder="—" size={4} />{' '}
          <WaveField field="failPercent" label="failed targets, or more than (%) " value={v('failPercent')} placeholder="—" size={4} /> of
          those started
        </p>
        <button type="submit" className="button">
          Show the waves
        </button>
      </fieldset>
    </form>
  );
}

type Row = PlanView['targets'][number];

/** One target's plan as the page lists it: its refusal, or its facts and its steps in order. */
function TargetPlan({ target: t }: { target: Row['target'] }) {
  if (t.refused) return <strong className="warn">Refused: {t.refused}</strong>;
  return (
    <>
      {t.facts && (
        <dl className="plan-facts">
          {t.facts.map((f) => (
            <div key={f.label} data-fact={f.label}>
              <dt>{f.label}</dt>
              <dd>{f.value}</dd>
            </div>
          ))}
        </dl>
      )}
      <ol className="plan-steps">
        {t.steps.map((s, i) => (
          <li key={i}>{s}</li>
        ))}
      </ol>
    </>
  );
}
