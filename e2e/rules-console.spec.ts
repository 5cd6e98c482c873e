// Rules in the console, in Chromium against the built console and a worker over the lab: a rule made
// with the form (its next fires shown as it is typed, a bad expression said at once), run now, and its
// history read; the blackout calendar and the next 24 hours.
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test } from './fixtures';
import { e2eLab, signInAs } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const operate = { authorization: `Bearer ${lab.console.apiToken!}` };

test.describe.configure({ mode: 'serial' });

test('a rule made with the form shows its next fires, runs now, and its history says how it went', async ({ page, request }) => {
  const replicas = (await (await request.get(`${url}/api/v1/instances?role=replica&per=10`, { headers: operate })).json()) as {
    items: { id: number }[];
  };
  const id = replicas.items[1]!.id;
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  await page.goto(`${url}/rules`);
  await page.getByRole('link', { name: 'New rule' }).click();
  await expect(page).toHaveURL(/\/rules\/new$/);
  await page.getByLabel('Name', { exact: true }).fill('console nightly reload');
  await page.getByLabel('Ids', { exact: true }).fill(String(id));
  const cron = page.getByLabel('Cron expressions (one a line)');
  await cron.fill('61 * * * *');
  await expect(page.getByTestId('fires-error')).toContainText('cron.0: not a cron expression');
  await cron.fill('30 9 * * 1-5');
  await page.getByLabel('Time zone', { exact: true }).fill('Europe/Paris');
  const fires = page.getByTestId('next-fires').locator('li');
  await expect(fires).toHaveCount(5);
  for (const f of await fires.allTextContents()) expect(f).toMatch(/09:30 (CET|CEST)$/);
  // A production replica: the form asks for the confirmation the operation would, and keeps what was typed in.
  await page.getByRole('button', { name: 'Save rule' }).click();
  await expect(page.locator('body')).toContainText('type "production" to confirm');
  await page.getByLabel('Confirmation', { exact: true }).fill('production');
  await page.getByRole('button', { name: 'Save rule' }).click();
  await expect(page).toHaveURL(/\/rules\/\d+$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('console nightly reload');
  await expect(page.getByTestId('rule-next-fires').locator('li')).toHaveCount(5);

  await page.getByRole('button', { name: 'Run now' }).click();
  const run = page.getByTestId('rule-runs').locator('tbody tr').first();
  await expect(async () => {
    await page.reload();
    await expect(run).toContainText('succeeded', { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await expect(run).toContainText(`manual (${lab.console.admin.username})`);
  await run.getByRole('link').click();
  await expect(page).toHaveURL(/\/operations\/\d+$/);
  await expect(page.locator('body')).toContainText('rule: console nightly reload');

  await page.goto(`${url}/rules`);
  await expect(page.locator('tr[data-rule="console nightly reload"]')).toContainText('“30 9 * * 1-5” (Europe/Paris)');
  await page.goto(`${url}/rules/upcoming`);
  await expect(page.getByTestId('upcoming')).toBeVisible();
});

test('a rule edited with its own form keeps what the form does not show; turned off from the list, it keeps its owner', async ({
  page,
  request,
}) => {
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  await page.goto(`${url}/rules`);
  await page.getByRole('link', { name: 'console nightly reload' }).click();
  await page.getByRole('link', { name: 'Edit' }).click();
  await expect(page).toHaveURL(/\/rules\/\d+\/edit$/);
  const ruleId = Number(/\/rules\/(\d+)\/edit$/.exec(page.url())![1]);
  // The form starts from the rule as it is.
  await expect(page.getByLabel('Name', { exact: true })).toHaveValue('console nightly reload');
  await expect(page.getByLabel('Cron expressions (one a line)')).toHaveValue('30 9 * * 1-5');
  await expect(page.getByLabel('Time zone', { exact: true })).toHaveValue('Europe/Paris');
  const ids = await page.getByLabel('Ids', { exact: true }).inputValue();
  expect(ids).toMatch(/^\d+$/);
  await page.getByLabel('Cron expressions (one a line)').fill('0 22 * * *');
  await page.getByLabel('Time zone', { exact: true }).fill('UTC');
  await expect(page.getByTestId('next-fires').locator('li').first()).toContainText('22:00 UTC');
  // Saved again, it is confirmed again (for the environments it runs in now).
  await page.getByLabel('Confirmation', { exact: true }).fill('production');
  await page.getByRole('button', { name: 'Save rule' }).click();
  await expect(page).toHaveURL(new RegExp(`/rules/${ruleId}$`));
  for (const f of await page.getByTestId('rule-next-fires').locator('li').allTextContents()) expect(f).toMatch(/22:00 UTC$/);
  const got = (await (await request.get(`${url}/api/v1/rules/${ruleId}`, { headers: operate })).json()) as Record<string, unknown>;
  expect(got).toMatchObject({ schedule: { cron: ['0 22 * * *'], timezone: 'UTC' }, instanceIds: [Number(ids)], enabled: true });

  // Off from the list: only that changes.
  await page.goto(`${url}/rules`);
  const row = page.locator('tr[data-rule="console nightly reload"]');
  await row.getByRole('checkbox').check();
  await page.getByLabel('Bulk action').selectOption('disable');
  await page.getByRole('button', { name: 'Go' }).click();
  await expect(row.locator('td').last()).toHaveText('no');
  const off = (await (await request.get(`${url}/api/v1/rules/${ruleId}`, { headers: operate })).json()) as Record<string, unknown>;
  expect(off).toMatchObject({ enabled: false, owner: lab.console.admin.username, nextFires: [] });
});

test('the DR scorecard lists each herd of an environment with its verdict; the reverse field makes a reverse rule', async ({ page }) => {
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  const bar = page.getByRole('navigation', { name: 'Console' });
  await bar.getByRole('button', { name: 'Operations and rules' }).click();
  await bar.getByRole('link', { name: 'DR scorecard' }).click();
  await expect(page).toHaveURL(/\/dr$/);
  const rows = page.getByTestId('dr-scorecard').locator('tbody tr[data-herd]');
  await expect(rows.first()).toBeVisible();
  // Every lab herd pgherd switches over has a member in another site; none was drilled here. (The RDS herd is
  // not drilled: a drill is a switchover, which RDS offers none of.)
  const verdicts = await rows.evaluateAll((trs) =>
    trs.filter((tr) => !tr.textContent.includes('reports')).map((tr) => tr.getAttribute('data-verdict')),
  );
  expect(verdicts.length).toBeGreaterThan(0);
  for (const v of verdicts) expect(v).toBe('never');

  await page.goto(`${url}/rules/new`);
  await page.getByLabel('Name', { exact: true }).fill('console park');
  await page.locator('select[name="action"]').selectOption('power-off');
  await page.getByLabel('Ids', { exact: true }).fill('1');
  await page.getByLabel('Cron expressions (one a line)').fill('0 22 29 2 *'); // not before 2028: nothing is powered off here
  await page.getByLabel('Put back at (cron, one a line)').fill('0 6 1 3 *');
  await page.getByLabel('Confirmation', { exact: true }).fill('production'); // instance 1 is production's
  await page.getByRole('button', { name: 'Save rule' }).click();
  await expect(page).toHaveURL(/\/rules\/\d+$/);
  await page.getByTestId('rule-reverse-link').click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('console park (reverse)');
  await expect(page.getByTestId('rule-facts')).toContainText('power-on');
  await expect(page.getByRole('link', { name: 'Edit' })).toHaveCount(0);

  // A maintenance window set with its form, shown in words with whether it is open, and removed.
  await page.goto(`${url}/rules`);
  await page.getByRole('link', { name: 'Maintenance windows' }).click();
  await page.getByLabel('Name', { exact: true }).fill('console sunday nights');
  await page.getByLabel('Sunday').check();
  await page.getByLabel('Opens at (HH:MM)').fill('23:30');
  await page.getByLabel('For (minutes)').fill('90');
  await page.getByLabel('Time zone', { exact: true }).fill('Europe/Paris');
  await page.getByRole('button', { name: 'Set window' }).click();
  const row = page.locator('tr[data-window="console sunday nights"]');
  await expect(row).toContainText('Sunday 23:30 for 90 min (Europe/Paris)');
  await expect(row).toContainText(/open until|closed; opens/);
  await page.getByLabel('Opens at (HH:MM)').fill('25:00');
  await page.getByLabel('Name', { exact: true }).fill('bad hour');
  await page.getByLabel('For (minutes)').fill('10');
  await page.getByLabel('Monday').check();
  await page.getByRole('button', { name: 'Set window' }).click();
  await expect(page.locator('.errorlist').first()).toContainText('a time of day, HH:MM');
  await expect(page.locator('tr[data-window="bad hour"]')).toHaveCount(0);
  await row.getByRole('button', { name: 'Remove' }).click();
  await expect(row).toHaveCount(0);
});

test('a form that does not hold says why and saves nothing; a blackout set for days and lifted', async ({ page }) => {
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  await page.goto(`${url}/rules/new`);
  await page.getByLabel('Name', { exact: true }).fill('no scope');
  await page.getByRole('button', { name: 'Save rule' }).click();
  await expect(page.locator('.errorlist').first()).toBeVisible();
  await expect(page).toHaveURL(/\/rules\/new$/);

  await page.goto(`${url}/rules/blackouts`);
  await page.getByLabel('Name', { exact: true }).fill('console freeze');
  await page.getByLabel('First day').fill('2030-12-24');
  await page.getByLabel('Last day').fill('2030-12-26');
  await page.getByLabel('Time zone', { exact: true }).fill('Europe/Paris');
  await page.getByRole('button', { name: 'Set blackout' }).click();
  const row = page.locator('tr[data-blackout="console freeze"]');
  await expect(row).toContainText('2030-12-23 23:00 UTC');
  await expect(row).toContainText('2030-12-26 23:00 UTC');
  await row.getByRole('button', { name: 'Lift' }).click();
  await expect(row).toHaveCount(0);
});

test('a webhook made on its page gets its secret once, a rule run signed with it, and its deliveries listed; an internal address is refused', async ({
  page,
  request,
}) => {
  const got: { body: string; signature: string; timestamp: string }[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ body, signature: String(req.headers['x-pgherd-signature']), timestamp: String(req.headers['x-pgherd-timestamp']) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  try {
    const port = (receiver.address() as AddressInfo).port;
    const rules = (await (await request.get(`${url}/api/v1/rules`, { headers: operate })).json()) as {
      items: { id: number; name: string }[];
    };
    const rule = rules.items.find((r) => r.name === 'console nightly reload')!;
    await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
    await page.goto(`${url}/rules`);
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await expect(page).toHaveURL(/\/rules\/webhooks$/);

    // Where a worker could reach what the user cannot: refused, saying why, nothing saved.
    await page.getByLabel('Name', { exact: true }).fill('metadata');
    await page.getByLabel('URL', { exact: true }).fill('http://169.254.169.254/latest/meta-data/');
    await page.getByRole('button', { name: 'Save webhook' }).click();
    await expect(page.locator('.errorlist').first()).toContainText('link-local');
    await expect(page.getByTestId('webhooks')).not.toContainText('metadata');

    await page.getByLabel('Name', { exact: true }).fill('team pager');
    await page.getByLabel('URL', { exact: true }).fill(`http://127.0.0.1:${port}/hook`);
    await page.getByLabel('For', { exact: true }).selectOption(String(rule.id));
    await page.getByRole('checkbox', { name: 'rule.run.succeeded' }).check();
    await page.getByRole('button', { name: 'Save webhook' }).click();
    const secret = (await page.getByTestId('webhook-secret').locator('code').textContent())!;
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    await page.reload();
    await expect(page.getByTestId('webhooks').locator('tr[data-webhook="team pager"]')).toContainText(`rule ${rule.name}`);
    expect(await page.content()).not.toContain(secret);

    // The rule run now: its operation succeeds, and the webhook is told, signed.
    expect((await request.post(`${url}/api/v1/rules/${rule.id}/run`, { headers: operate })).status()).toBe(202);
    await expect.poll(() => got.length, { timeout: 60_000 }).toBeGreaterThan(0);
    const [first] = got;
    expect(first!.signature).toBe(`sha256=${createHmac('sha256', secret).update(`${first!.timestamp}.${first!.body}`).digest('hex')}`);
    expect(JSON.parse(first!.body)).toMatchObject({ event: 'rule.run.succeeded', rule: { id: rule.id } });

    await page.getByRole('link', { name: 'team pager' }).click();
    await expect(page.getByTestId('deliveries').locator('tbody tr').first()).toContainText('delivered');
    await page.goto(`${url}/rules/webhooks`);
    await page.locator('tr[data-webhook="team pager"]').getByRole('button', { name: 'Delete' }).click();
    await expect(page.getByTestId('webhooks')).not.toContainText('team pager');
  } finally {
    await new Promise((r) => receiver.close(r));
  }
});
