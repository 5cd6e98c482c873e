// Pending maintenance, end to end: the agents of staging/orders (which the lab runs on its 15.17 build)
// report their hosts' builds to the built console; the page lists the herd behind 15.18, an admin
// ticks it and plans the rolling upgrade, confirms, and the herd runs 15.18 after; the page and the API
// no longer list it.
import { buildsRoot } from '../lib/lab/builds';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Page } from '@playwright/test';
import { eq } from 'drizzle-orm';
import { expect, test } from './fixtures';
import { createDb } from '../db/client';
import { environments, servers } from '../db/schema';
import { createAgentToken } from '@/lib/features/agents/ingest';
import { readConfig, reportNow } from '@/lib/agent/cli';
import { PG_SUPERUSER, query } from '../lib/lab/postgres';
import { e2eLab, signInAs } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const orders = lab.instances.filter((i) => i.environment === 'staging' && i.herd === 'orders');
const auth = { authorization: `Bearer ${lab.console.apiToken ?? ''}` };
const signIn = (page: Page) => signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
const versionOf = async (dsn: string) => (await query<{ v: number }>(dsn, `SELECT current_setting('server_version_num')::int AS v`))[0]!.v;

test.describe.configure({ mode: 'serial' });

let stagingId = 0;

test('the agents report their hosts\u2019 builds: staging/orders is pending, 15.17 on every member, 15.18 installed', async ({
  request,
}) => {
  expect(orders).toHaveLength(3);
  for (const i of orders) expect(await versionOf(i.dsn)).toBe(150017);
  const { db, pool } = createDb(lab.database.url, 1);
  const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-upgrades-e2e-'));
  try {
    stagingId = (await db.select().from(environments).where(eq(environments.name, 'staging')))[0]!.id;
    for (const i of orders) {
      const [s] = await db.select().from(servers).where(eq(servers.hostname, i.server));
      const tokenFile = path.join(dir, `${i.server}.token`);
      writeFileSync(tokenFile, `${await createAgentToken(db, s!.id, { id: null, username: 'e2e' })}\n`);
      chmodSync(tokenFile, 0o600);
      const file = path.join(dir, `${i.server}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          server: url,
          hostname: i.server,
          tokenFile,
          lsclusters: false,
          user: PG_SUPERUSER,
          socketDirectories: [i.socketDirectory],
          buildDirectories: ['/usr/lib/postgresql/*/bin', `${buildsRoot()}/*/bin`],
        }),
      );
      await reportNow(readConfig(file));
    }
  } finally {
    await pool.end();
  }
  const res = await request.get(`${url}/api/v1/upgrades/pending`, { params: { environment: stagingId }, headers: auth });
  expect(res.status()).toBe(200);
  const { items } = (await res.json()) as { items: { herd: string; target: string; behind: number; blocked: string | null }[] };
  expect(items.find((h) => h.herd === 'orders')).toMatchObject({ target: '15.18', behind: 3, blocked: null });
  // Bad input is a clear 400, not a list.
  expect((await request.get(`${url}/api/v1/upgrades/pending`, { params: { environment: 'prod' }, headers: auth })).status()).toBe(400);
});

test('tick the herd on the pending maintenance page, plan the rolling upgrade, confirm: every member runs 15.18', async ({
  page,
  request,
}) => {
  test.setTimeout(180_000);
  await signIn(page);
  await page.goto(`${url}/upgrades?environment=${String(stagingId)}`);
  await expect(page.getByRole('heading', { name: 'Pending maintenance: staging' })).toBeVisible();
  const row = page.locator('tr[data-herd="orders"]');
  await expect(row).toContainText('15.17 \u00d73');
  await expect(row).toContainText('15.18');
  await expect(row).toContainText('3 of 3');
  await expect(page.getByTestId('plan-upgrade')).toHaveCount(0);
  // The campaign: staging's herds on 15, whose end of life is the project's November 2027 release.
  await expect(page.getByTestId('upgrade-campaign').locator('tr[data-major="15"]')).toContainText('2027-11-11');
  await expect(page.getByTestId('upgrades-under-way')).toContainText('No major upgrade under way');
  await page.getByRole('checkbox', { name: 'Tick orders' }).check();
  await page.getByTestId('plan-upgrade').click();

  // The confirmation page: what happens, member by member, and nothing has run.
  await expect(page.getByRole('heading', { name: 'Upgrade to another minor release: 1 of 1 herd' })).toBeVisible();
  await expect(page.locator('main')).toContainText(/onto 15\.18; then .* onto 15\.18; then switch over to .*; then .* onto 15\.18/);
  await expect(page.locator('main')).toContainText('If a gate fails');
  for (const i of orders) expect(await versionOf(i.dsn)).toBe(150017);
  await page.getByRole('button', { name: /1 herd$/ }).click();

  await expect(page).toHaveURL(/\/operations\/\d+$/);
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 150_000 });
  for (const i of orders) expect(await versionOf(i.dsn)).toBe(150018);

  await page.goto(`${url}/upgrades?environment=${String(stagingId)}`);
  await expect(page.locator('tr[data-herd="orders"]')).toHaveCount(0);
  const res = await request.get(`${url}/api/v1/upgrades/pending`, { params: { environment: stagingId, all: '1' }, headers: auth });
  const { items } = (await res.json()) as { items: { herd: string; behind: number; runs: { version: string; members: number }[] }[] };
  expect(items.find((h) => h.herd === 'orders')).toMatchObject({ behind: 0, runs: [{ version: '15.18', members: 3 }] });
});
