// The path a person takes through the console, in Debian's Chromium against the built console
// over the lab fleet: sign in, filter, sort, page, select all matching, edit, delete, history.
import { type Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { readFileSync } from 'node:fs';
import { allInstances, changelistRows, e2eLab, submitSignIn } from './lab';
import { query } from '../lib/lab/postgres';
import { lookup, replaceRecordSet } from '@/lib/adapters/dns/rfc2136';
import { crash } from '../lib/lab/faults';
import { observeFor } from '../lib/testing/wait';

const lab = e2eLab();
const url = lab.console.url;

async function signIn(page: Page) {
  await page.goto(`${url}/admin/instances`);
  await expect(page).toHaveURL(/\/login/);
  await submitSignIn(page, lab.console.admin.username, lab.console.admin.password);
  await expect(page.getByTestId('current-user')).toHaveText(lab.console.admin.username);
}

const serversShown = async (page: Page) => (await changelistRows(page)).locator('td:nth-child(2) a').allTextContents();

test.describe.configure({ mode: 'serial' });

test('a wrong password is refused', async ({ page }) => {
  await page.goto(`${url}/login`);
  await submitSignIn(page, lab.console.admin.username, 'not-the-password');
  await expect(page.locator('.errornote')).toContainText('correct username and password');
  await page.goto(`${url}/`);
  await expect(page).toHaveURL(/\/login/);
});

test('before the page has started, the sign-in form cannot be sent: no password ever goes into a URL', async ({ browser }) => {
  // What a person who types fast on a slow page meets: the form's submit is JavaScript's; sent by
  // the browser itself, it would be a GET to /login with the password in the query string.
  const context = await browser.newContext({ javaScriptEnabled: false });
  try {
    const page = await context.newPage();
    await page.goto(`${url}/login`);
    await page.getByLabel('Username:', { exact: true }).fill(lab.console.admin.username);
    await page.getByLabel('Password:', { exact: true }).fill(lab.console.admin.password);
    await expect(page.getByRole('button', { name: 'Sign in' })).toBeDisabled();
    await page.getByLabel('Password:', { exact: true }).press('Enter');
    await expect(page).toHaveURL(`${url}/login`);
    expect(await page.locator('form.login-form').getAttribute('method')).toBe('post');
  } finally {
    await context.close();
  }
});

test('sign in, filter instances by herd and role, sort, page and select all matching', async ({ page }) => {
  // The fleet's, Patroni's and the RDS herd's (discovered by the worker): 21 + 2 in the lab.
  const all = await allInstances();
  await signIn(page);
  await page.goto(`${url}/`);
  await expect(page.locator('.totals')).toContainText(`${String(all)} instances`);

  await page.goto(`${url}/admin/instances`);
  await expect(page.getByTestId('selection-count')).toHaveText(`0 of ${String(all)} selected`);

  // The herd facet is a search box, not a link per herd.
  await page.getByPlaceholder('Find herd…').fill('orders');
  await page.getByRole('link', { name: 'staging/orders' }).click();
  await expect(page).toHaveURL(/herd=\d+/);
  await page.locator('[data-facet=role]').getByRole('link', { name: 'replica' }).click();
  await expect(page).toHaveURL(/role=replica/);
  const expected = lab.instances
    .filter((i) => i.environment === 'staging' && i.herd === 'orders' && i.role === 'replica')
    .map((i) => i.server)
    .sort();
  expect((await serversShown(page)).sort()).toEqual(expected);
  await expect(page.locator('[data-facet=role] li.selected')).toContainText('replica (2)');

  // The URL is the state: a fresh visit reproduces the view.
  const filtered = page.url();
  await page.goto('about:blank');
  await page.goto(filtered);
  expect((await serversShown(page)).sort()).toEqual(expected);

  // The default order is by server; clicking its header reverses it; then site goes first.
  await page.goto(`${url}/admin/instances`);
  await expect(page.getByRole('columnheader', { name: /^Server/ })).toContainText('▲1');
  await page
    .getByRole('columnheader', { name: /^Server/ })
    .getByRole('link', { name: 'Server', exact: true })
    .click();
  await expect(page).toHaveURL(/sort=-server/);
  await expect(page.getByRole('columnheader', { name: /^Server/ })).toContainText('▼1');
  let names = await serversShown(page);
  expect(names).toEqual([...names].sort().reverse());
  await page.getByRole('columnheader', { name: /^Site/ }).getByRole('link', { name: 'Site', exact: true }).click();
  await expect(page).toHaveURL(/sort=site%2C-server|sort=site,-server/);
  const rows = await page
    .locator('table.result-list tbody tr')
    .evaluateAll((trs) => trs.map((tr) => [tr.children[1]!.textContent, tr.children[5]!.textContent]));
  const sorted = [...rows].sort((a, b) => (a[1]! < b[1]! ? -1 : a[1]! > b[1]! ? 1 : a[0]! < b[0]! ? 1 : -1));
  expect(rows).toEqual(sorted);

  // Page size 10: three pages (the last with the rest).
  await page.getByRole('link', { name: '10', exact: true }).click();
  await expect(page).toHaveURL(/per=10/);
  await expect(page.locator('table.result-list tbody tr')).toHaveCount(10);
  // Each page read once the paginator marks it current (pages 1 and 2 both have ten rows).
  const current = page.locator('.paginator [aria-current=page]').first();
  await page.locator('.paginator').getByRole('link', { name: '3', exact: true }).click();
  await expect(current).toHaveText('3');
  await expect(page.locator('table.result-list tbody tr')).toHaveCount(all - 20);
  await page.locator('.paginator').getByRole('link', { name: '2', exact: true }).click();
  await expect(current).toHaveText('2');
  await expect(page.locator('table.result-list tbody tr')).toHaveCount(10);
  names = await serversShown(page);
  await page.locator('.paginator').getByRole('link', { name: '1', exact: true }).click();
  await expect(current).toHaveText('1');
  await expect(page.locator('table.result-list tbody tr')).toHaveCount(10);
  const firstPage = await serversShown(page);
  expect(firstPage.filter((n) => names.includes(n))).toEqual([]);

  // Select all on the page, then all matching across pages, and open the bulk delete confirmation.
  await page.getByLabel('Select all on this page').check();
  await expect(page.getByTestId('selection-count')).toHaveText(`10 of ${String(all)} selected`);
  await page.getByRole('button', { name: `Select all ${String(all)} instances` }).click();
  await expect(page.getByTestId('selection-count')).toHaveText(`${String(all)} of ${String(all)} selected`);
  await page.getByLabel('Action:').selectOption({ label: 'Delete selected instances' });
  await page.getByRole('button', { name: 'Go' }).click();
  await expect(page.getByRole('heading', { name: 'Are you sure?' })).toBeVisible();
  await expect(page.locator('.delete-summary')).toContainText(`instances: ${String(all)}`);
  await page.getByRole('link', { name: 'No, take me back' }).click();
  await expect(page).toHaveURL(/\/admin\/instances/);
  await expect(page.locator('table.result-list tbody tr')).toHaveCount(10);
});

test('edit a herd: a server-side error on the field, then a change that shows in its history', async ({ page }) => {
  await signIn(page);
  await page.goto(`${url}/admin/herds?q=billing`);
  await page
    .getByRole('row', { name: /staging/ })
    .getByRole('link', { name: 'billing' })
    .click();
  await expect(page.getByRole('heading', { name: 'Herd staging/billing' })).toBeVisible();
  await page.getByRole('link', { name: 'Change the herd' }).click();
  await expect(page.getByRole('heading', { name: 'Change herd' })).toBeVisible();

  // Unique within the environment: only the server knows; the error lands on the field.
  await page.getByLabel('Name:', { exact: true }).fill('orders');
  await page.getByRole('button', { name: 'Save and continue editing' }).click();
  await expect(page.locator('[data-field=name] .errorlist')).toHaveText('A herd with this name already exists in this environment.');

  // Client and server agree on the port range.
  await page.getByLabel('Name:', { exact: true }).fill('billing');
  await page.getByLabel('Default port:', { exact: true }).fill('70000');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.locator('[data-field=defaultPort] .errorlist')).toHaveText('At most 65535.');

  await page.getByLabel('Default port:', { exact: true }).fill('5432');
  await page.getByLabel('Description:', { exact: true }).fill('Payments <b>ledger</b> & "invoices"');
  await page.getByRole('button', { name: 'Save and continue editing' }).click();
  await expect(page.getByRole('status')).toContainText('was changed successfully');
  await expect(page.getByLabel('Description:', { exact: true })).toHaveValue('Payments <b>ledger</b> & "invoices"');

  await page.getByRole('link', { name: 'History' }).click();
  const row = page.locator('table.history tbody tr').first();
  await expect(row).toContainText(lab.console.admin.username);
  await expect(row).toContainText('inventory.update');
  await expect(row.locator('.changes')).toContainText('description: Lab herd billing in staging → Payments <b>ledger</b> & "invoices"');
  await expect(page.locator('b', { hasText: 'ledger' })).toHaveCount(0); // shown as text, never as markup
});

