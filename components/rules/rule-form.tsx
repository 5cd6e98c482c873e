'use client';

import { useActionState, useMemo, useState } from 'react';
import { fireTimeText, nextFires, scheduleSchema } from '@/lib/features/rules/cron';
import { CONDITION_METRICS, CONDITION_ROWS } from '@/lib/features/rules/metrics';

export interface RuleFormState {
  errors?: Record<string, string>;
}

/** The next five fires of what is typed, in its own time zone, or why there are none. */
function FiresPreview({ cron, timezone, at, once }: { cron: string; timezone: string; at: string; once: boolean }) {
  const preview = useMemo(() => {
    const raw = once
      ? { at }
      : {
          cron: cron
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean),
          timezone: timezone || 'UTC',
        };
    const parsed = scheduleSchema.safeParse(raw);
    if (!parsed.success) return { error: parsed.error.issues.map((i) => `${i.path.join('.') || 'schedule'}: ${i.message}`).join('; ') };
    const tz = 'timezone' in parsed.data ? parsed.data.timezone : 'UTC';
    return { fires: nextFires(parsed.data, new Date(), 5).map((d) => fireTimeText(d, tz)) };
  }, [cron, timezone, at, once]);
  if ('error' in preview)
    return (
      <p className="errorlist" data-testid="fires-error">
        {preview.error}
      </p>
    );
  return (
    <div className="help" data-testid="next-fires">
      Next fires:{' '}
      {preview.fires.length ? (
        <ol>
          {preview.fires.map((f) => (
            <li key={f}>{f}</li>
          ))}
        </ol>
      ) : (
        'none (a time in the past)'
      )}
    </div>
  );
}

/**
 * A rule: what it runs, on what, when, and when not. Checked by the server as the API checks a body.
 * `initial`: a stored rule's fields (lib/features/rules/rule-form.ts bodyToForm), for its edit page.
 */
