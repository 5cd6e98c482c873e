// Configuration as a fleet in the browser: an admin makes a parameter group and gives it to staging/billing;
// someone runs ALTER SYSTEM on one replica behind pgherd's back; the herd's page shows the drift (which
// setting, what runs, where it comes from, what the group says); the admin accepts it into the herd's
// overrides, and applies the settings to the whole herd from the confirmation page. Every member runs it.
import { expect, test } from './fixtures';
import { e2eLab, signInAs } from './lab';
import { query } from '../lib/lab/postgres';

const lab = e2eLab();
const url = lab.console.url;
const members = lab.instances.filter((i) => i.environment === 'staging' && i.herd === 'billing');
const dsn = (i: { address: string; port: number }) => `postgres://postgres@${i.address}:${i.port}/postgres`;
const workMem = async (i: { address: string; port: number }) =>
  (await query<{ v: string }>(dsn(i), "SELECT setting AS v FROM pg_settings WHERE name = 'work_mem'"))[0]!.v;

test('shows a drift, accepts it into the herd and applies it to every member', async ({ page }) => {
  test.setTimeout(300_000);
  const [herd] = await query<{ id: number }>(
    lab.database.url,
    "SELECT h.id FROM herds h JOIN environments e ON e.id = h.environment_id WHERE e.name = 'staging' AND h.name = 'billing'",
  );
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  try {
    // A group, made in the console, given to the herd.
    await page.goto(`${url}/admin/parameter-groups/add`);
    await page.getByLabel('Name:').fill('e2e-billing');
    await page.getByLabel('Settings:').fill("work_mem = '4MB'\nport = 5433");
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(page.locator('[data-field="settings"] .errorlist')).toContainText('port is set per member by pgherd, not by a group');
    await page.getByLabel('Settings:').fill("work_mem = '4MB'");
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(page.getByRole('link', { name: 'e2e-billing' })).toBeVisible();
    await page.goto(`${url}/admin/herds/${String(herd!.id)}`);
    await page.getByLabel('Parameter group:').selectOption({ label: 'e2e-billing' });
    await page.getByRole('button', { name: 'Save', exact: true }).click();

    // Behind pgherd's back, on one replica, once pgherd has read its settings a first time (a change
    // made before that is what it found, not a change it saw).
    const replica = members.find((m) => m.role === 'replica')!;
    await expect
      .poll(
        async () =>
          (
            await query<{ id: string | null }>(
              lab.database.url,
              'SELECT i.settings_snapshot_id AS id FROM instances i JOIN servers s ON s.id = i.server_id WHERE s.hostname = $1 AND i.port = $2',
              [replica.server, replica.port],
            )
          )[0]?.id ?? null,
        { timeout: 120_000 },
      )
      .not.toBeNull();
    await query(dsn(replica), "ALTER SYSTEM SET work_mem = '32MB'");
    await query(dsn(replica), 'SELECT pg_reload_conf()');

    // Found by the refresh and the settings pass (within their intervals), shown on the herd's page.
    await page.goto(`${url}/herds/${String(herd!.id)}#settings`);
    const row = page.locator(`[data-testid="settings-drift"] tr[data-member^="${replica.server}"][data-setting="work_mem"]`);
    await expect(row.locator('[data-col="runs"]')).toHaveText('32MB', { timeout: 120_000 });
    await expect(row.locator('[data-col="wanted"]')).toContainText('4MB (group e2e-billing v1 (herd))');
    await expect(row).toContainText('postgresql.auto.conf');
    await expect(row.locator('[data-col="since"]')).toContainText('(outside pgherd)');
    await page.screenshot({ path: test.info().outputPath('settings-drift.png'), fullPage: true });

    // Accepted into the herd's overrides: the replica is in line, the others now drift the other way.
    await row.getByTestId('accept-into-herd').click();
    await expect(page.locator(`[data-testid="settings-drift"] tr[data-member^="${replica.server}"]`)).toHaveCount(0);
    await expect(page.locator('[data-testid="settings-drift"] tr[data-setting="work_mem"]')).toHaveCount(2);

    // Applied to the herd from the confirmation page.
    await page.getByTestId('apply-settings').click();
    const primary = members.find((m) => m.role === 'primary')!;
    const target = page.locator('tr[data-target="staging/billing"]');
    await expect(target).toContainText('work_mem 4MB -> 32MB');
    await expect(target).toContainText(`ALTER SYSTEM SET work_mem = '32MB'`);
    await page.screenshot({ path: test.info().outputPath('apply-settings-confirmation.png'), fullPage: true });
    const typed = page.getByLabel('Confirmation');
    if (await typed.count()) await typed.fill('staging');
    await page.getByRole('button', { name: 'Apply settings 1 herd' }).click();
    await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 120_000 });
    for (const m of members) expect(await workMem(m), m.server).toBe('32768');
    expect(primary).toBeTruthy();
    await page.goto(`${url}/herds/${String(herd!.id)}`);
    await expect(page.getByTestId('herd-settings')).toContainText('Every member runs what its groups say.');
    await expect(page.getByTestId('settings-history')).toContainText('work_mem 4096 -> 32768');
  } finally {
    await query(lab.database.url, "UPDATE herds SET parameter_group_id = NULL, setting_overrides = '' WHERE id = $1", [herd!.id]);
    await query(lab.database.url, "DELETE FROM parameter_groups WHERE name = 'e2e-billing'");
    for (const m of members) {
      await query(dsn(m), 'ALTER SYSTEM RESET work_mem').catch(() => null);
      await query(dsn(m), 'SELECT pg_reload_conf()').catch(() => null);
    }
  }
});