test('create a test environment with a herd, delete it through the confirmation page, see its history', async ({ page }) => {
  await signIn(page);
  await page.goto(`${url}/admin/environments/add`);
  await page.getByLabel('Name:', { exact: true }).fill('sandbox-e2e');
  await page.getByLabel('Description:', { exact: true }).fill('made by the browser test');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.getByRole('status')).toContainText('The environment “sandbox-e2e” was saved successfully.');

  await page.goto(`${url}/admin/herds/add`);
  await page.getByLabel('Environment:', { exact: true }).selectOption({ label: 'sandbox-e2e' });
  await page.getByLabel('Name:', { exact: true }).fill('scratch');
  await page.getByRole('button', { name: 'Save and add another' }).click();
  await expect(page.getByRole('status')).toContainText('The herd “sandbox-e2e/scratch” was added successfully.');

  await page.goto(`${url}/admin/environments?q=sandbox-e2e`);
  await page.getByRole('link', { name: 'sandbox-e2e' }).click();
  await expect(page).toHaveURL(/\/admin\/environments\/\d+$/);
  const changeUrl = page.url();
  await page.getByRole('link', { name: 'Delete' }).click();
  await expect(page.getByRole('heading', { name: 'Are you sure?' })).toBeVisible();
  await expect(page.locator('.deleted-objects')).toContainText('sandbox-e2e/scratch');
  await expect(page.locator('.delete-summary')).toContainText('herds: 1');
  await page.getByRole('button', { name: 'Yes, I’m sure' }).click();
  await expect(page.getByRole('status')).toContainText('Successfully deleted 1 environment.');
  await expect(page.getByRole('link', { name: 'sandbox-e2e' })).toHaveCount(0);

  await page.goto(changeUrl);
  await expect(page.getByRole('heading', { name: 'Not found' })).toBeVisible();
  await page.goto(`${changeUrl}/history`);
  const actions = await page.locator('table.history tbody tr td:nth-child(3)').allTextContents();
  expect(actions).toEqual(['inventory.delete', 'inventory.create']);
});

