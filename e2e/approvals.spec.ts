// Two people for production, in the browser: a global admin adds production's policy on its page; alice
// (production's DBA) confirms a restart and it waits, nothing run; bob (viewer there) sees why he cannot
// approve it, erin (staging's admin) cannot open it; frank (production operator) sees the plan alice
// saw, approves it, and the instance really restarts.
import { type Browser, type Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { createDb } from '../db/client';
import { approvalPolicies } from '../db/schema';
import { query } from '../lib/lab/postgres';
import { e2eLab, signInAs } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const password = (u: string) => lab.ldap!.users.find((x) => x.username === u)!.password;
const target = lab.instances.find((i) => i.environment === 'production' && i.herd === 'billing' && i.role === 'replica')!;
const startedAt = async () => (await query<{ t: string }>(target.dsn, 'SELECT pg_postmaster_start_time()::text AS t'))[0]!.t;

async function as(browser: Browser, username: string, pass = password(username)): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await signInAs(page, url, username, pass);
  return page;
}

async function dropPolicies() {
  const { db, pool } = createDb(lab.database.url, 1);
  try {
    await db.delete(approvalPolicies);
  } finally {
    await pool.end();
  }
}

test.afterAll(dropPolicies);

test('alice asks for a production restart; bob and erin cannot approve it, frank does, and it runs', async ({ browser }) => {
  const admin = await as(browser, lab.console.admin.username, lab.console.admin.password);
  await admin.goto(`${url}/admin/approval-policies/add`);
  await admin.getByLabel('Environment:').selectOption({ label: 'production' });
  await admin.getByLabel('Actions:').fill('restart');
  await admin.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(admin.locator('.messagelist.success')).toBeVisible();

  // An environment's own admin (alice is production's) cannot lift it.
  const alice = await as(browser, 'alice');
  const { db, pool } = createDb(lab.database.url, 1);
  const [policy] = await db.select({ id: approvalPolicies.id }).from(approvalPolicies);
  await pool.end();
  await alice.goto(`${url}/admin/approval-policies/${policy!.id}`);
  await expect(alice.locator('[data-read-only]')).toContainText('changing it needs the admin role globally');
  await expect(alice.getByRole('button', { name: 'Save' })).toHaveCount(0);

  const before = await startedAt();
  await alice.goto(`${url}/admin/instances?q=${target.server}`);
  await alice.getByRole('checkbox', { name: `Select ${target.server}` }).check();
  await alice.getByLabel('Action:').selectOption({ label: 'Restart' });
  await alice.getByRole('button', { name: 'Go' }).click();
  const planSeen = await alice.locator('table.plan').innerText();
  const typed = alice.getByLabel('Confirmation');
  if (await typed.count()) await typed.fill('production');
  await alice.getByRole('button', { name: 'Restart 1 instance' }).click();
  await expect(alice.getByTestId('operation-status')).toHaveText('awaiting approval');
  await expect(alice.getByTestId('approval-needed')).toContainText('1 approval from an operator or admin of production, other than alice');
  await expect(alice.getByTestId('approval-not-yours')).toContainText('another person must approve it');
  await expect(alice.getByRole('button', { name: 'Approve' })).toHaveCount(0);
  const opUrl = alice.url();
  const id = Number(/\/operations\/(\d+)/.exec(opUrl)![1]);

  // bob sees it (viewer in production) and why he cannot decide; erin (staging only) cannot open it.
  const bob = await as(browser, 'bob');
  await bob.goto(opUrl);
  await expect(bob.getByTestId('approval-not-yours')).toContainText('needs the operator role');
  await expect(bob.getByRole('button', { name: 'Approve' })).toHaveCount(0);
  const erin = await as(browser, 'erin');
  expect((await erin.goto(opUrl))!.status()).toBe(403);
  // Nothing ran meanwhile.
  expect(await startedAt()).toBe(before);

  const frank = await as(browser, 'frank');
  await frank.goto(opUrl);
  await expect(frank.getByTestId('requested-plan')).toBeVisible();
  expect(await frank.locator('[data-testid="requested-plan"] table.plan').innerText()).toBe(planSeen);
  await frank.getByLabel('Comment').fill('lag is fine, go');
  await frank.getByRole('button', { name: 'Approve' }).click();
  await expect(frank.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 60_000 });
  await expect(frank.getByTestId('approval-decisions')).toContainText('frank approved it');
  expect(await startedAt()).not.toBe(before);

  // The API says the same of it: approved by frank, with his comment.
  const api = await frank.request.get(`${url}/api/v1/operations/${id}`);
  expect((await api.json()).approval).toMatchObject({
    required: 1,
    decisions: [{ username: 'frank', decision: 'approved', comment: 'lag is fine, go' }],
  });
});
