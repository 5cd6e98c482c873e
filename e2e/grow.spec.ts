// Growing a herd in the browser: an admin adds a replica to staging/billing from the herd's page, onto a
// scratch server of the environment, sees on the confirmation page where its data comes from and where it
// goes, confirms; the new member streams from the primary and is on the herd's page. Then it is retired
// from the instances changelist: stopped, out of the inventory, the herd as it was.
import path from 'node:path';
import { expect, test } from './fixtures';
import { e2eLab, signInAs } from './lab';
import { query } from '../lib/lab/postgres';

const lab = e2eLab();
const url = lab.console.url;
const scratch = lab.backup!.scratch.filter((s) => s.environment === 'staging')[1]!;

test('adds a replica from the herd page and retires it from the changelist', async ({ page }) => {
  test.setTimeout(240_000);
  const [herd] = await query<{ id: number }>(
    lab.database.url,
    "SELECT h.id FROM herds h JOIN environments e ON e.id = h.environment_id WHERE e.name = 'staging' AND h.name = 'billing'",
  );
  const [server] = await query<{ id: number }>(lab.database.url, 'SELECT id FROM servers WHERE hostname = $1', [scratch.server]);
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);

  await page.goto(`${url}/herds/${String(herd!.id)}`);
  await page.getByTestId('add-replica').click();
  await page.getByLabel('Server (id):').fill(String(server!.id));
  await page.getByLabel('Data directory:').fill(path.join(scratch.dataRoot, 'billing-e2e', 'data'));
  await page.getByLabel('Port:').fill('25970');
  await page.getByLabel('TLS certificate:').fill(scratch.tls!.certFile);
  await page.getByLabel('TLS key:').fill(scratch.tls!.keyFile);
  await page.getByRole('button', { name: 'Update the plan' }).click();
  const target = page.locator('tr[data-target="staging/billing"]');
  // No backups configured for staging/billing: a replica is read, never the primary.
  await expect(target.locator('[data-fact="Seeded from"] dd')).toContainText(
    /, a replica \(pg_basebackup from it: the primary is not read\)/,
  );
  await expect(target.locator('[data-fact="Onto"] dd')).toContainText(`${scratch.server}:25970`);
  await expect(target.locator('[data-fact="WAL"] dd')).toContainText('no restore_command');
  await page.screenshot({ path: test.info().outputPath('add-replica-confirmation.png'), fullPage: true });
  const typed = page.getByLabel('Confirmation');
  if (await typed.count()) await typed.fill('staging');
  await page.getByRole('button', { name: 'Add replica 1 herd' }).click();
  await expect(page.getByTestId('operation-status')).toHaveText(/succeeded|failed/, { timeout: 180_000 });
  const why = await query<{ error: string | null; steps: string | null }>(
    lab.database.url,
    `SELECT t.error, (SELECT string_agg(s.name || ': ' || right(s.stderr_tail, 500), '; ') FROM operation_steps s
                     WHERE s.target_id = t.id AND s.status = 'failed') AS steps
     FROM operation_targets t WHERE t.operation_id = (SELECT max(id) FROM operations WHERE action = 'add-replica')`,
  );
  await expect(page.getByTestId('operation-status'), JSON.stringify(why)).toHaveText('succeeded');

  // It streams from the herd's primary, and the herd's page lists it.
  const dsn = `postgres://postgres@${scratch.address}:25970/postgres`;
  const [w] = await query<{ status: string }>(dsn, 'SELECT status FROM pg_stat_wal_receiver');
  expect(w!.status).toBe('streaming');
  await page.goto(`${url}/herds/${String(herd!.id)}`);
  await expect(page.getByTestId('members')).toContainText(`${scratch.server}:25970`);

  // Retired from the instances changelist: its host kept, the cluster stopped, out of the inventory.
  await page.goto(`${url}/admin/instances?q=${scratch.server.split('.')[0]!}`);
  await page
    .getByRole('row', { name: new RegExp(scratch.server.split('.')[0]!) })
    .getByRole('checkbox')
    .check();
  await page.getByLabel('Action:').selectOption({ label: 'Retire member' });
  await page.getByRole('button', { name: 'Go' }).click();
  await expect(page.locator('[data-fact="Its host"] dd')).toContainText('kept');
  if (await typed.count()) await typed.fill('staging');
  await page.getByRole('button', { name: 'Retire member 1 instance' }).click();
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 120_000 });
  await expect(query(dsn, 'SELECT 1')).rejects.toThrow();
  await page.goto(`${url}/herds/${String(herd!.id)}`);
  await expect(page.getByTestId('members')).not.toContainText(scratch.server);
});
