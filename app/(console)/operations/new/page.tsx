import Link from 'next/link';
import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { parseListParams, toQueryString, type RawParams } from '@/lib/features/admin/list-params';
import { matchingIds } from '@/lib/features/admin/list-query';
import { getAdmin } from '@/lib/features/admin/registry';
import { ParamsError, planOperation } from '@/lib/engine/plan';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { paramsFromForm } from '@/lib/engine/params-form';
import { getAction } from '@/lib/actions/registry';
import { isHerdAction, type ActionParamField } from '@/lib/engine/define-action';
import { orDeny, requireAccess } from '@/lib/features/auth/session';
import { environmentsWith } from '@/lib/engine/access';
import { capitalize, valueText } from '@/lib/features/admin/text';
import { MAX_BIG_ID, MAX_ID, parseId } from '@/lib/adapters/validation/ids';
import { MAX_SELECTION, parseSelection } from '@/lib/adapters/validation/selection';
import { wavePlan, WavesError } from '@/lib/engine/waves';
import { wavesFromForm, wavesToForm } from '@/lib/engine/waves-form';
import { confirmOperationAction } from '../actions';
import { AwsNotConfiguredError } from '@/lib/adapters/aws/config';
import { costTotalText } from '@/lib/fleet/cloud/prices';
import { TopologyDiagram } from '@/components/herds/topology-diagram';
import { herdAfter } from '@/lib/fleet/herds/diagram-after';
import { diagramOf, herdNow } from '@/lib/fleet/herds/topology';

/** How many targets' before-and-after pictures the page draws. */
const DIAGRAMS_AT_MOST = 5;