test('tick three instances, restart, confirm, and watch the operation succeed', async ({ page }) => {
  await signIn(page);
  await page.goto(`${url}/admin/instances?q=db-stg-billing`);
  const rows = page.locator('table.result-list tbody tr');
  await expect(rows).toHaveCount(3);
  for (const cb of await page.getByRole('checkbox', { name: /^Select db-stg-billing/ }).all()) await cb.check();
  await expect(page.getByTestId('selection-count')).toHaveText('3 of 3 selected');
  await page.getByLabel('Action:').selectOption({ label: 'Restart' });
  await page.getByRole('button', { name: 'Go' }).click();

  // The confirmation page: each target's plan, the warning for the primary, and the count to type.
  await expect(page.getByRole('heading', { name: 'Restart: 3 of 3 instances' })).toBeVisible();
  await expect(page.locator('tr[data-target^="db-stg-billing-1"]')).toContainText('clients lose their connections');
  await expect(page.locator('tr[data-target^="db-stg-billing-2"]')).toContainText('pg_ctl restart -m fast');
  await page.getByLabel('Confirmation').fill('3');
  await page.getByRole('button', { name: 'Restart 3 instances' }).click();

  await expect(page).toHaveURL(/\/operations\/\d+$/);
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 45_000 });
  await expect(page.getByTestId('target-status')).toHaveText(['succeeded', 'succeeded', 'succeeded']);
  await expect(page.locator('section.target').first()).toContainText('wait until restarted');
  await expect(page.locator('code.command').first()).toContainText('pg_ctl');
  // The timeline: a row per target, a bar per step, each as it ended; the herd's targets one after another.
  const timeline = page.getByTestId('timeline');
  await expect(timeline).toBeVisible();
  const opId = Number(/\/operations\/(\d+)$/.exec(page.url())?.[1]);
  const apiOp = (await (await page.request.get(`${url}/api/v1/operations/${opId}`)).json()) as {
    targets: { label: string; steps: { name: string; status: string }[] }[];
  };
  expect(apiOp.targets).toHaveLength(3);
  for (const t of apiOp.targets) {
    const bars = timeline.locator(`rect[data-target="${t.label}"][data-segment="step"]`);
    await expect(bars).toHaveCount(t.steps.length);
    expect(await bars.evaluateAll((rs) => rs.map((r) => [r.getAttribute('data-step'), r.getAttribute('data-status')]))).toEqual(
      t.steps.map((x) => [x.name, x.status]),
    );
  }
  // One herd, one lease: the second and third targets waited for the first (drawn as waiting before their first step).
  expect(await timeline.locator('rect[data-segment="waiting"]').count()).toBeGreaterThanOrEqual(2);
  await page.screenshot({ path: test.info().outputPath('operation-timeline.png'), fullPage: true });

  // It is listed with the other operations, filterable by status.
  await page.goto(`${url}/admin/operations?status=succeeded`);
  await expect(page.locator('table.result-list tbody tr').first()).toContainText('restart');
});

