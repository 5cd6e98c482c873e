// RDS in the browser: the demo's RDS herd (staging/reports: a source and a read replica, DB instances in
// the lab's moto, each a real Postgres) found by the worker's discovery; its replica resized from the
// instances changelist to another class, the confirmation page showing the classes and the cost, and the
// operation watched to the end: RDS says the new class, the replica streams again.
import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { expect, test } from './fixtures';
import { e2eLab, signInAs } from './lab';
import { query } from '../lib/lab/postgres';
import { waitFor } from '../lib/testing/wait';

const lab = e2eLab();
const url = lab.console.url;
const herd = lab.rds!.find((h) => h.herd === 'reports')!;
const replica = herd.members.find((m) => m.role === 'replica')!;

test('an RDS replica resized from the changelist: the classes and the cost, confirmed, watched to the end', async ({ page }) => {
  test.setTimeout(180_000);
  // The worker's discovery (at its start, then every few seconds) has brought the herd in, and the refresh observed it.
  await waitFor(
    'the RDS herd in the inventory, observed',
    async () =>
      Number(
        (
          await query<{ n: string }>(
            lab.database.url,
            `SELECT count(*) AS n FROM instances i JOIN servers s ON s.id = i.server_id
           WHERE s.cloud_provider = 'rds' AND s.hostname = $1 AND i.last_observed_at IS NOT NULL AND i.observed_role = 'replica'`,
            [replica.identifier],
          )
        )[0]?.n,
      ) === 1 || undefined,
    90_000,
  );
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  await page.goto(`${url}/admin/instances?q=${replica.identifier}`);
  const row = page.getByRole('row', { name: new RegExp(replica.identifier) });
  await expect(row).toContainText('db.m6i.large');
  await row.getByRole('checkbox').check();
  await page.getByLabel('Action:').selectOption({ label: 'Resize (EC2 or RDS)' });
  await page.getByRole('button', { name: 'Go' }).click();
  await page.getByLabel('Instance type').fill('db.m6i.xlarge');
  await page.getByRole('button', { name: 'Update the plan' }).click();
  const target = page.locator(`tr[data-target^="${replica.identifier}"]`);
  await expect(target.locator('[data-fact="Class now"] dd')).toHaveText(/^db\.m6i\.large: 2 vCPU, 8 GiB, \$0\.\d+\/h, \$\d+\.\d\d\/month$/);
  await expect(target.locator('[data-fact="Target class"] dd')).toHaveText(/^db\.m6i\.xlarge: 4 vCPU, 16 GiB, \$0\.\d+\/h/);
  await expect(target.locator('[data-fact="Cost change"] dd')).toHaveText(/^\+\$\d+\.\d\d\/month/);
  await expect(page.getByTestId('plan-cost')).toContainText('1 target');
  await page.screenshot({ path: test.info().outputPath('rds-resize-confirmation.png'), fullPage: true });
  const typed = page.getByLabel('Confirmation');
  if (await typed.count()) await typed.fill('staging');
  await page.getByRole('button', { name: 'Resize (EC2 or RDS) 1 instance' }).click();
  await expect(page).toHaveURL(/\/operations\/\d+$/);
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 120_000 });
  await expect(page.locator('section.target').first()).toContainText('RDS: available again');

  // RDS says the class; the replica streams again; the changelist shows it.
  const rds = new RDSClient({
    endpoint: lab.aws!.endpoint,
    region: lab.aws!.region,
    credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' },
  });
  const d = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: replica.identifier }))).DBInstances?.[0];
  expect(d).toMatchObject({ DBInstanceClass: 'db.m6i.xlarge', DBInstanceStatus: 'available' });
  const [w] = await query<{ s: string }>(
    `postgres://postgres@${replica.address}:${String(replica.port)}/postgres`,
    'SELECT status AS s FROM pg_stat_wal_receiver',
  );
  expect(w?.s).toBe('streaming');
  await page.goto(`${url}/admin/instances?q=${replica.identifier}`);
  await expect(page.getByRole('row', { name: new RegExp(replica.identifier) })).toContainText('db.m6i.xlarge');
});
