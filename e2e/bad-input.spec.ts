// Ids in every route that takes one: an id past its table's range is a 4xx naming the field (or the
// page's defaults, or its 404), never a 500. Herds, environments and the other objects people make have
// integer ids (1 to 2^31 - 1); instances and operations, bigint ids (1 to 2^53 - 1 here): 2^31 is a legal
// instance or operation id that names nothing (a 404), 2^53 is past every id. Ids come in as path
// segments, query parameters, form fields and JSON.
import { expect, test } from './fixtures';
import { and, desc, eq } from 'drizzle-orm';
import { createDb } from '../db/client';
import { auditEntries } from '../db/schema';
import { e2eLab, signInAs, submitSignIn } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const operate = { authorization: `Bearer ${lab.console.apiToken!}` };
/** 2^31: past an integer id; an unknown instance's or operation's. */
const PAST_INT = '2147483648';
/** 2^53: past a bigint id too (a JSON number no longer tells it from 2^53 + 1). */
const PAST_BIG = '9007199254740992';
const HUGE = [PAST_INT, PAST_BIG];
const INT_RANGE = 'a whole number from 1 to 2147483647';
const BIG_RANGE = 'a whole number from 1 to 9007199254740991';

test('the API answers ids past their range with a 4xx naming the field, never a 500', async ({ request }) => {
  for (const id of HUGE) {
    const n = Number(id);
    const cases: [string, Promise<import('@playwright/test').APIResponse>][] = [
      [
        'plan instanceIds',
        request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'restart', instanceIds: [n] } }),
      ],
      ['plan herdIds', request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'switchover', herdIds: [n] } })],
      [
        'submit',
        request.post(`${url}/api/v1/operations`, {
          headers: operate,
          data: { action: 'restart', instanceIds: [n], digest: '0'.repeat(32), confirm: '' },
        }),
      ],
      ['instances ?environment', request.get(`${url}/api/v1/instances?environment=${id}`, { headers: operate })],
      ['instances ?herd', request.get(`${url}/api/v1/instances?herd=${id}`, { headers: operate })],
      ['herds ?environment', request.get(`${url}/api/v1/herds?environment=${id}`, { headers: operate })],
      ['operation', request.get(`${url}/api/v1/operations/${id}`, { headers: operate })],
      ['instance lag', request.get(`${url}/api/v1/instances/${id}/lag`, { headers: operate })],
    ];
    for (const [what, pending] of cases) {
      const res = await pending;
      expect(res.status(), `${what} ${id}`).toBeGreaterThanOrEqual(400);
      expect(res.status(), `${what} ${id}`).toBeLessThan(500);
    }
    // A herd's id past 2^31 - 1 is not one, whichever.
    const herds = await request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'switchover', herdIds: [n] } });
    expect([herds.status(), (await herds.json()).details]).toEqual([400, [{ path: 'herdIds.0', message: `each id is ${INT_RANGE}` }]]);
  }
  // An instance's id: 2^31 is one, of no instance (404, naming it); 2^53 is none (400, naming the field).
  const unknown = await request.post(`${url}/api/v1/operations/plan`, {
    headers: operate,
    data: { action: 'restart', instanceIds: [Number(PAST_INT)] },
  });
  expect([unknown.status(), (await unknown.json()).details]).toEqual([404, { instanceIds: [Number(PAST_INT)] }]);
  const past = await request.post(`${url}/api/v1/operations/plan`, {
    headers: operate,
    data: { action: 'restart', instanceIds: [Number(PAST_BIG)] },
  });
  expect([past.status(), (await past.json()).details]).toEqual([400, [{ path: 'instanceIds.0', message: `each id is ${BIG_RANGE}` }]]);
  // As a parameter naming a member: 2^31 is an instance that is not one, and the plan refuses its target for it.
  const replicas = (await (await request.get(`${url}/api/v1/instances?role=replica`, { headers: operate })).json()) as {
    items: { id: number }[];
  };
  const replica = replicas.items[0]!.id;
  for (const [field, data] of [
    ['candidateInstanceId', { action: 'switchover', herdIds: [1], params: { candidateInstanceId: Number(PAST_INT) } }],
    ['upstreamInstanceId', { action: 'remaster', instanceIds: [replica], params: { upstreamInstanceId: PAST_INT } }],
  ] as const) {
    const res = await request.post(`${url}/api/v1/operations/plan`, { headers: operate, data });
    expect(res.status(), field).toBe(200);
    expect((await res.json()).targets[0].refused, field).toContain(`instance ${PAST_INT} is not a member of the herd`);
    const bad = await request.post(`${url}/api/v1/operations/plan`, {
      headers: operate,
      data: { ...data, params: { [field]: field === 'upstreamInstanceId' ? PAST_BIG : Number(PAST_BIG) } },
    });
    expect(bad.status(), field).toBe(400);
    expect(JSON.stringify((await bad.json()).details), field).toContain(`${field} is ${BIG_RANGE}`);
  }
});