test('a rolling restart in waves chosen on the confirmation page, paused and resumed from the operation page', async ({ page }) => {
  await signIn(page);
  await page.goto(`${url}/admin/instances?q=db-stg-billing`);
  for (const cb of await page.getByRole('checkbox', { name: /^Select db-stg-billing/ }).all()) await cb.check();
  await page.getByLabel('Action:').selectOption({ label: 'Restart' });
  await page.getByRole('button', { name: 'Go' }).click();

  // Waves of one, a health gate of 5 s between waves: the page shows them before anything runs.
  await expect(page.getByRole('heading', { name: 'Restart: 3 of 3 instances' })).toBeVisible();
  await page.getByLabel('Wave size:').fill('1');
  await page.getByLabel('Health gate: soak (s):').fill('5');
  await page.getByLabel('pause after (s):').fill('60');
  await page.getByRole('button', { name: 'Show the waves' }).click();
  const waves = page.getByTestId('waves-plan');
  await expect(waves).toContainText('3 waves; then 1 at a time; between waves every herd touched stays healthy for 5 s');
  await expect(waves.locator('li')).toHaveCount(3);
  await expect(waves.locator('li[data-wave="1"]')).toContainText('db-stg-billing-1');
  await page.getByLabel('Confirmation').fill('3');
  await page.getByRole('button', { name: 'Restart 3 instances in 3 waves' }).click();

  // The operation page: wave 1 runs; pause it there.
  await expect(page).toHaveURL(/\/operations\/\d+$/);
  await expect(page.locator('tr[data-wave="1"] [data-testid="wave-status"]')).toHaveText(/running|soaking/);
  await page.getByRole('button', { name: 'Pause' }).click();
  await expect(page.getByTestId('paused')).toContainText(`paused by ${lab.console.admin.username}`);
  // Paused: wave 1's target may finish, nothing of wave 2 or 3 starts.
  await expect(page.locator('tr[data-wave="1"] td').nth(2)).toHaveText('1: 1 succeeded', { timeout: 30_000 });
  const opId = Number(/\/operations\/(\d+)$/.exec(page.url())![1]);
  const [wave1] = await query<{ ended: Date }>(
    lab.database.url,
    'SELECT max(s.finished_at) AS ended FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id WHERE t.operation_id = $1 AND t.wave = 1',
    [opId],
  );
  // Unpaused, wave 2 would start once wave 1 had soaked 5 s, at a round of the worker's conductor
  // (every second) after the one that began the soak: by 7 s after wave 1 ended. The worker is another
  // process and says nothing while it does nothing, so that window is watched.
  const heldBack = async () =>
    (
      await query<{ status: string; held: boolean }>(
        lab.database.url,
        'SELECT status, held FROM operation_targets WHERE operation_id = $1 AND wave > 1',
        [opId],
      )
    ).every((t) => t.status === 'queued' && t.held);
  await observeFor(wave1!.ended.getTime() + 7000 - Date.now(), 'waves 2 and 3 held while paused, past the soak and a round', heldBack);
  await page.reload();
  await expect(page.getByTestId('paused')).toBeVisible();
  await expect(page.locator('tr[data-wave="2"] [data-testid="wave-status"]')).toHaveText('pending');
  await expect(page.getByTestId('target-status')).toHaveText(['succeeded', 'queued', 'queued']);

  await page.getByRole('button', { name: 'Resume' }).click();
  await expect(page.getByTestId('paused')).toHaveCount(0);
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 60_000 });
  await expect(page.getByTestId('wave-status')).toHaveText(['passed', 'passed', 'ended']);
  await expect(page.getByTestId('target-status')).toHaveText(['succeeded', 'succeeded', 'succeeded']);
});

test('re-point a replica to a sibling replica chosen on the confirmation page, then back to the primary', async ({ page }) => {
  const [one, two, three] = lab.instances
    .filter((i) => i.environment === 'staging' && i.herd === 'orders')
    .sort((a, b) => a.server.localeCompare(b.server));
  const sender = async () =>
    (
      await query<{ host: string; port: number; status: string }>(
        three!.dsn,
        'SELECT sender_host AS host, sender_port AS port, status FROM pg_stat_wal_receiver',
      )
    )[0];
  const repoint = async (upstream: string | null, expected: string) => {
    await page.goto(`${url}/admin/instances?q=${three!.server}`);
    await page.getByRole('checkbox', { name: new RegExp(`^Select ${three!.server}`) }).check();
    await page.getByLabel('Action:').selectOption({ label: 'Re-point (remaster)' });
    await page.getByRole('button', { name: 'Go' }).click();
    await expect(page.getByLabel('New upstream:')).toHaveValue('');
    await expect(page.locator(`tr[data-target^="${three!.server}"]`)).toContainText(`${one!.address}:${one!.port}`);
    if (upstream) {
      const option = page.getByLabel('New upstream:').locator('option', { hasText: `${upstream}:` });
      await page.getByLabel('New upstream:').selectOption(await option.getAttribute('value'));
      await page.getByRole('button', { name: 'Update the plan' }).click();
      await expect(page.locator(`tr[data-target^="${three!.server}"]`)).toContainText('cascading replication');
    }
    await page.getByRole('button', { name: 'Re-point (remaster) 1 instance' }).click();
    await expect(page).toHaveURL(/\/operations\/\d+$/);
    await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 45_000 });
    await expect(page.locator('p.op-param')).toContainText(`New upstream: ${expected}`);
  };
  await signIn(page);
  await repoint(two!.server, `${two!.server}:${two!.port}`);
  expect(await sender()).toEqual({ host: two!.address, port: two!.port, status: 'streaming' });
  await repoint(null, 'the herd\u2019s primary');
  expect(await sender()).toEqual({ host: one!.address, port: one!.port, status: 'streaming' });
});

