// The OpenAPI document as the console serves it, and the API reference page built from it.
import { openApiDocument } from '@/lib/features/api/contract/document';
import { e2eLab, signInAs } from './lab';
import { expect, test } from './fixtures';

const lab = e2eLab();
const url = lab.console.url;

test('GET /api/v1/openapi.json serves the document this checkout generates, without a token', async ({ request }) => {
  const res = await request.get(`${url}/api/v1/openapi.json`);
  expect(res.status()).toBe(200);
  const served = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
  expect(served).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  expect(served.openapi).toBe('3.1.0');
  expect(Object.keys(served.paths)).toContain('/api/agent/v1/report');
  expect((await request.get(`${url}/api/v1/openapi.json?x=1`)).status()).toBe(400);
});

test('the API reference page renders every operation from the console alone (no CDN, no web fonts)', async ({ page }) => {
  const elsewhere: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(url) && !r.url().startsWith('data:')) elsewhere.push(r.url());
  });
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'API', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'API reference' })).toBeVisible();
  const reference = page.getByTestId('api-reference');
  await expect(reference.getByText('pgherd API', { exact: false }).first()).toBeVisible();
  const doc = openApiDocument() as unknown as { paths: Record<string, Record<string, unknown>> };
  const count = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  await expect(reference.locator('.opblock')).toHaveCount(count);
  await expect(reference.locator('.opblock-summary-path', { hasText: '/api/v1/operations/plan' })).toBeVisible();
  // One operation opened: its parameters and answers, the error format among them.
  await reference.locator('.opblock-summary', { hasText: '/api/v1/instances' }).first().click();
  await expect(reference.locator('.opblock-body').first()).toContainText('role');
  await page.screenshot({ path: test.info().outputPath('api-reference.png'), fullPage: false });
  expect(elsewhere).toEqual([]);
});

test('a route refuses query parameters it does not declare, and a parameter given twice', async ({ request }) => {
  const operate = { authorization: `Bearer ${lab.console.apiToken!}` };
  for (const [method, path] of [
    ['GET', '/api/v1/maintenance-windows?x=1'],
    ['GET', '/api/v1/cloud/discovery?x=1'],
    ['POST', '/api/v1/operations/plan?x=1'],
  ] as const) {
    const res = await request.fetch(`${url}${path}`, {
      method,
      headers: operate,
      data: method === 'POST' ? { action: 'reload', instanceIds: [1] } : undefined,
    });
    expect(res.status(), path).toBe(400);
    expect((await res.json()).details, path).toEqual([{ path: 'x', message: 'not a parameter of this route' }]);
  }
  const twice = await request.get(`${url}/api/v1/herds/1/lag?range=hour&range=day`, { headers: operate });
  expect(twice.status()).toBe(400);
  expect((await twice.json()).details).toEqual([{ path: 'range', message: 'given more than once' }]);
});
