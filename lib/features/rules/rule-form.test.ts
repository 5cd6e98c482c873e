import { describe, expect, it } from 'vitest';
import { bodyToForm, checkForm, formToBody } from './rule-form';
import { ruleBody } from './rule-body';

const base = {
  name: 'nightly',
  action: 'reload',
  scopeKind: 'instances',
  ids: '3, 5 7',
  scheduleKind: 'cron',
  cron: '0 3 * * *\n\n30 4 * * 6',
  timezone: 'Europe/Paris',
  graceSeconds: '300',
  enabled: 'on',
};

describe('the rule form, as the API body', () => {
  it('reads ids, cron lines, conditions and retry from the fields', () => {
    const f = {
      ...base,
      condMetric0: 'lag_seconds',
      condOp0: '<',
      condValue0: '30',
      condMetric1: 'active_connections',
      condOp1: '<',
      condValue1: '5',
      condUsers1: 'app_*, report',
      retryAfter: '600',
      retryTimes: '3',
    };
    const got = checkForm(f);
    expect(got.ok).toBe(true);
    expect(formToBody(f)).toMatchObject({
      instanceIds: [3, 5, 7],
      schedule: { cron: ['0 3 * * *', '30 4 * * 6'], timezone: 'Europe/Paris' },
      conditions: [
        { metric: 'lag_seconds', op: '<', value: 30 },
        { metric: 'active_connections', op: '<', value: 5, users: ['app_*', 'report'] },
      ],
      retry: { afterSeconds: 600, times: 3, jitterSeconds: 0 },
      enabled: true,
    });
  });
  it('puts each error on the field it came from', () => {
    const got = checkForm({
      ...base,
      ids: 'x',
      cron: '0 3 * * *\n99 * * * *',
      timezone: 'Nowhere/Else',
      condMetric0: 'cpu',
      condOp0: '<',
      condValue0: '1',
      retryAfter: '0',
    });
    expect(got.ok).toBe(false);
    if (got.ok) return;
    expect(Object.keys(got.errors).sort()).toEqual(['condition0.metric', 'cron', 'ids', 'retry', 'timezone']);
    expect(got.errors.cron).toMatch(/^schedule\.cron\.1: not a cron expression/);
  });
  it('a filter or herds in place of instance ids; one time in place of cron; unticked is disabled', () => {
    expect(formToBody({ ...base, scopeKind: 'filter', filter: 'environment=2' })).toMatchObject({ filter: 'environment=2' });
    expect(formToBody({ ...base, scopeKind: 'herds', ids: '4' })).toMatchObject({ herdIds: [4] });
    expect(formToBody({ ...base, scheduleKind: 'once', at: '2026-12-24T22:00:00+01:00', enabled: undefined })).toMatchObject({
      schedule: { at: '2026-12-24T22:00:00+01:00' },
      enabled: false,
    });
  });

  it('a stored body shown as the form gives the same body back (the edit page starts from it)', () => {
    for (const raw of [
      {
        name: 'nightly',
        description: 'scale down',
        action: 'reload',
        filter: 'environment=2&role=replica',
        schedule: { cron: ['0 3 * * *', '30 4 * * 6'], timezone: 'Europe/Paris' },
        conditions: [
          { metric: 'lag_seconds', op: '<', value: 30 },
          { metric: 'active_connections', op: '>', value: 2.5, users: ['app_*', 'report'] },
        ],
        logic: 'any',
        retry: { afterSeconds: 600, times: 3, jitterSeconds: 60 },
        graceSeconds: 120,
        enabled: false,
      },
      { name: 'once', action: 'restart', herdIds: [4, 9], schedule: { at: '2026-12-24T22:00:00+01:00' } },
      {
        name: 'park at night',
        action: 'power-off',
        instanceIds: [3],
        schedule: { cron: ['0 22 * * 1-5'], timezone: 'Europe/Paris' },
        reverse: { schedule: { cron: ['0 6 * * 1-5'], timezone: 'America/New_York' } },
      },
      {
        name: 'bigger once',
        action: 'resize',
        instanceIds: [3],
        schedule: { at: '2026-12-24T22:00:00+01:00' },
        reverse: { schedule: { at: '2026-12-26T07:00:00+01:00' } },
      },
    ]) {
      const body = ruleBody.parse(raw);
      const again = checkForm(bodyToForm(body));
      expect(again).toEqual({ ok: true, body: { ...body, params: undefined } });
    }
  });
});