test('a herd\u2019s page shows its members as observed and whether its write name answers the primary; refresh DNS mends it', async ({
  page,
}) => {
  const members = lab.instances.filter((i) => i.environment === 'staging' && i.herd === 'billing');
  const primary = members.find((i) => i.role === 'primary')!;
  const replica = members.find((i) => i.role === 'replica')!;
  const dns = lab.dns!;
  const writeName = dns.herds.find((h) => h.environment === 'staging' && h.herd === 'billing')!.writeName;
  await replaceRecordSet({ host: dns.server, port: dns.port }, dns.zone, dns.key, {
    name: writeName,
    type: 'CNAME',
    ttl: 30,
    values: [replica.server],
  });

  await signIn(page);
  await page.goto(`${url}/admin/herds?q=billing`);
  await page
    .getByRole('row', { name: /staging/ })
    .getByRole('link', { name: 'billing' })
    .click();
  await expect(page.getByRole('heading', { name: 'Herd staging/billing' })).toBeVisible();
  await expect(page.locator(`tr[data-member="${primary.server}"] td[data-col=role]`)).toHaveText('primary');
  await expect(page.locator(`tr[data-member="${replica.server}"] td[data-col=upstream]`)).toHaveText(`${primary.server}:${primary.port}`);
  await expect(page.locator(`tr[data-dns="${writeName}"] td[data-col=answers]`)).toHaveText(replica.server);
  await expect(page.locator(`tr[data-dns="${writeName}"] td[data-col=ok]`)).toHaveText('no');

  await page.goto(`${url}/admin/herds?q=billing`);
  await page
    .getByRole('row', { name: /staging/ })
    .getByRole('checkbox')
    .check();
  await page.getByLabel('Action:').selectOption({ label: 'Refresh DNS' });
  await page.getByRole('button', { name: 'Go' }).click();
  await expect(page.getByRole('heading', { name: 'Refresh DNS: 1 of 1 herd' })).toBeVisible();
  await expect(page.locator('tr[data-target="staging/billing"]')).toContainText(`at ${primary.server}`);
  await page.getByRole('button', { name: 'Refresh DNS 1 herd' }).click();
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 30_000 });
  await expect(page.locator('code.command').last()).toContainText(`DNS UPDATE zone ${dns.zone}`);

  await page.goto(`${url}/admin/herds?q=billing`);
  await page
    .getByRole('row', { name: /staging/ })
    .getByRole('link', { name: 'billing' })
    .click();
  await expect(page.locator(`tr[data-dns="${writeName}"] td[data-col=ok]`)).toHaveText('yes');
  await expect(page.locator('ul.recent-operations')).toContainText('refresh-dns');
});

test('a server\u2019s page shows pgherd\u2019s public key for authorized_keys', async ({ page }) => {
  await signIn(page);
  await page.goto(`${url}/admin/servers?q=db-stg-orders-1`);
  await page.getByRole('link', { name: /db-stg-orders-1/ }).click();
  // The key of the server's environment (staging's, PGHERD_SSH_KEYS), not production's.
  const pub = readFileSync(`${lab.ssh!.environments.staging!.privateKeyPath}.pub`, 'utf8').split(' ')[1];
  await expect(page.getByTestId('public-key')).toContainText(pub!);
  // Its cloud identity, as EC2 discovery (the worker's pass at its start) found it in the lab's moto.
  const ec2 = lab.aws!.instances.find((i) => i.server.startsWith('db-stg-orders-1'))!;
  await expect(page.getByTestId('cloud-identity').locator('[data-fact="Instance id"]')).toHaveText(ec2.instanceId);
  await expect(page.getByTestId('cloud-identity').locator('[data-fact="Availability zone"]')).toHaveText(ec2.availabilityZone);
  await expect(page.getByTestId('cloud-unavailable')).toHaveCount(0);
});

