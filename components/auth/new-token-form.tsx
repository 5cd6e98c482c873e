'use client';

import { useActionState } from 'react';

/** What the server action that creates the token answers (the page passes that action in). */
export interface NewTokenState {
  token?: string;
  name?: string;
  errors?: Record<string, string>;
}

/** Creates a token and shows it this once: pgherd keeps only its hash. */
export function NewTokenForm({ create }: { create: (prev: NewTokenState, form: FormData) => Promise<NewTokenState> }) {
  const [state, action, pending] = useActionState(create, {});
  return (
    <>
      {state.token && (
        <div className="messagelist success" role="status">
          <p>Token “{state.name}” created. Copy it now: it will not be shown again.</p>
          <pre className="output" data-testid="new-token">
            {state.token}
          </pre>
          <p className="help">
            Send it as <code>Authorization: Bearer &lt;token&gt;</code>.
          </p>
        </div>
      )}
      <form action={action} className="object-form module" aria-label="New API token">
        {state.errors?.form && (
          <p className="errornote" role="alert">
            {state.errors.form}
          </p>
        )}
        <div className="form-row">
          <label htmlFor="token-name">Name</label>
          <input id="token-name" name="name" type="text" maxLength={100} required />
          {state.errors?.name && <p className="errorlist">{state.errors.name}</p>}
        </div>
        <div className="form-row">
          <label htmlFor="token-scope">Scope</label>
          <select id="token-scope" name="scope" defaultValue="read">
            <option value="read">read: lists and operations, nothing changes</option>
            <option value="operate">operate: also plan and run operations (within your roles)</option>
          </select>
          {state.errors?.scope && <p className="errorlist">{state.errors.scope}</p>}
        </div>
        <div className="form-row">
          <label htmlFor="token-expiry">Expires after (days)</label>
          <input id="token-expiry" name="expiresInDays" type="number" min={1} max={3650} placeholder="never" />
          {state.errors?.expiresInDays && <p className="errorlist">{state.errors.expiresInDays}</p>}
        </div>
        <div className="submit-row">
          <button type="submit" className="button default" disabled={pending}>
            Create token
          </button>
        </div>
      </form>
    </>
  );
}
