'use client';

import { useActionState } from 'react';

export interface WindowFormState {
  errors?: Record<string, string>;
  saved?: string;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** A weekly maintenance window in a time zone, for every herd or an environment's. */
export function WindowForm({
  create,
  scopes,
}: {
  create: (prev: WindowFormState, form: FormData) => Promise<WindowFormState>;
  scopes: { value: string; label: string }[];
}) {
  const [state, action, pending] = useActionState(create, {});
  const e = state.errors ?? {};
  const err = (k: string) => (e[k] ? <p className="errorlist">{e[k]}</p> : null);
  return (
    <form action={action} className="object-form module" aria-label="New maintenance window">
      {state.saved && (
        <p className="messagelist success" role="status">
          Window “{state.saved}” set.
        </p>
      )}
      {e.form && (
        <p className="errornote" role="alert">
          {e.form}
        </p>
      )}
      <div className="form-row">
        <label htmlFor="window-name">Name</label>
        <input id="window-name" name="name" type="text" maxLength={100} required />
        {err('name')}
      </div>
      <fieldset className="form-row">
        <legend>Days</legend>
        {DAYS.map((d, k) => (
          <label key={d}>
            <input type="checkbox" name="days" value={k} /> {d}{' '}
          </label>
        ))}
        {err('days')}
      </fieldset>
      <div className="form-row">
        <label htmlFor="window-starts">Opens at (HH:MM)</label>
        <input id="window-starts" name="starts" type="text" placeholder="02:00" required />
        {err('starts')}
      </div>
      <div className="form-row">
        <label htmlFor="window-duration">For (minutes)</label>
        <input id="window-duration" name="durationMinutes" type="text" placeholder="120" required />
        {err('durationMinutes')}
      </div>
      <div className="form-row">
        <label htmlFor="window-timezone">Time zone</label>
        <input id="window-timezone" name="timezone" type="text" defaultValue="UTC" />
        {err('timezone')}
      </div>
      <div className="form-row">
        <label htmlFor="window-scope">Applies to</label>
        <select id="window-scope" name="scope" defaultValue="">
          <option value="">every herd</option>
          {scopes.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </select>
        {err('environmentId') ?? err('herdId')}
      </div>
      <div className="submit-row">
        <button type="submit" className="button default" disabled={pending}>
          Set window
        </button>
      </div>
    </form>
  );
}