export function RuleForm({
  create,
  actions,
  initial: stored = {},
}: {
  create: (prev: RuleFormState, form: FormData) => Promise<RuleFormState>;
  actions: { name: string; label: string; onHerds: boolean }[];
  initial?: Record<string, string>;
}) {
  // A save the server refused (a confirmation to type, a field to fix) keeps what was typed: the form
  // is reset to its defaults after each action, so the defaults become what was sent.
  const [submitted, setSubmitted] = useState<Record<string, string> | null>(null);
  const [state, action, pending] = useActionState(async (prev: RuleFormState, form: FormData) => {
    const answer = await create(prev, form);
    if (answer.errors) {
      const sent: Record<string, string> = {};
      for (const [k, v] of form.entries()) if (typeof v === 'string' && k !== 'confirmation') sent[k] = v;
      setSubmitted(sent);
    }
    return answer;
  }, {});
  const initial = submitted ?? stored;
  const [cron, setCron] = useState(initial.cron ?? '0 3 * * *');
  const [timezone, setTimezone] = useState(initial.timezone ?? 'UTC');
  const [at, setAt] = useState(initial.at ?? '');
  const [once, setOnce] = useState(initial.scheduleKind === 'once');
  const editing = stored.name !== undefined;
  const e = state.errors ?? {};
  const err = (k: string) => (e[k] ? <p className="errorlist">{e[k]}</p> : null);
  return (
    <form action={action} className="object-form module" aria-label={editing ? 'Edit rule' : 'New rule'}>
      {e.form && (
        <p className="errornote" role="alert">
          {e.form}
        </p>
      )}
      <div className="form-row">
        <label htmlFor="rule-name">Name</label>
        <input id="rule-name" name="name" type="text" maxLength={100} required defaultValue={initial.name} />
        {err('name')}
      </div>
      <div className="form-row">
        <label htmlFor="rule-description">Description</label>
        <textarea id="rule-description" name="description" maxLength={2000} rows={2} defaultValue={initial.description} />
      </div>
      <div className="form-row">
        <label htmlFor="rule-action">Action</label>
        <select id="rule-action" name="action" defaultValue={initial.action ?? 'reload'}>
          {actions.map((a) => (
            <option key={a.name} value={a.name}>
              {a.label} ({a.onHerds ? 'herds' : 'instances'})
            </option>
          ))}
        </select>
        {err('action')}
      </div>
      <fieldset className="form-row">
        <legend>Runs on</legend>
        <label>
          <input type="radio" name="scopeKind" value="instances" defaultChecked={(initial.scopeKind ?? 'instances') === 'instances'} />{' '}
          instances (ids)
        </label>{' '}
        <label>
          <input type="radio" name="scopeKind" value="herds" defaultChecked={initial.scopeKind === 'herds'} /> herds (ids)
        </label>{' '}
        <label>
          <input type="radio" name="scopeKind" value="filter" defaultChecked={initial.scopeKind === 'filter'} /> a saved filter
        </label>
        <div>
          <label htmlFor="rule-ids">Ids</label>
          <input id="rule-ids" name="ids" type="text" placeholder="12, 15, 17" defaultValue={initial.ids} />
          {err('ids')}
        </div>
        <div>
          <label htmlFor="rule-filter">Filter</label>
          <input
            id="rule-filter"
            name="filter"
            type="text"
            placeholder="environment=2&role=replica (a changelist's query string)"
            defaultValue={initial.filter}
          />
          <p className="help">New members that match are included at the next fire.</p>
          {err('filter')}
        </div>
      </fieldset>
      <fieldset className="form-row">
        <legend>Schedule</legend>
        <label>
          <input type="radio" name="scheduleKind" value="cron" checked={!once} onChange={() => setOnce(false)} /> cron
        </label>{' '}
        <label>
          <input type="radio" name="scheduleKind" value="once" checked={once} onChange={() => setOnce(true)} /> once
        </label>
        <div>
          <label htmlFor="rule-cron">Cron expressions (one a line)</label>
          <textarea id="rule-cron" name="cron" rows={2} value={cron} onChange={(ev) => setCron(ev.target.value)} />
          {err('cron')}
        </div>
        <div>
          <label htmlFor="rule-timezone">Time zone</label>
          <input id="rule-timezone" name="timezone" type="text" value={timezone} onChange={(ev) => setTimezone(ev.target.value)} />
          {err('timezone')}
        </div>
        <div>
          <label htmlFor="rule-at">At (with its offset)</label>
          <input
            id="rule-at"
            name="at"
            type="text"
            placeholder="2026-12-24T22:00:00+01:00"
            value={at}
            onChange={(ev) => setAt(ev.target.value)}
          />
          {err('at')}
        </div>
        <FiresPreview cron={cron} timezone={timezone} at={at} once={once} />
      </fieldset>
      <fieldset className="form-row">
        <legend>Conditions (checked on each target when it fires)</legend>
        {Array.from({ length: CONDITION_ROWS }, (_, k) => (
          <div key={k}>
            <select name={`condMetric${k}`} aria-label={`Condition ${k + 1} metric`} defaultValue={initial[`condMetric${k}`] ?? ''}>
              <option value="">none</option>
              {CONDITION_METRICS.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>{' '}
            <select name={`condOp${k}`} aria-label={`Condition ${k + 1} comparison`} defaultValue={initial[`condOp${k}`] ?? '<'}>
              <option value="<">&lt;</option>
              <option value="=">=</option>
              <option value=">">&gt;</option>
            </select>{' '}
            <input
              name={`condValue${k}`}
              aria-label={`Condition ${k + 1} value`}
              type="text"
              size={6}
              defaultValue={initial[`condValue${k}`]}
            />{' '}
            <input
              name={`condUsers${k}`}
              aria-label={`Condition ${k + 1} users`}
              type="text"
              placeholder="users (active_connections)"
              defaultValue={initial[`condUsers${k}`]}
            />
            {err(`condition${k}`) ?? err(`condition${k}.metric`) ?? err(`condition${k}.value`) ?? err(`condition${k}.users`)}
          </div>
        ))}
        <label>
          Targets must meet{' '}
          <select name="logic" defaultValue={initial.logic ?? 'all'}>
            <option value="all">all of them</option>
            <option value="any">any one</option>
          </select>
        </label>
      </fieldset>
      <fieldset className="form-row">
        <legend>Retry targets that did not meet the conditions</legend>
        <label>
          after (s) <input name="retryAfter" type="text" size={6} placeholder="none" defaultValue={initial.retryAfter} />
        </label>{' '}
        <label>
          times <input name="retryTimes" type="text" size={3} placeholder="1" defaultValue={initial.retryTimes} />
        </label>{' '}
        <label>
          jitter (s) <input name="retryJitter" type="text" size={4} placeholder="0" defaultValue={initial.retryJitter} />
        </label>
        {err('retry')}
      </fieldset>
      <fieldset className="form-row">
        <legend>Put back (resize, power off, power on)</legend>
        <p className="help">
          At these times, each target the rule changed is put back as it was before: the instance type it had, the state it had. A rule of
          its own (&ldquo;NAME (reverse)&rdquo;) does it, made and changed with this one. The cron expressions are in the time zone above
          unless you give another.
        </p>
        <label htmlFor="rule-reverse-cron">Put back at (cron, one a line)</label>
        <textarea id="rule-reverse-cron" name="reverseCron" rows={2} placeholder="none" defaultValue={initial.reverseCron} />{' '}
        <label htmlFor="rule-reverse-timezone">in the time zone</label>
        <input
          id="rule-reverse-timezone"
          name="reverseTimezone"
          type="text"
          placeholder="the rule's"
          defaultValue={initial.reverseTimezone}
        />{' '}
        <label htmlFor="rule-reverse-at">or once at</label>
        <input id="rule-reverse-at" name="reverseAt" type="text" placeholder="2026-12-25T07:00:00+01:00" defaultValue={initial.reverseAt} />
        {err('reverse')}
      </fieldset>
      <div className="form-row">
        <label htmlFor="rule-grace">Grace for a missed fire (s)</label>
        <input id="rule-grace" name="graceSeconds" type="text" defaultValue={initial.graceSeconds ?? '300'} />
        {err('graceSeconds')}
      </div>
      <div className="form-row">
        <label>
          <input name="insideWindow" type="checkbox" defaultChecked={initial.insideWindow === 'on'} /> Only inside the herds&apos;
          maintenance windows (a rolling operation waits between waves for the next one)
        </label>
      </div>
      <div className="form-row">
        <label>
          <input
            name="enabled"
            type="checkbox"
            defaultChecked={submitted ? submitted.enabled === 'on' : !editing || stored.enabled === 'on'}
          />{' '}
          Enabled
        </label>
      </div>
      <div className="form-row">
        <label htmlFor="rule-confirmation">Confirmation</label>
        <input id="rule-confirmation" name="confirmation" type="text" autoComplete="off" placeholder="when asked" />
        <p className="help">
          A rule on production, or on many targets, is confirmed as the operation would be: type what it asks. It then fires only in the
          environments confirmed; save it again to add one.
        </p>
        {err('confirmation')}
      </div>
      <div className="submit-row">
        <button type="submit" className="button default" disabled={pending}>
          Save rule
        </button>
      </div>
    </form>
  );
}
