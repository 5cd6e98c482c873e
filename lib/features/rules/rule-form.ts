// The console's rule form, as the API's body: the same schema judges both (a form's fields are only
// another way of writing the body), and its errors come back keyed by the form's fields.
import { CONDITION_ROWS } from './metrics';
import { ruleBody, type RuleBody } from './rule-body';

type Fields = Record<string, FormDataEntryValue | undefined>;
const text = (f: Fields, k: string) => (typeof f[k] === 'string' ? f[k].trim() : '');
const number = (v: string) => (v === '' ? undefined : /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v);
const ids = (v: string) =>
  v
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((x) => number(x));

/** The body the form's fields say (not validated: ruleBody does that). */
export function formToBody(f: Fields): Record<string, unknown> {
  const scope = text(f, 'scopeKind');
  const conditions = Array.from({ length: CONDITION_ROWS }, (_, k) => k)
    .filter((k) => text(f, `condMetric${k}`) !== '')
    .map((k) => ({
      metric: text(f, `condMetric${k}`),
      op: text(f, `condOp${k}`),
      value: number(text(f, `condValue${k}`)),
      ...(text(f, `condUsers${k}`)
        ? {
            users: text(f, `condUsers${k}`)
              .split(/[\s,]+/)
              .filter(Boolean),
          }
        : {}),
    }));
  const retryAfter = text(f, 'retryAfter');
  return {
    name: text(f, 'name'),
    description: text(f, 'description'),
    action: text(f, 'action'),
    ...(scope === 'herds'
      ? { herdIds: ids(text(f, 'ids')) }
      : scope === 'filter'
        ? { filter: text(f, 'filter') }
        : { instanceIds: ids(text(f, 'ids')) }),
    schedule:
      text(f, 'scheduleKind') === 'once'
        ? { at: text(f, 'at') }
        : {
            cron: text(f, 'cron')
              .split('\n')
              .map((l) => l.trim())
              .filter(Boolean),
            timezone: text(f, 'timezone') || 'UTC',
          },
    conditions,
    logic: text(f, 'logic') || 'all',
    retry: retryAfter
      ? {
          afterSeconds: number(retryAfter),
          times: number(text(f, 'retryTimes') || '1'),
          jitterSeconds: number(text(f, 'retryJitter') || '0'),
        }
      : null,
    reverse: text(f, 'reverseAt')
      ? { schedule: { at: text(f, 'reverseAt') } }
      : text(f, 'reverseCron')
        ? {
            schedule: {
              cron: text(f, 'reverseCron')
                .split('\n')
                .map((l) => l.trim())
                .filter(Boolean),
              timezone: text(f, 'reverseTimezone') || text(f, 'timezone') || 'UTC',
            },
          }
        : null,
    graceSeconds: number(text(f, 'graceSeconds') || '300'),
    insideWindow: f.insideWindow === 'on',
    enabled: f.enabled === 'on',
    ...(text(f, 'confirmation') ? { confirmation: text(f, 'confirmation') } : {}),
  };
}

/** A body path as the form's field it came from ("schedule.cron.1" is the cron box, "conditions.0.value" the first row's value). */
export function fieldOf(path: string): string {
  const [head, second, third] = path.split('.');
  if (head === 'instanceIds' || head === 'herdIds') return 'ids';
  if (head === 'schedule') return second === 'at' ? 'at' : second === 'timezone' ? 'timezone' : 'cron';
  if (head === 'conditions') return `condition${second ?? ''}${third ? `.${third}` : ''}`;
  if (head === 'retry') return 'retry';
  if (head === 'reverse') return 'reverse';
  return head || 'form';
}

export type FormCheck = { ok: true; body: RuleBody } | { ok: false; errors: Record<string, string> };

/** The form checked as the API checks a body: the body, or each field's first error. */
export function checkForm(f: Fields): FormCheck {
  const parsed = ruleBody.safeParse(formToBody(f));
  if (parsed.success) return { ok: true, body: parsed.data };
  const errors: Record<string, string> = {};
  for (const i of parsed.error.issues) {
    const path = i.path.join('.');
    errors[fieldOf(path)] ??= path.includes('.') ? `${path}: ${i.message}` : i.message;
  }
  return { ok: false, errors };
}

/**
 * A stored rule's body as the form's fields (what the edit page starts from): formToBody of it gives
 * the body back, but for what the form has no field for (params, waves), which the edit keeps.
 */
export function bodyToForm(b: RuleBody): Record<string, string> {
  const f: Record<string, string> = {
    name: b.name,
    description: b.description,
    action: b.action,
    scopeKind: b.herdIds ? 'herds' : b.filter !== undefined ? 'filter' : 'instances',
    ids: (b.herdIds ?? b.instanceIds ?? []).join(', '),
    filter: b.filter ?? '',
    scheduleKind: 'at' in b.schedule ? 'once' : 'cron',
    cron: 'cron' in b.schedule ? b.schedule.cron.join('\n') : '',
    timezone: 'timezone' in b.schedule ? b.schedule.timezone : 'UTC',
    at: 'at' in b.schedule ? b.schedule.at : '',
    logic: b.logic,
    retryAfter: b.retry ? String(b.retry.afterSeconds) : '',
    retryTimes: b.retry ? String(b.retry.times) : '',
    retryJitter: b.retry ? String(b.retry.jitterSeconds) : '',
    reverseCron: b.reverse && 'cron' in b.reverse.schedule ? b.reverse.schedule.cron.join('\n') : '',
    reverseAt: b.reverse && 'at' in b.reverse.schedule ? b.reverse.schedule.at : '',
    reverseTimezone: b.reverse && 'timezone' in b.reverse.schedule ? b.reverse.schedule.timezone : '',
    graceSeconds: String(b.graceSeconds),
    ...(b.insideWindow ? { insideWindow: 'on' } : {}),
    ...(b.enabled ? { enabled: 'on' } : {}),
  };
  b.conditions.slice(0, CONDITION_ROWS).forEach((c, k) => {
    f[`condMetric${k}`] = c.metric;
    f[`condOp${k}`] = c.op;
    f[`condValue${k}`] = String(c.value);
    f[`condUsers${k}`] = (c.users ?? []).join(', ');
  });
  return f;
}