test('the servers list: filtered by availability zone, and an EC2 discovery pass asked for with the button runs', async ({ page }) => {
  await signIn(page);
  await page.goto(`${url}/admin/servers`);
  await page.locator('[data-facet=zone]').getByRole('link', { name: 'eu-west-1b' }).click();
  await expect(page).toHaveURL(/zone=eu-west-1b/);
  // The EC2 instances there, and the RDS herd's DB instances RDS put there (discovered by the worker).
  await allInstances();
  const rdsWest = (
    await query<{ hostname: string }>(
      lab.database.url,
      "SELECT hostname FROM servers WHERE cloud_provider = 'rds' AND cloud_availability_zone = 'eu-west-1b'",
    )
  ).map((r) => r.hostname);
  const west = [...lab.aws!.instances.filter((i) => i.availabilityZone === 'eu-west-1b').map((i) => i.server), ...rdsWest];
  expect(rdsWest).not.toEqual([]);
  expect((await serversShown(page)).sort()).toEqual(west.sort());
  const panel = page.getByTestId('ec2-discovery');
  await panel.getByRole('button', { name: 'Discover EC2 instances now' }).click();
  await expect(panel.getByRole('status')).toContainText(/Discovery pass #\d+/);
  const id = /#(\d+)/.exec((await panel.getByRole('status').textContent()) ?? '')?.[1] ?? 'none';
  await expect(panel.locator(`[data-run="${id}"]`)).toHaveAttribute('data-status', 'done', { timeout: 15_000 });
  await expect(panel.locator(`[data-run="${id}"]`)).toContainText(`asked by ${lab.console.admin.username}`);
});

test('tick two replicas, Resize (EC2 or RDS) to at least 4 vCPU / 16 GiB: the ranked types and the cost, confirmed, watched to the end', async ({
  page,
}) => {
  const replicas = lab.instances.filter((i) => i.environment === 'staging' && i.herd === 'orders' && i.role === 'replica');
  await signIn(page);
  await page.goto(`${url}/admin/instances?q=db-stg-orders&role=replica`);
  for (const cb of await page.getByRole('checkbox', { name: /^Select db-stg-orders/ }).all()) await cb.check();
  await expect(page.getByTestId('selection-count')).toHaveText('2 of 2 selected');
  await page.getByLabel('Action:').selectOption({ label: 'Resize (EC2 or RDS)' });
  await page.getByRole('button', { name: 'Go' }).click();

  // No type asked for yet: the page asks for one, nothing is planned.
  await expect(page.getByTestId('params-needed')).toContainText('Resize (EC2 or RDS) needs its parameters');
  await page.getByLabel('At least vCPU').fill('4');
  await page.getByLabel('At least GiB').fill('16');
  await page.getByRole('button', { name: 'Update the plan' }).click();

  await expect(page.getByRole('heading', { name: 'Resize (EC2 or RDS): 2 of 2 instances' })).toBeVisible();
  for (const r of replicas) {
    const row = page.locator(`tr[data-target^="${r.server}"]`);
    await expect(row.locator('[data-fact="Type now"] dd')).toHaveText(/^m6i\.large: 2 vCPU, 8 GiB, \$0\.\d+\/h, \$\d+\.\d\d\/month$/);
    await expect(row.locator('[data-fact="Target type"] dd')).toHaveText(/^\S+: [4-9] vCPU, (1[6-9]|[2-9]\d) GiB, \$0\.\d+\/h/);
    // Ranked: the fallbacks cost no less than the target, and the original type is the last resort.
    await expect(row.locator('[data-fact="Fallbacks, in order"] dd')).toContainText('m6i.large again (the last resort)');
    await expect(row.locator('[data-fact="Cost change"] dd')).toHaveText(/^\+\$\d+\.\d\d\/month \(\+\$0\.\d+\/h\), with the target type$/);
  }
  const fallbacks = await page.locator('tr[data-target] [data-fact="Fallbacks, in order"] dd').first().textContent();
  const target = await page.locator('tr[data-target] [data-fact="Target type"] dd').first().textContent();
  const perHour = (line: string) => Number(/\$(\d+\.\d+)\/h/.exec(line)?.[1]);
  for (const f of (fallbacks ?? '').split('; ').slice(0, -1)) expect(perHour(f)).toBeGreaterThanOrEqual(perHour(target ?? ''));
  await expect(page.getByTestId('plan-cost')).toHaveText(
    /^Cost, in total: 2 targets: \$\d+\.\d\d\/month now, \$\d+\.\d\d\/month after \(\+\$\d+\.\d\d\/month, \+\$0\.\d+\/h\)$/,
  );

  await page.getByLabel('Confirmation').fill('2');
  await page.getByRole('button', { name: 'Resize (EC2 or RDS) 2 instances' }).click();
  await expect(page).toHaveURL(/\/operations\/\d+$/);
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 90_000 });
  await expect(page.getByTestId('target-status')).toHaveText(['succeeded', 'succeeded']);
  await expect(page.locator('section.target').first()).toContainText('EC2: new type and start');
  // Both replicas stream again.
  for (const r of replicas)
    expect((await query<{ s: string }>(r.dsn, 'SELECT status AS s FROM pg_stat_wal_receiver'))[0]?.s).toBe('streaming');
});

test('unknown ids and malformed parameters: a 404 page, and defaults instead of errors', async ({ page }) => {
  await signIn(page);
  const missing = await page.goto(`${url}/admin/herds/999999`);
  expect(missing?.status()).toBe(404);
  const nonsense = await page.goto(`${url}/admin/nonsense`);
  expect(nonsense?.status()).toBe(404);
  const bad = await page.goto(`${url}/admin/instances?role=overlord&sort=%27;drop&page=-3&per=abc&environment=x`);
  expect(bad?.status()).toBe(200);
  await expect(page.getByTestId('selection-count')).toHaveText(`0 of ${String(await allInstances())} selected`);
});

