// A staging admin, signed in against the lab's slapd, aims staging's rows at production: a server at
// production's primary's address, then a staging replica's row pointed at production's primary's data
// directory (the lab's hosts share one machine, as hosts can) and Rebuild. Each is refused, and
// production's primary runs on untouched.
import { expect, test } from './fixtures';
import { and, eq } from 'drizzle-orm';
import { createDb } from '../db/client';
import { environments, instances, servers } from '../db/schema';
import { query } from '../lib/lab/postgres';
import { e2eLab, signInAs } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const erin = lab.ldap!.users.find((u) => u.username === 'erin')!;
const prodPrimary = lab.instances.find((i) => i.environment === 'production' && i.herd === 'identity' && i.role === 'primary')!;
const facts = async () =>
  (
    await query<{ rec: boolean; started: string }>(
      prodPrimary.dsn,
      'SELECT pg_is_in_recovery() AS rec, pg_postmaster_start_time()::text AS started',
    )
  )[0]!;

test.describe.configure({ mode: 'serial' });

test("a staging admin cannot aim staging's rows at production's primary: no server at its address, no rebuild of its data directory", async ({
  page,
}) => {
  const before = await facts();
  expect(before.rec).toBe(false);
  await signInAs(page, url, 'erin', erin.password);

  // A staging server at production's primary's address: refused on the field, nothing saved.
  await page.goto(`${url}/admin/servers/add`);
  await page.getByLabel('Host name:', { exact: true }).fill('shadow.staging.lab.internal');
  await page.getByLabel('Environment:', { exact: true }).selectOption({ label: 'staging' });
  await page.getByLabel('Address:', { exact: true }).fill(prodPrimary.address);
  await page.getByLabel('SSH port:', { exact: true }).fill(String(lab.ssh!.port));
  await page.getByLabel('SSH user:', { exact: true }).fill(lab.osUser);
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.locator('[data-field=address] .errorlist')).toContainText(
    `${prodPrimary.address} is the address of ${prodPrimary.server} (production): a host belongs to one environment.`,
  );

  // A staging replica's row pointed at production's primary's data directory, then Rebuild.
  const { db, pool } = createDb(lab.database.url, 1);
  try {
    expect(await db.$count(servers, eq(servers.hostname, 'shadow.staging.lab.internal'))).toBe(0);
    const [replica] = await db
      .select({ id: instances.id, server: servers.hostname, dataDirectory: instances.dataDirectory })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .innerJoin(environments, eq(environments.id, instances.environmentId))
      .where(and(eq(environments.name, 'staging'), eq(instances.role, 'replica'), eq(instances.state, 'running')))
      .orderBy(instances.id)
      .limit(1);
    await page.goto(`${url}/admin/instances/${replica!.id}`);
    await page.getByLabel('Data directory:', { exact: true }).fill(prodPrimary.dataDirectory);
    await page.getByRole('button', { name: 'Save and continue editing' }).click();
    await expect(page.getByRole('status')).toContainText('was changed successfully');
    try {
      await page.goto(`${url}/admin/instances?q=${replica!.server}`);
      await page
        .getByRole('checkbox', { name: `Select ${replica!.server}` })
        .first()
        .check();
      await page.getByLabel('Action:').selectOption({ label: 'Rebuild from the primary' });
      await page.getByRole('button', { name: 'Go' }).click();
      await page.getByRole('button', { name: /^Rebuild from the primary 1 instance/ }).click();
      await expect(page.getByTestId('operation-status')).toHaveText('failed', { timeout: 45_000 });
      await expect(page.locator('body')).toContainText(`not the recorded ${prodPrimary.dataDirectory}`);
    } finally {
      await db.update(instances).set({ dataDirectory: replica!.dataDirectory }).where(eq(instances.id, replica!.id));
    }
  } finally {
    await pool.end();
  }
  // Production's primary: the same postmaster, still the primary.
  expect(await facts()).toEqual(before);
});
