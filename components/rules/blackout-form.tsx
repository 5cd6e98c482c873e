'use client';

import { useActionState } from 'react';

export interface BlackoutFormState {
  errors?: Record<string, string>;
  saved?: string;
}

/** A blackout of whole days in a time zone, global or for an environment or a herd. */
export function BlackoutForm({
  create,
  scopes,
}: {
  create: (prev: BlackoutFormState, form: FormData) => Promise<BlackoutFormState>;
  scopes: { value: string; label: string }[];
}) {
  const [state, action, pending] = useActionState(create, {});
  const e = state.errors ?? {};
  return (
    <form action={action} className="object-form module" aria-label="New blackout">
      {state.saved && (
        <p className="messagelist success" role="status">
          Blackout “{state.saved}” set.
        </p>
      )}
      {e.form && (
        <p className="errornote" role="alert">
          {e.form}
        </p>
      )}
      <div className="form-row">
        <label htmlFor="blackout-name">Name</label>
        <input id="blackout-name" name="name" type="text" maxLength={100} required />
        {e.name && <p className="errorlist">{e.name}</p>}
      </div>
      <div className="form-row">
        <label htmlFor="blackout-from">First day</label>
        <input id="blackout-from" name="from" type="date" required />
        {e.from && <p className="errorlist">{e.from}</p>}
      </div>
      <div className="form-row">
        <label htmlFor="blackout-to">Last day</label>
        <input id="blackout-to" name="to" type="date" />
        {(e.to ?? e.dates) && <p className="errorlist">{e.to ?? e.dates}</p>}
      </div>
      <div className="form-row">
        <label htmlFor="blackout-timezone">Time zone</label>
        <input id="blackout-timezone" name="timezone" type="text" defaultValue="UTC" />
        {e.timezone && <p className="errorlist">{e.timezone}</p>}
      </div>
      <div className="form-row">
        <label htmlFor="blackout-scope">Applies to</label>
        <select id="blackout-scope" name="scope" defaultValue="">
          <option value="">every rule</option>
          {scopes.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </select>
        {(e.environmentId ?? e.herdId) && <p className="errorlist">{e.environmentId ?? e.herdId}</p>}
      </div>
      <div className="form-row">
        <label htmlFor="blackout-reason">Reason</label>
        <input id="blackout-reason" name="reason" type="text" maxLength={2000} />
      </div>
      <div className="submit-row">
        <button type="submit" className="button default" disabled={pending}>
          Set blackout
        </button>
      </div>
    </form>
  );
}