// These two change the lab's topology for good: they run last.
test('switchover of a herd behind PgBouncer from the herds changelist, to a replica chosen on the confirmation page', async ({ page }) => {
  const pooler = lab.pgbouncer.find((p) => p.environment === 'production' && p.herd === 'billing')!;
  const members = lab.instances.filter((i) => i.environment === 'production' && i.herd === 'billing');
  const old = members.find((i) => i.role === 'primary')!;
  const chosen = members.filter((i) => i.role === 'replica').sort((a, b) => b.server.localeCompare(a.server))[0];
  const writeName = lab.dns!.herds.find((h) => h.environment === 'production' && h.herd === 'billing')!.writeName;
  await query(pooler.dsn, 'CREATE TABLE e2e_switch (n int)');
  await query(pooler.dsn, 'INSERT INTO e2e_switch VALUES (1)');

  await signIn(page);
  await page.goto(`${url}/admin/herds?q=billing`);
  await page
    .getByRole('row', { name: /production/ })
    .getByRole('checkbox')
    .check();
  await page.getByLabel('Action:').selectOption({ label: 'Switchover' });
  await page.getByRole('button', { name: 'Go' }).click();
  const option = page.getByLabel('New primary:').locator('option', { hasText: `${chosen!.server}:` });
  await page.getByLabel('New primary:').selectOption(await option.getAttribute('value'));
  await page.getByRole('button', { name: 'Update the plan' }).click();
  const target = page.locator('tr[data-target="production/billing"]');
  await expect(target.locator('[data-fact="Old primary"] dd')).toHaveText(`${old.server}:${old.port}`);
  await expect(target.locator('[data-fact="New primary"] dd')).toContainText(`${chosen!.server}:${chosen!.port}`);
  await expect(target.locator(`[data-fact="DNS ${writeName}"] dd`)).toHaveText(`CNAME -> ${chosen!.server}, TTL 30 s`);
  await expect(target).toContainText(`PAUSE billing on PgBouncer ${pooler.server}:${pooler.port}`);
  // The herd drawn as it is and as the switchover will leave it.
  const label = (i: { server: string; port: number }) => `${i.server}:${i.port}`;
  const pair = page.locator('[data-diagrams="production/billing"]');
  const before = pair.getByTestId('topology-before');
  const after = pair.getByTestId('topology-after');
  await expect(before.locator(`g.member[data-member="${label(old)}"]`)).toHaveAttribute('data-role', 'primary');
  await expect(before.locator(`g.member[data-member="${label(old)}"]`)).toHaveAttribute(
    'data-dns',
    new RegExp(writeName.replace(/\./g, '\\.')),
  );
  for (const r of members.filter((i) => i.role === 'replica'))
    await expect(before.locator(`g.member[data-member="${label(r)}"]`)).toHaveAttribute('data-upstream', label(old));
  await expect(before.locator('g.pooler')).toHaveAttribute('data-points-at', label(old));
  await expect(after.locator(`g.member[data-member="${label(chosen!)}"]`)).toHaveAttribute('data-role', 'primary');
  await expect(after.locator(`g.member[data-member="${label(old)}"]`)).toHaveAttribute('data-upstream', label(chosen!));
  await expect(after.locator(`g.member[data-member="${label(chosen!)}"]`)).toHaveAttribute(
    'data-dns',
    new RegExp(writeName.replace(/\./g, '\\.')),
  );
  await expect(after.locator('g.pooler')).toHaveAttribute('data-points-at', label(chosen!));
  await page.screenshot({ path: test.info().outputPath('switchover-confirmation.png'), fullPage: true });
  await page.getByLabel('Confirmation').fill('production');
  await page.getByRole('button', { name: 'Switchover 1 herd' }).click();
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 60_000 });
  await expect(page.locator('[data-outcome]')).toHaveText(
    `${chosen!.server}:${chosen!.port} is the primary; ${old.server}:${old.port} streams from it; no committed transaction lost`,
  );

  // Through the pooler, the application now writes to the chosen replica, with the row from before.
  expect((await query<{ r: boolean }>(chosen!.dsn, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
  await query(pooler.dsn, 'INSERT INTO e2e_switch VALUES (2)');
  expect((await query<{ n: number }>(chosen!.dsn, 'SELECT count(*)::int AS n FROM e2e_switch'))[0]!.n).toBe(2);
  expect(await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'CNAME')).toEqual([chosen!.server]);
  expect((await query<{ h: string }>(old.dsn, 'SELECT sender_host AS h FROM pg_stat_wal_receiver'))[0]!.h).toBe(chosen!.address);
  // The herd's page shows the pooler where PgBouncer itself says it points.
  await page.goto(`${url}/admin/herds?q=billing`);
  await page
    .getByRole('row', { name: /production/ })
    .getByRole('link', { name: 'billing' })
    .click();
  await expect(page.getByTestId('poolers')).toContainText(`billing -> ${chosen!.address}:${chosen!.port}`);
  await expect(page.locator(`tr[data-member="${chosen!.server}"] td[data-col=role]`)).toHaveText('primary');
  // Its diagram: the new primary on top, every other member streaming from it, the write name and PgBouncer on it.
  const diagram = page.getByTestId('topology');
  await expect(diagram.locator(`g.member[data-member="${label(chosen!)}"]`)).toHaveAttribute('data-role', 'primary');
  for (const m of members.filter((i) => i.server !== chosen!.server))
    await expect(diagram.locator(`g.member[data-member="${label(m)}"]`)).toHaveAttribute('data-upstream', label(chosen!));
  await expect(diagram.locator(`g.member[data-member="${label(chosen!)}"]`)).toHaveAttribute(
    'data-dns',
    new RegExp(writeName.replace(/\./g, '\\.')),
  );
  await expect(diagram.locator('g.pooler')).toHaveAttribute('data-points-at', label(chosen!));
  await expect(diagram.locator('g.edge')).toHaveCount(members.length - 1);
  await page.screenshot({ path: test.info().outputPath('herd-after-switchover.png'), fullPage: true });
});

