// Rules over the REST API, against the built console and a worker over the lab: every bad body refused
// with the field named and nothing saved; a rule made, read with its next fires, run now by the worker
// pool into an operation, changed, deleted.
import { expect, test } from './fixtures';
import { eq } from 'drizzle-orm';
import { createDb } from '../db/client';
import { users } from '../db/schema';
import { createApiToken } from '@/lib/features/auth/api-tokens';
import { e2eLab } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const operate = { authorization: `Bearer ${lab.console.apiToken!}` };

test.describe.configure({ mode: 'serial' });

const daily = { cron: ['30 9 * * 1-5'], timezone: 'Europe/Paris' };

test('refuses every malformed rule with a 400 naming the field, and saves nothing', async ({ request }) => {
  const replicas = await (await request.get(`${url}/api/v1/instances?role=replica&per=10`, { headers: operate })).json();
  const id = replicas.items[0].id as number;
  const ok = { name: 'api refusals', action: 'reload', instanceIds: [id], schedule: daily };
  const before = (await (await request.get(`${url}/api/v1/rules`, { headers: operate })).json()).items.length;
  const cases: [object, string, RegExp][] = [
    [{ ...ok, schedule: { cron: ['61 * * * *'], timezone: 'UTC' } }, 'schedule.cron.0', /not a cron expression/],
    [{ ...ok, schedule: { cron: ['* * *'], timezone: 'UTC' } }, 'schedule.cron.0', /3 fields/],
    [{ ...ok, schedule: { cron: ['0 9 * * *'], timezone: 'Mars/Olympus' } }, 'schedule.timezone', /not a time zone/],
    [{ ...ok, schedule: { at: '2026-12-24T22:00:00' } }, 'schedule.at', /with its offset/],
    [{ ...ok, schedule: { at: '2020-01-01T00:00:00Z' } }, 'schedule.at', /has passed: a one-time rule fires at a time to come/],
    [{ ...ok, action: 'format-disk' }, 'action', /unknown action format-disk/],
    [{ ...ok, herdIds: [1] }, 'instanceIds', /give one scope/],
    [{ ...ok, action: 'switchover' }, 'instanceIds', /runs on herds/],
    [{ ...ok, instanceIds: undefined, filter: 'colour=blue' }, 'filter', /colour is not a filter of the instances list/],
    [{ ...ok, instanceIds: undefined, filter: 'role=leader' }, 'filter', /role=leader is not a value/],
    [{ ...ok, instanceIds: undefined, filter: 'page=2' }, 'filter', /empty filter would match everything/],
    [{ ...ok, name: 'tab\there' }, 'name', /Control characters/],
    [{ ...ok, graceSeconds: -1 }, 'graceSeconds', /./],
    [{ ...ok, owner: 'someone-else' }, '', /Unknown field: owner/],
    [{ ...ok, params: { fast: true } }, 'params', /./],
    [{ ...ok, conditions: [{ metric: 'cpu', op: '<', value: 1 }] }, 'conditions.0.metric', /./],
    [
      { ...ok, conditions: [{ metric: 'lag_seconds', op: '<', value: 1, users: ['app'] }] },
      'conditions.0.users',
      /active_connections only/,
    ],
    [
      { ...ok, conditions: [{ metric: 'active_connections', op: '<', value: 1, users: ["x'; DROP TABLE rules; --"] }] },
      'conditions.0.users.0',
      /user name pattern/,
    ],
    [{ ...ok, retry: { afterSeconds: 0, times: 1 } }, 'retry.afterSeconds', /./],
  ];
  for (const [body, path, message] of cases) {
    const res = await request.post(`${url}/api/v1/rules`, { headers: operate, data: body });
    expect(res.status(), JSON.stringify(body)).toBe(400);
    const got = (await res.json()) as { details: { path: string; message: string }[] | { params: string } };
    const details = Array.isArray(got.details) ? got.details : [{ path: 'params', message: got.details.params }];
    expect(details, JSON.stringify(body)).toContainEqual({ path, message: expect.stringMatching(message) });
  }
  expect((await request.post(`${url}/api/v1/rules`, { headers: operate, data: 'not json' })).status()).toBe(400);
  expect((await (await request.get(`${url}/api/v1/rules`, { headers: operate })).json()).items.length).toBe(before);
  // Ids: a bad one is a 400, one that does not exist a 404.
  expect((await request.get(`${url}/api/v1/rules/abc`, { headers: operate })).status()).toBe(400);
  expect((await request.get(`${url}/api/v1/rules/2147483647`, { headers: operate })).status()).toBe(404);
  expect((await request.get(`${url}/api/v1/rules/1/runs?limit=0`, { headers: operate })).status()).toBe(400);
});

