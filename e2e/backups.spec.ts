// Backups in the browser: an admin configures backups for a herd and takes a full backup from the herds
// changelist, reads the Backups column, then restores the herd to a new one on a scratch server from the
// confirmation page; the restored herd answers with the data, and the recoverability scorecard lists it.
import { type Page } from '@playwright/test';
import path from 'node:path';
import { expect, test } from './fixtures';
import { e2eLab, signInAs } from './lab';
import { query } from '../lib/lab/postgres';

const lab = e2eLab();
const url = lab.console.url;
const members = lab.instances.filter((i) => i.environment === 'staging' && i.herd === 'identity');
const scratch = lab.backup!.scratch.find((s) => s.environment === 'staging')!;

/** The member that is the primary now (an earlier test may have switched the herd over). */
async function currentPrimary() {
  for (const m of members) {
    const [r] = await query<{ rec: boolean }>(m.dsn, 'SELECT pg_is_in_recovery() AS rec').catch(() => [undefined]);
    if (r && !r.rec) return m;
  }
  throw new Error('staging/identity has no primary answering');
}

/** Ticks staging/identity in the herds changelist and picks `action`. */
async function herdAction(page: Page, action: string) {
  await page.goto(`${url}/admin/herds?q=identity`);
  await page
    .getByRole('row', { name: /staging/ })
    .getByRole('checkbox')
    .check();
  await page.getByLabel('Action:').selectOption({ label: action });
  await page.getByRole('button', { name: 'Go' }).click();
}

async function confirmAndWait(page: Page, button: string, timeout = 60_000) {
  const typed = page.getByLabel('Confirmation');
  if (await typed.count()) await typed.fill('staging');
  await page.getByRole('button', { name: button }).click();
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout });
}

test('backs a herd up from the changelist and restores it to a new herd from the confirmation page', async ({ page }) => {
  test.setTimeout(240_000);
  const primary = await currentPrimary();
  await query(primary.dsn, 'CREATE TABLE e2e_backed_up (n int)');
  await query(primary.dsn, 'INSERT INTO e2e_backed_up SELECT generate_series(1, 321)');
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);

  await herdAction(page, 'Configure backups');
  await expect(page.locator('tr[data-target="staging/identity"]')).toContainText('create (or upgrade) stanza staging-identity');
  await confirmAndWait(page, 'Configure backups 1 herd');

  await herdAction(page, 'Back up');
  await page.getByLabel('Type:').fill('full');
  await page.getByRole('button', { name: 'Update the plan' }).click();
  await expect(page.locator('tr[data-target="staging/identity"]')).toContainText('take a full backup of stanza staging-identity');
  await confirmAndWait(page, 'Back up 1 herd');

  // The changelist's Backups column and facet.
  await page.goto(`${url}/admin/herds?q=identity&backups=ok`);
  await expect(page.getByRole('row', { name: /staging/ })).toContainText(/full \d+ min ago · incr never · archive/);

  const serverId = (await query<{ id: number }>(lab.database.url, 'SELECT id FROM servers WHERE hostname = $1', [scratch.server]))[0]!.id;
  await herdAction(page, 'Restore to a new herd');
  await page.getByLabel('New herd:').fill('identity-e2e');
  await page.getByLabel('Server (id):').fill(String(serverId));
  await page.getByLabel('Data directory:').fill(path.join(scratch.dataRoot, 'identity-e2e', 'data'));
  await page.getByLabel('Port:').fill('25960');
  await page.getByLabel('TLS certificate:').fill(scratch.tls!.certFile);
  await page.getByLabel('TLS key:').fill(scratch.tls!.keyFile);
  await page.getByRole('button', { name: 'Update the plan' }).click();
  const target = page.locator('tr[data-target="staging/identity"]');
  await expect(target.locator('[data-fact="To"] dd')).toHaveText('the end of the archive (latest)');
  await expect(target.locator('[data-fact="Onto"] dd')).toContainText(`${scratch.server}:25960`);
  await expect(target).toContainText(`ask ${scratch.server} over SSH: nothing answers on port 25960`);
  await page.screenshot({ path: test.info().outputPath('restore-confirmation.png'), fullPage: true });
  await confirmAndWait(page, 'Restore to a new herd 1 herd', 180_000);

  const [n] = await query<{ n: string }>(
    `postgres://postgres@${scratch.address}:25960/postgres`,
    'SELECT count(*)::text AS n FROM e2e_backed_up',
  );
  expect(n!.n).toBe('321');
  await page.goto(`${url}/admin/herds?q=identity-e2e`);
  await expect(page.getByRole('row', { name: /identity-e2e/ })).toBeVisible();
  await page.goto(
    `${url}/backups?environment=${String((await query<{ id: number }>(lab.database.url, "SELECT id FROM environments WHERE name = 'staging'"))[0]!.id)}`,
  );
  await expect(page.locator('tr[data-herd="identity"]')).toHaveAttribute('data-verdict', 'never drilled');

  // Torn down from the changelist: stopped, its folder removed, the herd gone (the inventory as it was).
  await page.goto(`${url}/admin/herds?q=identity-e2e`);
  await page
    .getByRole('row', { name: /identity-e2e/ })
    .getByRole('checkbox')
    .check();
  await page.getByLabel('Action:').selectOption({ label: 'Tear down a restored herd' });
  await page.getByRole('button', { name: 'Go' }).click();
  await expect(page.locator('tr[data-target="staging/identity-e2e"]')).toContainText(
    'remove staging/identity-e2e and its instances from the inventory',
  );
  await confirmAndWait(page, 'Tear down a restored herd 1 herd');
  await expect(query(`postgres://postgres@${scratch.address}:25960/postgres`, 'SELECT 1')).rejects.toThrow();
  await page.goto(`${url}/admin/herds?q=identity-e2e`);
  await expect(page.getByRole('row', { name: /identity-e2e/ })).toHaveCount(0);
});
