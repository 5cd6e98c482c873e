// The confirmation page's two forms that plan again: the action's parameters ("Update the plan") and the
// waves ("Show the waves"). Both are GET forms that keep the rest of the page's query.
import { valueText } from '@/lib/features/admin/text';
import type { ParamsFormView } from '@/lib/features/operations/confirmation-view';

/** One field of the waves form: its label and a short text input named `w.<field>` (lib/engine/waves-form.ts reads them). */
export function WaveField({
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
export function ParamsForm({ fields, values, keep, herdIds, herdMembers }: ParamsFormView) {
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
