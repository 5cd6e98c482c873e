// Roles per environment, as people meet them in the console and the API: directory users from the
// lab's slapd (dba-staging: operator in staging, viewer in production; readonly: viewer everywhere),
// API tokens created on the tokens page, and the audit log that records all of it. Last, a staging
// admin aims staging's rows at production: a server at production's primary's address, then a staging
// replica's row pointed at production's primary's data directory (the lab's hosts share one machine,
// as hosts can) and Rebuild. Each is refused, and production's primary runs on untouched.
import { type Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { and, eq } from 'drizzle-orm';
import { createDb } from '../db/client';
import { environments, instances, servers } from '../db/schema';
import { query } from '../lib/lab/postgres';
import { allInstances, changelistRows, e2eLab, signInAs as signInWith, submitSignIn } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const password = (u: string) => lab.ldap!.users.find((x) => x.username === u)!.password;

const signInAs = (page: Page, username: string, pass = password(username)) => signInWith(page, url, username, pass);

async function instanceId(hostname: string): Promise<number> {
  const { db, pool } = createDb(lab.database.url, 1);
  try {
    const [r] = await db
      .select({ id: instances.id })
      .from(instances)
      .innerJoin(servers, eq(instances.serverId, servers.id))
      .where(and(eq(servers.hostname, hostname)));
    return r!.id;
  } finally {
    await pool.end();
  }
}

const stagingTarget = lab.instances.find((i) => i.environment === 'staging' && i.herd === 'billing' && i.role === 'replica')!;
const productionTarget = lab.instances.find((i) => i.environment === 'production' && i.herd === 'billing' && i.role === 'replica')!;
const startedAt = async (dsn: string) => (await query<{ t: string }>(dsn, 'SELECT pg_postmaster_start_time()::text AS t'))[0]!.t;

test.describe.configure({ mode: 'serial' });

test('a staging DBA restarts a staging instance; production shows no control and refuses forged requests with 403', async ({ page }) => {
  await signInAs(page, 'bob');
  // The list offers the operator actions bob has somewhere, and nothing that needs admin.
  await page.goto(`${url}/admin/instances?q=db-stg-billing`);
  const options = await page.getByLabel('Action:').locator('option').allTextContents();
  // Operator actions only: no promote (admin), no delete (admin).
  expect(options).toEqual([
    'Start',
    'Stop (fast)',
    'Restart',
    'Reload configuration',
    'Re-point (remaster)',
    'Rebuild from the primary',
    'Resize (EC2 or RDS)',
    'Power off (EC2 or RDS)',
    'Power on (EC2 or RDS)',
    // Risks' fixes: planned for the session, the size, the certificate their parameters name (docs/risks.md).
    'End session',
    'Grow data volume (EBS)',
    'Rotate server certificate',
  ]);
  await expect(page.getByRole('checkbox', { name: /^Select db-stg-billing/ })).toHaveCount(3);
  // Production instances are listed (bob may look) but have no checkbox.
  await page.goto(`${url}/admin/instances?q=db-prod-billing`);
  await expect(page.locator('table.result-list tbody tr')).toHaveCount(3);
  await expect(page.getByRole('checkbox', { name: /^Select db-prod/ })).toHaveCount(0);

  // The restart, for real: the instance's postmaster starts again.
  const before = await startedAt(stagingTarget.dsn);
  await page.goto(`${url}/admin/instances?q=${stagingTarget.server}`);
  await page.getByRole('checkbox', { name: `Select ${stagingTarget.server}` }).check();
  await page.getByLabel('Action:').selectOption({ label: 'Restart' });
  await page.getByRole('button', { name: 'Go' }).click();
  await page.getByRole('button', { name: 'Restart 1 instance' }).click();
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 45_000 });
  expect(await startedAt(stagingTarget.dsn)).not.toBe(before);

  // A production instance's page: read-only, no delete.
  const prodId = await instanceId(productionTarget.server);
  await page.goto(`${url}/admin/instances/${prodId}`);
  await expect(page.locator('[data-read-only]')).toContainText('changing it needs the operator role here');
  await expect(page.getByRole('button', { name: 'Save' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Delete' })).toHaveCount(0);

  // Forged: the confirmation page for a production instance, typed by hand.
  const forged = await page.goto(`${url}/operations/new?action=restart&ids=${prodId}`);
  expect(forged!.status()).toBe(403);
  await expect(page.locator('[data-forbidden]')).toContainText('Restart needs the operator role in production (you have viewer there)');
  // The API with bob's session: a write from another site is refused before anything else...
  const crossSite = await page.request.post(`${url}/api/v1/operations/plan`, {
    data: { action: 'restart', instanceIds: [prodId] },
    headers: { origin: 'https://evil.example' },
  });
  expect(crossSite.status()).toBe(403);
  expect((await crossSite.json()).error).toMatch(/cross-site request refused/);
  // ...and from the console's own origin, the role decides.
  const sameSite = await page.request.post(`${url}/api/v1/operations/plan`, {
    data: { action: 'restart', instanceIds: [prodId] },
    headers: { origin: url },
  });
  expect(sameSite.status()).toBe(403);
  expect((await sameSite.json()).error).toBe('Restart needs the operator role in production (you have viewer there)');
  // Admin pages are not for bob.
  const bindings = await page.goto(`${url}/admin/role-bindings`);
  expect(bindings!.status()).toBe(403);
  await expect(page.getByRole('navigation', { name: 'Console' })).not.toContainText('Role bindings');
});

test('API tokens: created on the tokens page and shown once, scoped, used as their user, revoked', async ({ page, request }) => {
  await signInAs(page, 'bob');
  await page.goto(`${url}/account/tokens`);
  const create = async (name: string, scope: 'read' | 'operate') => {
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Scope').selectOption(scope);
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = (await page.getByTestId('new-token').textContent())!;
    expect(token).toMatch(/^pgh_[A-Za-z0-9_-]{43}$/);
    return token;
  };
  const operate = await create('ci deploys', 'operate');
  // Shown once: after a reload only its first characters are listed.
  await page.reload();
  await expect(page.getByTestId('new-token')).toHaveCount(0);
  await expect(page.locator(`tr[data-token="${operate.slice(0, 10)}"]`)).toContainText('active');
  await expect(page.getByTestId('tokens')).not.toContainText(operate);

  const auth = (t: string) => ({ authorization: `Bearer ${t}` });
  const staging = await instanceId(stagingTarget.server);
  const production = await instanceId(productionTarget.server);
  const ok = await request.post(`${url}/api/v1/operations/plan`, {
    headers: auth(operate),
    data: { action: 'reload', instanceIds: [staging] },
  });
  expect(ok.status()).toBe(200);
  const no = await request.post(`${url}/api/v1/operations/plan`, {
    headers: auth(operate),
    data: { action: 'reload', instanceIds: [production] },
  });
  expect(no.status()).toBe(403);
  expect((await no.json()).error).toBe('Reload configuration needs the operator role in production (you have viewer there)');
  // The list the token sees is bob's: staging and production, nothing else exists in the lab.
  expect((await (await request.get(`${url}/api/v1/instances?per=500`, { headers: auth(operate) })).json()).total).toBe(
    await allInstances(),
  );

  const read = await create('dashboards', 'read');
  expect((await request.get(`${url}/api/v1/instances`, { headers: auth(read) })).status()).toBe(200);
  const readPlan = await request.post(`${url}/api/v1/operations/plan`, {
    headers: auth(read),
    data: { action: 'reload', instanceIds: [staging] },
  });
  expect(readPlan.status()).toBe(403);
  expect((await readPlan.json()).error).toMatch(/read-only/);
  const readRun = await request.post(`${url}/api/v1/operations`, {
    headers: auth(read),
    data: { action: 'reload', instanceIds: [staging], digest: '0'.repeat(32), confirm: '' },
  });
  expect(readRun.status()).toBe(403);

  // Last use is recorded; revoking from the page makes the token a 401 at once.
  await page.reload();
  await expect(page.locator(`tr[data-token="${operate.slice(0, 10)}"] td`).nth(6)).not.toHaveText('never');
  await page
    .locator(`tr[data-token="${operate.slice(0, 10)}"]`)
    .getByRole('button', { name: 'Revoke' })
    .click();
  await expect(page.locator(`tr[data-token="${operate.slice(0, 10)}"]`)).toContainText('revoked');
  expect((await request.get(`${url}/api/v1/instances`, { headers: auth(operate) })).status()).toBe(401);
});

test('a read-only auditor sees everything and no control; the audit log and an instance\u2019s history show what happened', async ({
  page,
}) => {
  await signInAs(page, 'carol');
  await page.goto(`${url}/admin/instances`);
  await expect(page.locator('table.result-list tbody tr')).toHaveCount(await allInstances());
  await expect(page.getByLabel('Action:')).toHaveCount(0);
  await expect(page.getByRole('checkbox')).toHaveCount(0);
  await page.goto(`${url}/admin/herds`);
  await expect(page.getByLabel('Action:')).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Add herd' })).toHaveCount(0);
  const forged = await page.goto(`${url}/operations/new?action=reload&ids=${await instanceId(stagingTarget.server)}`);
  expect(forged!.status()).toBe(403);
  await expect(page.locator('[data-forbidden]')).toContainText(
    'Reload configuration needs the operator role in staging (you have viewer there)',
  );

  // The audit log, filtered on bob: his sign-in, the restart, the refusals, his tokens.
  await page.goto(`${url}/admin/audit?user=bob`);
  const actions = await (await changelistRows(page)).locator('td:nth-child(4)').allTextContents();
  for (const a of ['auth.sign_in', 'operation.restart', 'access.denied', 'token.create', 'token.revoke']) expect(actions).toContain(a);
  await expect(page.locator('table.result-list tbody tr', { hasText: 'access.denied' }).first()).toContainText(
    'operator role in production',
  );
  // Filters narrow it: only the denied requests.
  await page.locator('[data-facet=action]').getByRole('link', { name: 'access.denied' }).click();
  await expect(page).toHaveURL(/action=access\.denied/);
  await expect(page.locator('[data-facet=action] li.selected')).toContainText('access.denied');
  await expect(page.locator('table.result-list tbody tr td:nth-child(4)')).toHaveText(
    Array(await (await changelistRows(page)).count()).fill('access.denied'),
  );
  // Entries cannot be changed from the console: no add, no change page, no delete.
  await expect(page.getByRole('link', { name: /Add audit/ })).toHaveCount(0);
  expect((await page.goto(`${url}/admin/audit/1`))!.status()).toBe(404);
  expect((await page.goto(`${url}/admin/audit/delete?ids=1`))!.status()).toBe(404);

  // The staging instance's history page lists the restart bob ran.
  await page.goto(`${url}/admin/instances/${await instanceId(stagingTarget.server)}/history`);
  await expect(page.locator('table.history tbody tr', { hasText: 'operation.restart' }).first()).toContainText('bob');
});

test('an admin binds a role in the console: a directory user in no bound group can then sign in, and not once it is deleted', async ({
  page,
}) => {
  await page.goto(`${url}/login`);
  await submitSignIn(page, 'dave', password('dave'));
  await expect(page.locator('.errornote')).toContainText('Your account has no role in pgherd');

  await signInAs(page, lab.console.admin.username, lab.console.admin.password);
  await page.goto(`${url}/admin/role-bindings/add`);
  await page.getByLabel('Role:').selectOption('viewer');
  await page.getByLabel('Bound to:').selectOption('user');
  await page.getByLabel('Group DN or username:').fill('dave');
  await page.getByLabel('Environment:').selectOption({ label: 'staging' });
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.locator('.messagelist.success')).toContainText('viewer for user dave in staging');

  await signInAs(page, 'dave');
  await page.goto(`${url}/admin/instances`);
  const headers = await page.locator('table.result-list thead th').allTextContents();
  const envs = await (
    await changelistRows(page)
  )
    .locator(`td:nth-child(${headers.findIndex((h) => h.startsWith('Environment')) + 1})`)
    .allTextContents();
  expect(envs.length).toBeGreaterThan(0);
  expect(new Set(envs)).toEqual(new Set(['staging']));
  await page.goto(`${url}/admin/audit?action=access.create`);
  // dave sees staging's audit entries only: the binding made for him is one of them.
  await expect(page.locator('table.result-list tbody')).toContainText('dave');

  // The admin deletes the binding: dave is refused again (the other tests expect him without a role).
  await signInAs(page, lab.console.admin.username, lab.console.admin.password);
  await page.goto(`${url}/admin/role-bindings?q=dave`);
  await page.getByRole('checkbox', { name: 'Select dave' }).check();
  await page.getByLabel('Action:').selectOption({ label: 'Delete selected role bindings' });
  await page.getByRole('button', { name: 'Go' }).click();
  await page.getByRole('button', { name: 'Yes, I\u2019m sure' }).click();
  await expect(page.getByRole('status')).toContainText('Successfully deleted 1 role binding.');
  await page.context().clearCookies();
  await page.goto(`${url}/login`);
  await submitSignIn(page, 'dave', password('dave'));
  await expect(page.locator('.errornote')).toContainText('Your account has no role in pgherd');
});

const erin = lab.ldap!.users.find((u) => u.username === 'erin')!;
const prodPrimary = lab.instances.find((i) => i.environment === 'production' && i.herd === 'identity' && i.role === 'primary')!;
const facts = async () =>
  (
    await query<{ rec: boolean; started: string }>(
      prodPrimary.dsn,
      'SELECT pg_is_in_recovery() AS rec, pg_postmaster_start_time()::text AS started',
    )
  )[0]!;

test("a staging admin cannot aim staging's rows at production's primary: no server at its address, no rebuild of its data directory", async ({
  page,
}) => {
  const before = await facts();
  expect(before.rec).toBe(false);
  await signInAs(page, 'erin', erin.password);

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