test('a rule made, read with its next five fires, run now into an operation, changed and deleted; a read token cannot write', async ({
  request,
}) => {
  const replicas = await (await request.get(`${url}/api/v1/instances?role=replica&per=10`, { headers: operate })).json();
  const id = replicas.items[0].id as number;
  // A production replica: the rule is confirmed as the operation would be, by typing the environment.
  const unconfirmed = await request.post(`${url}/api/v1/rules`, {
    headers: operate,
    data: { name: 'api nightly reload', action: 'reload', instanceIds: [id], schedule: daily },
  });
  expect(unconfirmed.status()).toBe(400);
  const askedFor = JSON.stringify(await unconfirmed.json());
  expect(askedFor).toMatch(/type \\"production\\" to confirm/);
  const made = await request.post(`${url}/api/v1/rules`, {
    headers: operate,
    data: { name: 'api nightly reload', action: 'reload', instanceIds: [id], schedule: daily, confirmation: 'production' },
  });
  expect(made.status()).toBe(201);
  const rule = (await made.json()) as { id: number; nextFires: string[] };
  expect(made.headers().location).toBe(`/api/v1/rules/${rule.id}`);
  expect(rule).toMatchObject({
    name: 'api nightly reload',
    owner: lab.console.admin.username,
    instanceIds: [id],
    enabled: true,
    graceSeconds: 300,
  });
  expect(rule.nextFires).toHaveLength(5);
  // 09:30 in Paris is 08:30 UTC in winter, 07:30 in summer; weekdays only.
  for (const f of rule.nextFires) {
    expect(['08:30', '07:30']).toContain(f.slice(11, 16));
    expect([1, 2, 3, 4, 5]).toContain(new Date(f).getUTCDay());
  }
  expect(
    (
      await request.post(`${url}/api/v1/rules`, {
        headers: operate,
        data: { name: 'api nightly reload', action: 'reload', instanceIds: [id], schedule: daily, confirmation: 'production' },
      })
    ).status(),
  ).toBe(409);

  const asked = await request.post(`${url}/api/v1/rules/${rule.id}/run`, { headers: operate });
  expect(asked.status()).toBe(202);
  const { runId } = await asked.json();
  type Run = { id: number; status: string; outcome: string | null; operationId: number | null; kind: string; requestedBy: string };
  let run: Run | undefined;
  for (let i = 0; i < 150; i++) {
    const runs = (await (await request.get(`${url}/api/v1/rules/${rule.id}/runs`, { headers: operate })).json()).items as Run[];
    run = runs.find((r) => r.id === runId);
    if (run && run.operationId && ['succeeded', 'failed', 'partial', 'cancelled'].includes(run.outcome ?? '')) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(run).toMatchObject({ kind: 'manual', status: 'started', outcome: 'succeeded', requestedBy: lab.console.admin.username });
  const op = await (await request.get(`${url}/api/v1/operations/${String(run!.operationId)}`, { headers: operate })).json();
  expect(op).toMatchObject({ action: 'reload', status: 'succeeded', requestedBy: 'rule: api nightly reload' });

  const changed = await request.put(`${url}/api/v1/rules/${rule.id}`, {
    headers: operate,
    data: {
      name: 'api nightly reload',
      action: 'reload',
      instanceIds: [id],
      schedule: { cron: ['0 2 * * *'], timezone: 'UTC' },
      enabled: false,
      confirmation: 'production',
    },
  });
  expect(changed.status()).toBe(200);
  expect(await changed.json()).toMatchObject({ enabled: false, nextFires: [], schedule: { cron: ['0 2 * * *'], timezone: 'UTC' } });

  const { db, pool } = createDb(lab.database.url, 1);
  const [admin] = await db.select().from(users).where(eq(users.username, lab.console.admin.username));
  const read = await createApiToken(db, admin!.id, 'rules read-only', 'read');
  await pool.end();
  const readOnly = { authorization: `Bearer ${read.token}` };
  expect((await request.get(`${url}/api/v1/rules/${rule.id}`, { headers: readOnly })).status()).toBe(200);
  expect((await request.delete(`${url}/api/v1/rules/${rule.id}`, { headers: readOnly })).status()).toBe(403);
  expect((await request.post(`${url}/api/v1/rules/${rule.id}/run`, { headers: readOnly })).status()).toBe(403);

  expect((await request.delete(`${url}/api/v1/rules/${rule.id}`, { headers: operate })).status()).toBe(204);
  expect((await request.get(`${url}/api/v1/rules/${rule.id}`, { headers: operate })).status()).toBe(404);
});

test('blackouts: set for given days in a time zone, listed, refused when malformed, lifted', async ({ request }) => {
  const bad = await request.post(`${url}/api/v1/blackouts`, {
    headers: operate,
    data: { name: 'backwards', dates: { from: '2026-12-26', to: '2026-12-24' }, timezone: 'Europe/Paris' },
  });
  expect(bad.status()).toBe(400);
  expect((await bad.json()).details).toContainEqual({ path: 'dates.to', message: 'the last day is before the first' });
  expect(
    (
      await request.post(`${url}/api/v1/blackouts`, {
        headers: operate,
        data: { name: 'nowhere', startsAt: '2026-12-24T00:00:00Z', endsAt: '2026-12-25T00:00:00Z', environmentId: 2147483647 },
      })
    ).status(),
  ).toBe(400);
  const made = await request.post(`${url}/api/v1/blackouts`, {
    headers: operate,
    data: { name: 'year-end freeze', reason: 'change freeze', dates: { from: '2026-12-24', to: '2026-12-26' }, timezone: 'Europe/Paris' },
  });
  expect(made.status()).toBe(201);
  const b = (await made.json()) as { id: number };
  expect(b).toMatchObject({ startsAt: '2026-12-23T23:00:00.000Z', endsAt: '2026-12-26T23:00:00.000Z', environmentId: null, herdId: null });
  const listed = (await (await request.get(`${url}/api/v1/blackouts`, { headers: operate })).json()).items as { id: number }[];
  expect(listed.map((x) => x.id)).toContain(b.id);
  expect((await request.get(`${url}/api/v1/blackouts?past=yes`, { headers: operate })).status()).toBe(400);
  expect((await request.delete(`${url}/api/v1/blackouts/${String(b.id)}`, { headers: operate })).status()).toBe(204);
  expect((await request.delete(`${url}/api/v1/blackouts/${String(b.id)}`, { headers: operate })).status()).toBe(404);
});

test('webhooks: refused when malformed, made with a secret shown once, listed without it, deliveries readable, deleted', async ({
  request,
}) => {
  for (const [data, path] of [
    [{ name: 'x', url: 'ftp://example.org/hook' }, 'url'],
    [{ name: 'x', url: 'https://user:pw@example.org/hook' }, 'url'],
    [{ name: 'x', url: 'https://example.org/hook', events: ['everything'] }, 'events.0'],
    [{ name: 'x', url: 'https://example.org/hook', secret: 'mine' }, ''],
    // Where a worker could reach what the user cannot (SSRF): the cloud's metadata service, private networks.
    [{ name: 'x', url: 'http://169.254.169.254/latest/meta-data/' }, 'url'],
    [{ name: 'x', url: 'http://10.0.0.5:6379/' }, 'url'],
    [{ name: 'x', url: 'http://[::ffff:192.168.0.1]/' }, 'url'],
  ] as const) {
    const res = await request.post(`${url}/api/v1/webhooks`, { headers: operate, data });
    expect(res.status(), JSON.stringify(data)).toBe(400);
    expect(((await res.json()) as { details: { path: string }[] }).details.map((d) => d.path)).toContain(path);
  }
  const made = await request.post(`${url}/api/v1/webhooks`, {
    headers: operate,
    data: { name: 'pager', url: 'https://hooks.example.org/pgherd' },
  });
  expect(made.status()).toBe(201);
  const hook = (await made.json()) as { id: number; secret: string; events: string[] };
  expect(hook.secret).toMatch(/^[0-9a-f]{64}$/);
  expect(hook.events).toEqual([
    'rule.run.failed',
    'rule.run.skipped',
    'rule.run.refused',
    'rule.run.missed',
    'operation.failed',
    'herd.two_primaries',
    'herd.no_primary',
    'herd.restore_unverified',
    'herd.auto_replaced',
    'risk.raised',
    'risk.cleared',
    'approval.requested',
    'approval.granted',
    'approval.denied',
    'approval.break_glass',
  ]);
  const listed = await (await request.get(`${url}/api/v1/webhooks`, { headers: operate })).text();
  expect(listed).toContain('"pager"');
  expect(listed).not.toContain(hook.secret);
  expect((await request.get(`${url}/api/v1/webhooks/${String(hook.id)}/deliveries`, { headers: operate })).status()).toBe(200);
  expect((await request.get(`${url}/api/v1/webhooks/2147483647/deliveries`, { headers: operate })).status()).toBe(404);
  expect((await request.delete(`${url}/api/v1/webhooks/${String(hook.id)}`, { headers: operate })).status()).toBe(204);
});