test('an operation id in the path that is not one is a 400 naming it; an unknown one a 404', async ({ request }) => {
  for (const id of ['abc', '-1', '0', '1e3', '3.0', PAST_BIG, '12345678901234567']) {
    for (const res of [
      await request.get(`${url}/api/v1/operations/${id}`, { headers: operate }),
      await request.post(`${url}/api/v1/operations/${id}/pause`, { headers: operate }),
    ]) {
      expect(res.status(), id).toBe(400);
      expect((await res.json()).details, id).toEqual([{ path: 'id', message: `id is ${BIG_RANGE}` }]);
    }
  }
  for (const id of ['2147483647', PAST_INT, '9007199254740991']) {
    expect((await request.get(`${url}/api/v1/operations/${id}`, { headers: operate })).status(), id).toBe(404);
    expect((await request.post(`${url}/api/v1/operations/${id}/resume`, { headers: operate })).status(), id).toBe(404);
  }
  expect((await request.post(`${url}/api/v1/operations/1/explode`, { headers: operate })).status()).toBe(404);
});

test('the console\u2019s pages take them as unknown objects or ignored filters, never a 500', async ({ page }) => {
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  for (const id of HUGE) {
    for (const path of [
      `/admin/instances/${id}`,
      `/admin/instances/${id}/history`,
      `/admin/herds/${id}`,
      `/herds/${id}`,
      `/operations/${id}`,
      `/admin/instances?environment=${id}`,
      `/admin/instances?herd=${id}`,
      `/admin/instances?saved=${id}`,
      `/operations/new?action=restart&ids=${id}`,
      `/operations/new?action=switchover&ids=${id}`,
      `/operations/new?action=remaster&ids=1&p.upstreamInstanceId=${id}`,
      `/admin/instances/delete?ids=${id}`,
      `/admin/herds/delete?ids=${id}`,
    ]) {
      const res = await page.goto(`${url}${path}`);
      expect(res!.status(), path).toBeLessThan(500);
    }
  }
  // An instance's or an operation's page for 2^31: one that does not exist.
  for (const path of [`/admin/instances/${PAST_INT}`, `/operations/${PAST_INT}`])
    expect((await page.goto(`${url}${path}`))!.status(), path).toBe(404);
  // A name that would look like another on screen is refused with a message for people.
  await page.goto(`${url}/admin/environments/add`);
  await page.getByLabel('Name').fill('prod\u202Euction');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(
    page.getByText('Control characters, line breaks, invisible characters and text-direction marks are not allowed.'),
  ).toBeVisible();
});

test('a forged confirmation form: an id past every range answers 404, an unknown one goes back to the plan; never a 500. A NUL in a search is a 400 in the API and ignored by pages', async ({
  page,
}) => {
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  await page.goto(`${url}/operations/new?action=reload&ids=1`);
  // The form as the browser would post it without JavaScript, its ids changed by hand.
  const fields = await page.locator('form:has(input[name="digest"])').evaluate((f) => {
    const out: Record<string, string> = {};
    new FormData(f as HTMLFormElement).forEach((v, k) => {
      if (typeof v === 'string') out[k] = v;
    });
    return out;
  });
  expect(fields.digest).toBeTruthy();
  const post = (ids: string) =>
    page.request.post(`${url}/operations/new?action=reload&ids=1`, {
      multipart: { ...fields, ids },
      headers: { origin: url },
      maxRedirects: 0,
    });
  expect((await post(PAST_BIG)).status()).toBe(404);
  // 2^31 names no instance: the plan no longer holds, and the page shows the new one (nothing is submitted).
  const stale = await post(PAST_INT);
  expect(stale.status()).toBeLessThan(500);
  expect(stale.headers()['location'] ?? stale.headers()['x-action-redirect'] ?? '').toContain(`ids=${PAST_INT}`);
  for (const path of ['/api/v1/instances?q=%00', '/api/v1/herds?q=a%00b', '/api/v1/instances?site=%00']) {
    const res = await page.request.get(`${url}${path}`, { headers: operate });
    expect(res.status(), path).toBe(400);
    expect((await res.json()).details[0].message, path).toBe('may not contain a NUL character');
  }
  for (const path of [
    '/admin/instances?q=%00',
    '/admin/audit?q=%00',
    '/admin/instances?site=%00',
    '/api/admin/instances/facets/herd?term=%00x',
  ]) {
    expect((await page.request.get(`${url}${path}`)).status(), path).toBeLessThan(500);
  }
});

test('sign-in posts (before anyone is signed in) are capped while they arrive: 413, chunked too', async () => {
  const big = `username=x&password=${'a'.repeat(64 * 1024)}`;
  const plain = await fetch(`${url}/api/auth/callback/credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: big,
  });
  expect(plain.status).toBe(413);
  // No Content-Length: a body streamed in chunks, cut off at the cap (its end never sent).
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      sent += 8192;
      if (sent > 10 * 1024 * 1024) {
        c.close();
        return;
      }
      c.enqueue(new TextEncoder().encode('a'.repeat(8192)));
    },
  });
  const chunked = await fetch(`${url}/api/auth/callback/credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: stream,
    duplex: 'half',
  } as RequestInit);
  expect(chunked.status).toBe(413);
});

test('a sign-in is recorded and throttled by the connecting address, never by an X-Forwarded-For the client made up', async ({ page }) => {
  await page.setExtraHTTPHeaders({ 'x-forwarded-for': '203.0.113.77' });
  await page.goto(`${url}/login`);
  await submitSignIn(page, 'xff-probe', 'not-a-password');
  await expect(page.locator('.errornote')).toBeVisible();
  const { db, pool } = createDb(lab.database.url, 1);
  try {
    const [entry] = await db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'auth.sign_in_failed'), eq(auditEntries.username, 'xff-probe')))
      .orderBy(desc(auditEntries.at))
      .limit(1);
    expect(entry!.remoteAddr).toBe('127.0.0.1');
  } finally {
    await pool.end();
  }
});
