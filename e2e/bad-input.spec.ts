// Ids beyond Postgres's integer range, in every route that takes one: a 4xx (or the page's defaults,
// or its 404), never a 500. Ids come in as path segments, query parameters, form fields and JSON.
import { expect, test } from './fixtures';
import { and, desc, eq } from 'drizzle-orm';
import { createDb } from '../db/client';
import { auditEntries } from '../db/schema';
import { e2eLab, signInAs, submitSignIn } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const operate = { authorization: `Bearer ${lab.console.apiToken!}` };
const HUGE = ['2147483648', '9007199254740992'];

test('the API answers ids of 2^31 and 2^53 with a 4xx naming the field, never a 500', async ({ request }) => {
  for (const id of HUGE) {
    const n = Number(id);
    const cases: [string, Promise<import('@playwright/test').APIResponse>][] = [
      [
        'plan instanceIds',
        request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'restart', instanceIds: [n] } }),
      ],
      ['plan herdIds', request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'switchover', herdIds: [n] } })],
      [
        'plan candidate',
        request.post(`${url}/api/v1/operations/plan`, {
          headers: operate,
          data: { action: 'switchover', herdIds: [1], params: { candidateInstanceId: n } },
        }),
      ],
      [
        'plan remaster upstream',
        request.post(`${url}/api/v1/operations/plan`, {
          headers: operate,
          data: { action: 'remaster', instanceIds: [1], params: { upstreamInstanceId: id } },
        }),
      ],
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
    ];
    for (const [what, pending] of cases) {
      const res = await pending;
      expect(res.status(), `${what} ${id}`).toBeGreaterThanOrEqual(400);
      expect(res.status(), `${what} ${id}`).toBeLessThan(500);
    }
    const body = await (
      await request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'restart', instanceIds: [n] } })
    ).json();
    expect(body.details).toEqual([{ path: 'instanceIds.0', message: 'each id is a whole number from 1 to 2147483647' }]);
  }
});

test('an operation id in the path that is not one is a 400 naming it; an unknown one a 404', async ({ request }) => {
  for (const id of ['abc', '-1', '0', '1e3', '3.0', ...HUGE]) {
    for (const res of [
      await request.get(`${url}/api/v1/operations/${id}`, { headers: operate }),
      await request.post(`${url}/api/v1/operations/${id}/pause`, { headers: operate }),
    ]) {
      expect(res.status(), id).toBe(400);
      expect((await res.json()).details, id).toEqual([{ path: 'id', message: 'id is a whole number from 1 to 2147483647' }]);
    }
  }
  expect((await request.get(`${url}/api/v1/operations/2147483647`, { headers: operate })).status()).toBe(404);
  expect((await request.post(`${url}/api/v1/operations/2147483647/resume`, { headers: operate })).status()).toBe(404);
  expect((await request.post(`${url}/api/v1/operations/1/explode`, { headers: operate })).status()).toBe(404);
});

test('the console\u2019s pages take them as unknown objects or ignored filters, never a 500', async ({ page }) => {
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  for (const id of HUGE) {
    for (const path of [
      `/admin/instances/${id}`,
      `/admin/instances/${id}/history`,
      `/herds/${id}`,
      `/operations/${id}`,
      `/admin/instances?environment=${id}`,
      `/admin/instances?herd=${id}`,
      `/admin/instances?saved=${id}`,
      `/operations/new?action=restart&ids=${id}`,
      `/operations/new?action=remaster&ids=1&p.upstreamInstanceId=${id}`,
      `/admin/instances/delete?ids=${id}`,
    ]) {
      const res = await page.goto(`${url}${path}`);
      expect(res!.status(), path).toBeLessThan(500);
    }
  }
  // A name that would look like another on screen is refused with a message for people.
  await page.goto(`${url}/admin/environments/add`);
  await page.getByLabel('Name').fill('prod\u202Euction');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(
    page.getByText('Control characters, line breaks, invisible characters and text-direction marks are not allowed.'),
  ).toBeVisible();
});

test('a forged confirmation form (an id out of range) answers 404, never 500; a NUL in a search is a 400 in the API and ignored by pages', async ({
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
  for (const id of HUGE) {
    const res = await page.request.post(`${url}/operations/new?action=reload&ids=1`, {
      multipart: { ...fields, ids: id },
      headers: { origin: url },
      maxRedirects: 0,
    });
    expect(res.status(), id).toBe(404);
  }
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
