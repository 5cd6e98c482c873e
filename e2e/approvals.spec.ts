// Two people for production, in the browser: a global admin adds production's policy on its page; alice
// (production's DBA) confirms a restart and it waits, nothing run; bob (viewer there) sees why he cannot
// approve it, erin (staging's admin) cannot open it; frank (production operator) sees the plan alice
// saw, approves it, and the instance really restarts.
import path from 'node:path';
import { type Browser, type Page } from '@playwright/test';
import { and, eq } from 'drizzle-orm';
import { expect, test } from './fixtures';
import { createDb } from '../db/client';
import { approvalPolicies, auditEntries, environments, webhookDeliveries, webhooks } from '../db/schema';
import { query } from '../lib/lab/postgres';
import { e2eLab, signInAs, submitSignIn } from './lab';

const lab = e2eLab();
const PICTURES = path.join(__dirname, '..', 'docs', 'pictures');
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

/** A Slack message's blocks drawn as Slack lays them out, near enough to show what arrives (docs/rules.md). */
function slackHtml(body: {
  blocks: { type: string; text?: { text: string }; elements?: { text: { text: string } | string; style?: string }[] }[];
}) {
  const esc = (t: string) => t.replace(/&(?!amp;|lt;|gt;)/g, '&amp;');
  const rows = body.blocks
    .map((b) => {
      if (b.type === 'section') return `<div class="section">${esc(b.text?.text ?? '')}</div>`;
      if (b.type === 'actions')
        return `<div class="actions">${(b.elements ?? [])
          .map((e) => `<span class="btn ${e.style ?? ''}">${typeof e.text === 'string' ? e.text : e.text.text}</span>`)
          .join('')}</div>`;
      return `<div class="context">${(b.elements ?? []).map((e) => (typeof e.text === 'string' ? e.text : e.text.text)).join(' ')}</div>`;
    })
    .join('');
  return `<html><body style="font: 15px system-ui, sans-serif; margin: 0; padding: 16px; width: 720px; background: #fff">
    <style>.msg{display:flex;gap:10px}.avatar{width:36px;height:36px;border-radius:6px;background:#3b5b8c;color:#fff;display:flex;align-items:center;justify-content:center;font-weight:700}
    .name{font-weight:700}.name small{font-weight:400;color:#616061;margin-left:6px}.section{margin:4px 0 8px;line-height:1.45}
    .btn{display:inline-block;border:1px solid #bbb;border-radius:4px;padding:5px 12px;margin-right:8px;font-weight:600;font-size:14px}
    .btn.primary{background:#007a5a;border-color:#007a5a;color:#fff}.btn.danger{color:#e01e5a;border-color:#e01e5a}.context{color:#616061;font-size:12px;margin-top:8px}</style>
    <div class="msg"><div class="avatar">pg</div><div><div class="name">pgherd <small>APP</small></div>${rows}</div></div></body></html>`;
}

