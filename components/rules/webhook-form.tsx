'use client';

import { useActionState } from 'react';

export interface WebhookFormState {
  errors?: Record<string, string>;
  /** The new webhook's name and secret: shown this once. */
  made?: { name: string; secret: string };
}

/** A new webhook: where, for which rule (or every rule, for a global admin), which events. */
export function WebhookForm({
  create,
  rules,
  events,
  global,
}: {
  create: (prev: WebhookFormState, form: FormData) => Promise<WebhookFormState>;
  rules: { id: number; name: string }[];
  events: readonly string[];
  /** Whether the user may make a global webhook (a global admin). */
  global: boolean;
}) {
  const [state, action, pending] = useActionState(create, {});
  const e = state.errors ?? {};
  return (
    <form action={action} className="object-form module" aria-label="New webhook">
      {state.made && (
        <div className="messagelist success" role="status" data-testid="webhook-secret">
          Webhook “{state.made.name}” made. Its signing secret, shown this once: <code>{state.made.secret}</code>
        </div>
      )}
      {e.form && (
        <p className="errornote" role="alert">
          {e.form}
        </p>
      )}
      <div className="form-row">
        <label htmlFor="webhook-name">Name</label>
        <input id="webhook-name" name="name" type="text" maxLength={100} required />
        {e.name && <p className="errorlist">{e.name}</p>}
      </div>
      <div className="form-row">
        <label htmlFor="webhook-url">URL</label>
        <input id="webhook-url" name="url" type="url" maxLength={2000} required placeholder="https://hooks.example.com/pgherd" />
        {e.url && <p className="errorlist">{e.url}</p>}
      </div>
      <div className="form-row">
        <label htmlFor="webhook-rule">For</label>
        <select id="webhook-rule" name="ruleId" defaultValue={global ? '' : String(rules[0]?.id ?? '')}>
          {global && <option value="">every rule and every operation (global)</option>}
          {rules.map((r) => (
            <option key={r.id} value={r.id}>
              rule {r.name}
            </option>
          ))}
        </select>
        {e.ruleId && <p className="errorlist">{e.ruleId}</p>}
      </div>
      <div className="form-row">
        <label htmlFor="webhook-format">Format</label>
        <select id="webhook-format" name="format" defaultValue="pgherd">
          <option value="pgherd">pgherd&apos;s JSON (with a Slack-compatible text)</option>
          <option value="slack">Slack (Block Kit: an approval&apos;s Approve and Deny as buttons)</option>
        </select>
        {e.format && <p className="errorlist">{e.format}</p>}
      </div>
      <fieldset className="form-row">
        <legend>Events (none ticked: the failures, skips, refusals and misses)</legend>
        {events.map((ev) => (
          <label key={ev}>
            <input type="checkbox" name="events" value={ev} /> {ev}{' '}
          </label>
        ))}
        {e.events && <p className="errorlist">{e.events}</p>}
      </fieldset>
      <div className="submit-row">
        <button type="submit" className="button default" disabled={pending}>
          Save webhook
        </button>
      </div>
    </form>
  );
}