/** The confirmation page: every target with its plan, refusals with reasons, warnings. Nothing runs here. */
export default async function PlanPage({ searchParams }: { searchParams: Promise<RawParams> }) {
  const access = await requireAccess();
  const raw = await searchParams;
  const action = getAction(String(raw.action ?? ''));
  if (!action) notFound();
  const db = getDb();
  const onHerds = isHerdAction(action);
  // The changelist the selection came from (its filters, for "select all matching"): the herds or
  // instances list, or another list of the same objects (the DR pairs list is one of herds).
  const kind = onHerds ? 'herds' : 'instances';
  const from = typeof raw.from === 'string' ? getAdmin(raw.from) : undefined;
  const listAdmin = getAdmin(kind);
  if (!listAdmin) throw new Error(`the ${kind} admin is not registered`);
  const def = from && from.table === listAdmin.table ? from : listAdmin;
  const noun = (n: number) => (onHerds ? (n === 1 ? 'herd' : 'herds') : n === 1 ? 'instance' : 'instances');
  let ids: number[] = [];
  let error = '';
  const picked = parseSelection(raw, onHerds ? MAX_ID : MAX_BIG_ID);
  if (!picked.ok)
    error = picked.empty ? '' : picked.error; // nothing ticked: the page says so itself
  else if (picked.selection.all) {
    try {
      // "All matching" means all the user may run this action on, never more.
      ids = await matchingIds(
        db,
        def,
        { ...parseListParams(def, raw, access), scope: environmentsWith(access, action.permission) },
        MAX_SELECTION,
      );
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
  } else {
    ids = picked.selection.ids;
  }
  const back = `/admin/${def.name}${raw.all === '1' ? toQueryString(def, parseListParams(def, raw, access)) : ''}`;
  const crumbs = [{ label: capitalize(def.labelPlural), href: back }, { label: action.label }];
  if (error || !ids.length) {
    return (
      <>
        <Breadcrumbs items={crumbs} />
        <h1>Nothing to {action.label.toLowerCase()}</h1>
        <p className="errornote">
          {error
            ? `${error} Nothing has been changed.`
            : 'Items must be selected in order to perform actions on them. Nothing has been changed.'}
        </p>
        <Link href={back}>Back to the list</Link>
      </>
    );
  }
  const rawParams = paramsFromForm(raw);
  const retryOf = typeof raw.retryOf === 'string' ? parseId(raw.retryOf, MAX_BIG_ID) : null;
  // Waves, when asked for: part of the plan (and its digest), shown here exactly as submit will run them.
  const asked = wavesFromForm(raw);
  let plan;
  try {
    plan = await orDeny(() => planOperation(db, access, action, ids, rawParams, asked.ok ? asked.spec : null));
  } catch (err) {
    if (!(err instanceof ParamsError) && !(err instanceof WavesError) && !(err instanceof AwsNotConfiguredError)) throw err;
    if (err instanceof ParamsError && action.params) {
      // Parameters missing or wrong: nothing is planned; the form says what to give, with what was given.
      const given = Object.keys(rawParams).length > 0;
      const keepAll = Object.entries(raw).filter(([k, v]) => !k.startsWith('p.') && typeof v === 'string') as [string, string][];
      const members =
        onHerds && ids.length === 1 && action.params.fields.some((f) => f.kind === 'herd-member')
          ? await loadInstanceRefs(db, [], { herdIds: ids })
          : [];
      return (
        <>
          <Breadcrumbs items={crumbs} />
          <h1>
            {action.label}: {ids.length} {noun(ids.length)}
          </h1>
          {given ? (
            <p className="errornote" role="alert">
              Invalid parameters: {err.message}. Nothing has been run.
            </p>
          ) : (
            <p className="help" data-testid="params-needed">
              {action.label} needs its parameters: fill them in, then update the plan. Nothing has been run.
            </p>
          )}
          <ParamsForm fields={action.params.fields} values={rawParams} keep={keepAll} herdIds={onHerds ? ids : []} herdMembers={members} />
          <Link href={back}>Back to the list</Link>
        </>
      );
    }
    return (
      <>
        <Breadcrumbs items={crumbs} />
        <h1>{action.label}</h1>
        <p className="errornote" role="alert">
          {err instanceof AwsNotConfiguredError
            ? `${err.message}.`
            : `Invalid ${err instanceof WavesError ? 'waves' : 'parameters'}: ${err.message}.`}{' '}
          Nothing has been run.
        </p>
        <Link href={back}>Back to the list</Link>
      </>
    );
  }
  const runnable = plan.targets.filter((t) => !t.refused);
  // A change of a herd's shape (switchover, failover, remaster): the herd as observed now, and as the
  // operation will leave it, side by side (for the first few targets: a page of 200 pictures says less).
  const reshaped = runnable.filter((t) => t.change).slice(0, DIAGRAMS_AT_MOST);
  const diagrams = await Promise.all(
    reshaped.map(async (t) => {
      const now = await herdNow(db, t.herdId);
      if (!now || !t.change) return null;
      const before = diagramOf(now);
      return { target: t, before, after: herdAfter(before, t.change) };
    }),
  );
  const rolling = asked.ok && asked.spec ? wavePlan(plan, asked.spec) : null;
  const waveOf = new Map(rolling?.waves.flatMap((w) => w.targets.map((t) => [t, w.wave] as const)));
  const wv = (k: string) => (typeof raw[`w.${k}`] === 'string' ? String(raw[`w.${k}`]) : '');
  const herdIds = [...new Set(plan.targets.map((t) => t.herdId))];
  // A member of "the herd" can be chosen only when every target is in the same one.
  const herdMembers =
    action.params?.fields.some((f) => f.kind === 'herd-member') && herdIds.length === 1 ? await loadInstanceRefs(db, [], { herdIds }) : [];
  const keep = Object.entries(raw).filter(
    ([k, v]) => !k.startsWith('p.') && !['stale', 'mistyped', 'nothing'].includes(k) && typeof v === 'string',
  ) as [string, string][];
  const keepButWaves = Object.entries(raw).filter(
    ([k, v]) => !k.startsWith('w.') && !['stale', 'mistyped', 'nothing'].includes(k) && typeof v === 'string',
  ) as [string, string][];
  return (
    <>
      <Breadcrumbs items={crumbs} />
      <h1>
        {action.label}: {runnable.length} of {plan.targets.length} {noun(plan.targets.length)}
      </h1>
      {retryOf !== null && (
        <p className="help" data-testid="retry-of">
          A retry of <Link href={`/operations/${retryOf}`}>operation #{retryOf}</Link>: planned again against the inventory as it is now;
          confirming starts a new operation.
        </p>
      )}
      {raw.stale === '1' && (
        <p className="errornote" role="alert">
          The inventory changed since you saw the plan. This is the new plan: read it again.
        </p>
      )}
      {raw.mistyped === '1' && (
        <p className="errornote" role="alert">
          The confirmation did not match. Nothing has been run.
        </p>
      )}
      {raw.nothing === '1' && (
        <p className="errornote" role="alert">
          Every target is refused: nothing to run.
        </p>
      )}
      {plan.missing.length > 0 && <p className="errornote">Not in the inventory (any more): ids {plan.missing.join(', ')}.</p>}
      {action.params && (
        <ParamsForm fields={action.params.fields} values={plan.params} keep={keep} herdIds={herdIds} herdMembers={herdMembers} />
      )}
      {runnable.length > 1 && (
        <form method="get" className="action-params waves-form" aria-label="Waves">
          {keepButWaves.map(([k, v]) => (
            <input key={k} type="hidden" name={k} value={v} />
          ))}
          <fieldset>
            <legend>Run in waves</legend>
            <p className="help">
              Leave the size empty to start every target at once. With a soak time, each wave waits until every herd the last one touched
              has a writable primary and streaming replicas within the lag limits for that long.
            </p>
            <p>
              <WaveField field="size" label="Wave size: " value={wv('size')} placeholder="3 or 10%" size={6} />{' '}
              <WaveField field="canary" label="canary first: " value={wv('canary')} placeholder="0" size={4} />{' '}
              <label htmlFor="w-order">order: </label>
              <select id="w-order" name="w.order" defaultValue={wv('order') || 'listed'}>
                <option value="listed">as listed</option>
                <option value="site">site by site</option>
                <option value="environment">environment by environment</option>
              </select>
            </p>
            <p>
              <WaveField field="soak" label="Health gate: soak (s): " value={wv('soak')} placeholder="none" size={5} />{' '}
              <WaveField field="lagMiB" label="lag under (MiB): " value={wv('lagMiB')} placeholder="16" size={5} />{' '}
              <WaveField field="lagSeconds" label="and (s): " value={wv('lagSeconds')} placeholder="30" size={5} />{' '}
              <WaveField field="deadline" label="pause after (s): " value={wv('deadline')} placeholder="600" size={5} />
            </p>
            <p>
              <WaveField field="failures" label="Failure budget: pause after " value={wv('failures')} placeholder="—" size={4} />{' '}
              <WaveField field="failPercent" label="failed targets, or more than (%) " value={wv('failPercent')} placeholder="—" size={4} />{' '}
              of those started
            </p>
            <button type="submit" className="button">
              Show the waves
            </button>
          </fieldset>
        </form>
      )}
      {!asked.ok && (
        <p className="errornote" role="alert" data-testid="waves-error">
          Waves: {asked.error}. Nothing has been run.
        </p>
      )}
      {rolling && (
        <section className="waves-plan" aria-label="Waves" data-testid="waves-plan">
          <h2>Waves</h2>
          <p>{rolling.summary}.</p>
          <ol>
            {rolling.waves.map((w) => (
              <li key={w.wave} data-wave={w.wave}>
                {w.targets.length} {noun(w.targets.length)}:{' '}
                {w.targets
                  .slice(0, 12)
                  .map((t) => t.label)
                  .join(', ')}
                {w.targets.length > 12 ? `, and ${w.targets.length - 12} more` : ''}
              </li>
            ))}
          </ol>
        </section>
      )}
      {diagrams.some(Boolean) && (
        <section className="plan-diagrams" aria-label="The herd before and after">
          <h2>Before and after</h2>
          {action.name === 'dr-failover' && (
            <p className="help">
              After: the candidate as planned. Without a named candidate, the failover takes the replica with the most WAL when it runs.
            </p>
          )}
          {diagrams.map(
            (d) =>
              d && (
                <div key={d.target.instanceId ?? d.target.herdId} className="diagram-pair" data-diagrams={d.target.label}>
                  <TopologyDiagram input={d.before} title={`${d.target.environment}/${d.target.herd} now`} testId="topology-before" />
                  <TopologyDiagram input={d.after} title={`after ${action.label.toLowerCase()}`} testId="topology-after" />
                </div>
              ),
          )}
          {runnable.filter((t) => t.change).length > DIAGRAMS_AT_MOST && (
            <p className="help">The first {DIAGRAMS_AT_MOST} herds are drawn; every target&rsquo;s plan is in the table.</p>
          )}
        </section>
      )}
      {plan.cost && (
        <p className="plan-cost" data-testid="plan-cost">
          <strong>Cost, in total:</strong> {costTotalText(plan.cost)}
        </p>
      )}
      <table className="plan result-list">
        <thead>
          <tr>
            <th scope="col">{onHerds ? 'Herd' : 'Instance'}</th>
            <th scope="col">Environment / herd</th>
            {rolling && <th scope="col">Wave</th>}
            <th scope="col">What will happen</th>
            <th scope="col">Warnings</th>
          </tr>
        </thead>
        <tbody>
          {plan.targets.map((t) => (
            <tr key={t.instanceId ?? `h${t.herdId}`} className={t.refused ? 'refused' : undefined} data-target={t.label}>
              <td>
                <Link prefetch={false} href={t.instanceId === null ? `/herds/${t.herdId}` : `/admin/instances/${t.instanceId}`}>
                  {t.label}
                </Link>
              </td>
              <td>
                {t.environment} / {t.herd}
              </td>
              {rolling && <td>{waveOf.get(t) ?? ''}</td>}
              <td>
                {t.refused ? (
                  <strong className="warn">Refused: {t.refused}</strong>
                ) : (
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
                )}
              </td>
              <td>
                {t.warnings.map((w, i) => (
                  <div key={i} className="warn">
                    {w}
                  </div>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {runnable.length > 0 && asked.ok && (
        <form action={confirmOperationAction} className="confirm-form">
          <input type="hidden" name="action" value={action.name} />
          <input type="hidden" name="ids" value={plan.targets.map((t) => t.instanceId ?? t.herdId).join(',')} />
          <input type="hidden" name="digest" value={plan.digest} />
          <input type="hidden" name="key" value={plan.idempotencyKey} />
          {def !== getAdmin(kind) && <input type="hidden" name="from" value={def.name} />}
          {retryOf !== null && <input type="hidden" name="retryOf" value={retryOf} />}
          {Object.entries(plan.params).map(([k, v]) => (
            <input key={k} type="hidden" name={`p.${k}`} value={String(v)} />
          ))}
          {Object.entries(wavesToForm(rolling?.spec ?? null)).map(([k, v]) => (
            <input key={k} type="hidden" name={k} value={v} />
          ))}
          {plan.typeToConfirm !== null && (
            <p>
              <label>
                Type <code>{plan.typeToConfirm}</code> to confirm:{' '}
                <input name="confirmation" autoComplete="off" required aria-label="Confirmation" />
              </label>
            </p>
          )}
          <button type="submit" className="button danger">
            {action.label} {runnable.length} {noun(runnable.length)}
            {rolling ? ` in ${rolling.waves.length} wave${rolling.waves.length === 1 ? '' : 's'}` : ''}
          </button>{' '}
          <Link className="button cancel-link" href={back}>
            No, take me back
          </Link>
        </form>
      )}
    </>
  );
}

/** One field of the waves form: its label and a short text input named `w.<field>` (lib/engine/waves-form.ts reads them). */
function WaveField({
  field,
  label,
  value,
  placeholder,
  size,
}: {
  field: string;
  label: string;
  value: string;
  placeholder: string;
  size: number;
}) {
  return (
    <>
      <label htmlFor={`w-${field}`}>{label}</label>
      <input id={`w-${field}`} name={`w.${field}`} defaultValue={value} placeholder={placeholder} size={size} autoComplete="off" />
    </>
  );
}

/** The action's parameters, as a form that plans again with them ("Update the plan"). */
function ParamsForm({
  fields,
  values,
  keep,
  herdIds,
  herdMembers,
}: {
  fields: ActionParamField[];
  values: Record<string, unknown>;
  keep: [string, string][];
  herdIds: number[];
  herdMembers: { id: number; label: string; role: string; state: string }[];
}) {
  return (
    <form method="get" className="action-params" aria-label="Parameters">
      {keep.map(([k, v]) => (
        <input key={k} type="hidden" name={k} value={v} />
      ))}
      {fields.map((f) =>
        f.kind === 'flag' ? (
          <p key={f.name}>
            <label>
              <input type="checkbox" id={`p-${f.name}`} name={`p.${f.name}`} value="true" defaultChecked={values[f.name] === true} />{' '}
              {f.label}
            </label>{' '}
            <span className="help">{f.help}</span>
          </p>
        ) : f.kind === 'text' ? (
          <p key={f.name}>
            <label htmlFor={`p-${f.name}`}>{f.label}: </label>
            <input
              type="text"
              id={`p-${f.name}`}
              name={`p.${f.name}`}
              placeholder={f.emptyLabel}
              defaultValue={valueText(values[f.name] ?? '')}
              size={60}
              autoComplete="off"
              spellCheck={false}
            />{' '}
            <span className="help">{f.help}</span>
          </p>
        ) : (
          <p key={f.name}>
            <label htmlFor={`p-${f.name}`}>{f.label}: </label>
            {herdIds.length === 1 ? (
              <select id={`p-${f.name}`} name={`p.${f.name}`} defaultValue={valueText(values[f.name] ?? '')}>
                <option value="">{f.emptyLabel}</option>
                {herdMembers.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.label} ({m.role}, {m.state})
                  </option>
                ))}
              </select>
            ) : (
              <span>
                {f.emptyLabel} (the targets are in {herdIds.length} herds: a member can be chosen for one herd at a time)
              </span>
            )}{' '}
            <span className="help">{f.help}</span>
          </p>
        ),
      )}
      {(herdIds.length === 1 || fields.some((f) => f.kind !== 'herd-member')) && (
        <button type="submit" className="button">
          Update the plan
        </button>
      )}
    </form>
  );
}
