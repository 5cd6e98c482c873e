// A herd Patroni runs, in Chromium against the built console over the lab's staging/ledger herd (etcd,
// three Patroni members): its changelist row and page show Patroni's view next to pgherd's, and a
// switchover confirmed on the page goes through Patroni, DNS following.
import { type Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { lookup } from '@/lib/adapters/dns/rfc2136';
import { e2eLab, signInAs } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const herd = lab.patroni!.find((p) => p.herd === 'ledger')!;
const [first, second] = herd.members.map((m) => m.server);
const writeName = lab.dns!.herds.find((h) => h.herd === 'ledger')!.writeName;
const answer = async () => (await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'CNAME'))[0];

test.describe.configure({ mode: 'serial' });

const openHerd = async (page: Page) => {
  await page.goto(`${url}/admin/herds?q=ledger`);
  await page
    .getByRole('row', { name: /ledger/ })
    .getByRole('link', { name: 'ledger' })
    .click();
  await expect(page.getByRole('heading', { name: 'Herd staging/ledger' })).toBeVisible();
};

test("the herds changelist and the herd's page show Patroni's leader and members next to pgherd's view", async ({ page }) => {
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  // The worker reads Patroni every 5 s and keeps its view on the herd.
  await expect(async () => {
    await page.goto(`${url}/admin/herds?q=ledger`);
    await expect(page.getByRole('row', { name: /ledger/ })).toContainText(`leader ${first!}`, { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByRole('row', { name: /ledger/ })).toContainText('patroni');
  await openHerd(page);
  const panel = page.getByTestId('patroni');
  await expect(panel.locator('[data-col=leader]')).toHaveText(first!);
  await expect(panel.locator(`tr[data-patroni-member="${first!}"] td[data-col=role]`)).toHaveText('leader');
  for (const m of herd.members.slice(1))
    await expect(panel.locator(`tr[data-patroni-member="${m.server}"] td[data-col=role]`)).toHaveText('replica');
  await expect(panel.locator('tr[data-patroni-member] td[data-col=state]')).toHaveText(['running', 'running', 'running']);
  await page.screenshot({ path: test.info().outputPath('patroni-herd.png'), fullPage: true });
  // The REST API says the same.
  const res = await page.request.get(`${url}/api/v1/herds?q=ledger`, { headers: { authorization: `Bearer ${lab.console.apiToken!}` } });
  const [item] = (
    (await res.json()) as { items: { controlDriver: string; patroni: string; members: { server: string; patroniUrl: string }[] }[] }
  ).items;
  expect(item).toMatchObject({ controlDriver: 'patroni', patroni: `leader ${first!}` });
  expect(item!.members.map((m) => [m.server, m.patroniUrl])).toEqual(herd.members.map((m) => [m.server, m.restUrl]));
});

test('a switchover confirmed on the page goes through Patroni: the plan says what Patroni is asked, the leader and DNS move', async ({
  page,
}) => {
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  expect(await answer()).toBe(first);
  await page.goto(`${url}/admin/herds?q=ledger`);
  await page
    .getByRole('row', { name: /ledger/ })
    .getByRole('checkbox')
    .check();
  await page.getByLabel('Action:').selectOption({ label: 'Switchover' });
  await page.getByRole('button', { name: 'Go' }).click();
  const target = page.locator('tr[data-target="staging/ledger"]');
  await expect(target).toContainText('POST /switchover {leader:');
  await expect(target).toContainText('pre-flight: Patroni takes pgherd\u2019s credentials'.replace('\u2019', "'"));
  await expect(target).not.toContainText('pg_ctl');
  const typed = page.getByLabel('Confirmation');
  if (await typed.count()) await typed.fill((await page.locator('.confirm-form code').first().textContent()) ?? '');
  await page.getByRole('button', { name: 'Switchover 1 herd' }).click();
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 120_000 });
  expect(await answer()).not.toBe(first);
  await openHerd(page);
  const leader = await page.getByTestId('patroni').locator('[data-col=leader]').textContent();
  expect(leader).not.toBe(first);
  expect([second, herd.members[2]!.server]).toContain(leader);
  expect(await answer()).toBe(leader);
});