test('DR failover from the DR pairs list: the primary is gone, the confirmation says what may be lost, the write name follows', async ({
  page,
}) => {
  const members = lab.instances.filter((i) => i.environment === 'production' && i.herd === 'orders');
  const old = members.find((i) => i.role === 'primary')!;
  const writeName = lab.dns!.herds.find((h) => h.environment === 'production' && h.herd === 'orders')!.writeName;
  await crash(lab, old);

  await signIn(page);
  await page.goto(`${url}/admin/dr`);
  // Every herd of the lab: three in each environment, staging's ledger that Patroni runs, and staging's reports
  // that RDS runs (once the worker's discovery brought it in).
  await allInstances();
  await page.reload();
  await expect(page.locator('table.result-list tbody tr')).toHaveCount(8);
  await page.getByRole('complementary', { name: 'Filters' }).getByRole('link', { name: 'production', exact: true }).click();
  await expect(page.locator('table.result-list tbody tr')).toHaveCount(3);
  const row = page.getByRole('row', { name: /orders/ });
  await expect(row).toContainText(`${old.server}:${old.port}`);
  await row.getByRole('checkbox').check();
  await page.getByLabel('Action:').selectOption({ label: 'DR failover' });
  await page.getByRole('button', { name: 'Go' }).click();
  await expect(page.getByRole('heading', { name: 'DR failover: 1 of 1 herd' })).toBeVisible();
  const target = page.locator('tr[data-target="production/orders"]');
  // running, or stopped once the worker's refresher has seen it go; unreachable when its pass came
  // while the postmaster was going down (a connection accepted and dropped is not a refusal)
  await expect(target.locator('[data-fact="Old primary"] dd')).toHaveText(
    new RegExp(`^${old.server}:${old.port} \\((running|stopped|unreachable)\\)$`),
  );
  await expect(target.locator('[data-fact="Possible data loss"] dd')).toContainText('bytes of WAL');
  await expect(target.locator(`[data-fact="DNS ${writeName}"] dd`)).toContainText('TTL 30 s');
  await page.getByLabel('Confirmation').fill('production');
  await page.getByRole('button', { name: 'DR failover 1 herd' }).click();
  await expect(page.getByTestId('operation-status')).toHaveText('succeeded', { timeout: 60_000 });
  await expect(page.locator('[data-outcome]')).toContainText(`${old.server}:${old.port} is fenced; possible data loss:`);

  const answer = await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'CNAME');
  const neu = members.find((m) => m.server === answer[0])!;
  expect(neu.server).not.toBe(old.server);
  expect((await query<{ r: boolean }>(neu.dsn, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
  // The inventory shows the old primary fenced (pgherd refuses to start it until it is rebuilt).
  await page.goto(`${url}/admin/instances?q=${old.server}`);
  await expect(page.locator('table.result-list tbody tr').first()).toContainText('fenced');
});

test('directory users sign in with their LDAP password; one in no bound group is told why; a wrong password is refused', async ({
  page,
}) => {
  const ldap = lab.ldap!;
  const signInAs = async (username: string, password: string) => {
    await page.goto(`${url}/login`);
    await submitSignIn(page, username, password);
  };
  const bob = ldap.users.find((u) => u.username === 'bob')!;
  await signInAs('bob', bob.password);
  await expect(page.getByTestId('current-user')).toHaveText('bob');
  await page.context().clearCookies();
  await signInAs('dave', ldap.users.find((u) => u.username === 'dave')!.password);
  await expect(page.locator('.errornote')).toContainText('Your account has no role in pgherd');
  await signInAs('bob', 'not-his-password');
  await expect(page.locator('.errornote')).toContainText('correct username and password');
});