test('from chat: the Slack message’s Approve opens the page, a changed link is refused; break glass runs at once and says so', async ({
  browser,
}) => {
  const { db, pool } = createDb(lab.database.url, 1);
  try {
    await db.insert(approvalPolicies).values({ environmentId: (await productionId(db))!, actions: ['restart', 'reload'] });
    // A Slack webhook (its address unreachable from here: what it would have been sent is kept with the delivery).
    const [hook] = await db
      .insert(webhooks)
      .values({
        name: 'approvals',
        url: 'https://hooks.slack.invalid/T0/B0/x',
        secret: 'e2e',
        events: ['approval.requested'],
        format: 'slack',
      })
      .returning();
    const alice = await as(browser, 'alice');
    await alice.goto(`${url}/admin/instances?q=${target.server}`);
    await alice.getByRole('checkbox', { name: `Select ${target.server}` }).check();
    await alice.getByLabel('Action:').selectOption({ label: 'Reload configuration' });
    await alice.getByRole('button', { name: 'Go' }).click();
    await expect(alice.getByTestId('plan-needs-approval')).toContainText(
      '1 approval from an operator or admin of production, other than alice',
    );
    const typed = alice.getByLabel('Confirmation');
    if (await typed.count()) await typed.fill('production');
    await alice.getByRole('button', { name: /^Reload configuration 1 instance/ }).click();
    await expect(alice.getByTestId('operation-status')).toHaveText('awaiting approval');
    const id = Number(/\/operations\/(\d+)/.exec(alice.url())![1]);

    const delivery = async () => (await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, hook!.id)))[0];
    await expect.poll(async () => (await delivery()) !== undefined, { timeout: 30_000 }).toBe(true);
    const payload = (await delivery())!.payload as Parameters<typeof slackHtml>[0];
    const picture = await (await browser.newContext()).newPage();
    await picture.setContent(slackHtml(payload));
    await picture.locator('.msg').screenshot({ path: path.join(PICTURES, 'approval-slack.png') });
    const buttons = payload.blocks.find((b) => b.type === 'actions')!.elements as unknown as { url: string }[];
    const approveUrl = new URL(buttons[0]!.url, url);
    expect(approveUrl.pathname).toBe('/approval-link');
    const link = approveUrl.searchParams.get('t')!;

    // A link changed on its way (another operation's id in it) is refused, and the refusal is audited.
    const frank = await as(browser, 'frank');
    const [body, sig] = link.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), a: 'denied' })).toString(
      'base64url',
    );
    await frank.goto(`${url}/operations/${id}?link=${encodeURIComponent(`${forged}.${sig!}`)}`);
    await expect(frank.getByTestId('link-refused')).toContainText('not one pgherd signed');
    const refusals = await db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'approval.link_refused'), eq(auditEntries.username, 'frank')));
    expect(refusals.length).toBeGreaterThan(0);
    // The real one, as chat has it: signed out, it asks to sign in first, then opens the page; nothing is
    // decided until frank clicks, as himself.
    const signedOut = await (await browser.newContext()).newPage();
    await signedOut.goto(`${url}${approveUrl.pathname}${approveUrl.search}`);
    await expect(signedOut).toHaveURL(/\/login\?next=/);
    await submitSignIn(signedOut, 'frank', password('frank'));
    await expect(signedOut).toHaveURL(new RegExp(`/operations/${id}\\?link=`));
    await frank.goto(`${url}${approveUrl.pathname}${approveUrl.search}`);
    await expect(frank).toHaveURL(new RegExp(`/operations/${id}\\?link=`));
    await expect(frank.getByTestId('link-opened')).toContainText('Nothing is decided until you read the plan below');
    await expect(frank.getByTestId('operation-status')).toHaveText('awaiting approval');
    await expect(frank.getByRole('button', { name: 'Deny' })).toHaveCount(0);
    await frank.getByRole('button', { name: 'Approve' }).click();
    await expect(frank.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 60_000 });
    await expect(frank.getByTestId('approval-decisions')).toContainText('frank approved it');
    await expect(frank.getByTestId('approval-decisions')).toContainText('(link)');
    // Break glass: alice (production's admin) runs a reload now, with her reason; everything says so.
    await alice.goto(`${url}/admin/instances?q=${target.server}`);
    await alice.getByRole('checkbox', { name: `Select ${target.server}` }).check();
    await alice.getByLabel('Action:').selectOption({ label: 'Reload configuration' });
    await alice.getByRole('button', { name: 'Go' }).click();
    await alice.getByTestId('break-glass').locator('summary').click();
    await alice.getByLabel('Run it now without approval').check();
    await alice.getByLabel('Break glass reason').fill('replica lagging, approvers unreachable');
    if (await typed.count()) await typed.fill('production');
    await alice.getByRole('button', { name: /^Reload configuration 1 instance/ }).click();
    await expect(alice.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 60_000 });
    await expect(alice.getByTestId('break-glass-reason')).toContainText('replica lagging, approvers unreachable');
    await alice.goto(`${url}/`);
    await expect(alice.getByTestId('break-glass-uses')).toContainText('replica lagging, approvers unreachable');
  } finally {
    await db.delete(webhooks);
    await pool.end();
  }
});

async function productionId(db: ReturnType<typeof createDb>['db']) {
  const [p] = await db.select({ id: environments.id }).from(environments).where(eq(environments.name, 'production'));
  return p?.id;
}
