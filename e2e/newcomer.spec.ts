// What a newcomer meets first, in the browser at 1280 px: the top bar's groups on one line, each a
// menu; the dashboard's index of every group and its links, as Django's admin index; a herd whose host
// and DNS names run past 60 characters drawn with no label over another and no name cut; a herd's
// recent operations, each once. The screenshots are the pictures docs/console.md shows.
import path from 'node:path';
import { type Page } from '@playwright/test';
import { replaceRecordSet } from '@/lib/adapters/dns/rfc2136';
import { query } from '../lib/lab/postgres';
import { e2eLab, settledOperation, signInAs } from './lab';
import { expect, test } from './fixtures';

const lab = e2eLab();
const url = lab.console.url;
const operate = { authorization: `Bearer ${lab.console.apiToken!}` };
const PICTURES = path.join(__dirname, '..', 'docs', 'pictures');
const carolPassword = lab.ldap!.users.find((u) => u.username === 'carol')!.password;

const asAdmin = (page: Page) => signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
const topBar = (page: Page) => page.getByRole('navigation', { name: 'Console' });
const GROUPS = ['Fleet', 'Operations and rules', 'DNS and poolers', 'Backups', 'People and access'];

test.use({ viewport: { width: 1280, height: 800 } });
test.describe.configure({ mode: 'serial' });

test('the top bar: one line at 1280 px, a menu a group, closed by Escape and by following a link', async ({ page }) => {
  await asAdmin(page);
  await page.goto(`${url}/`);
  const bar = topBar(page);
  for (const name of GROUPS) await expect(bar.getByRole('button', { name })).toBeVisible();
  await expect(bar.getByRole('link', { name: 'API', exact: true })).toBeVisible();
  // A group of one is its link (API); Settings is a menu of its pages.
  await bar.getByRole('button', { name: 'Settings' }).click();
  await expect(bar.locator('#nav-settings').getByRole('link')).toHaveText([
    'Parameter groups',
    'Object sets',
    'Approval policies',
    'Auto-replace policies',
  ]);
  await page.keyboard.press('Escape');
  await expect(bar.locator('#nav-settings')).toBeHidden();
  // One line: the brand, every group and the user's tools share a row, and nothing wraps.
  const tops = await page
    .locator('header.site-header')
    .evaluate((h) =>
      [h.querySelector('.brand'), ...h.querySelectorAll('.top-nav > ul > li'), h.querySelector('.user-tools')].map(
        (e) => e!.getBoundingClientRect().top,
      ),
    );
  expect(Math.max(...tops) - Math.min(...tops), JSON.stringify(tops)).toBeLessThanOrEqual(8);
  expect((await page.locator('header.site-header').boundingBox())!.height).toBeLessThanOrEqual(60);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280);

  // A menu opens under its button; one at a time.
  await bar.getByRole('button', { name: 'Fleet' }).click();
  const fleet = bar.locator('#nav-fleet');
  await expect(fleet.getByRole('link')).toHaveText(['Herds', 'Instances', 'Servers', 'Sites', 'Environments', 'DR pairs']);
  await page.screenshot({ path: path.join(PICTURES, 'top-bar.png'), clip: { x: 0, y: 0, width: 1280, height: 320 } });
  await bar.getByRole('button', { name: 'People and access' }).click();
  await expect(fleet).toBeHidden();
  await expect(bar.locator('#nav-access').getByRole('link')).toHaveText(['Role bindings', 'API tokens', 'Audit entries']);
  await page.keyboard.press('Escape');
  await expect(bar.locator('#nav-access')).toBeHidden();
  await expect(bar.getByRole('button', { name: 'People and access' })).toBeFocused();

  // Following a link closes the menu; the group of the page is marked.
  await bar.getByRole('button', { name: 'Operations and rules' }).click();
  await bar.getByRole('link', { name: 'Rules', exact: true }).click();
  await expect(page).toHaveURL(/\/rules$/);
  await expect(bar.locator('#nav-operations')).toBeHidden();
  await expect(bar.getByRole('button', { name: 'Operations and rules' })).toHaveClass(/current/);
});

test('the dashboard lists every group with its links, as the top bar has them, and Add where one may add', async ({ page }) => {
  await asAdmin(page);
  await page.goto(`${url}/`);
  const index = page.getByTestId('app-index');
  await expect(index.locator('caption')).toHaveText([...GROUPS.slice(0, 4), 'Settings', ...GROUPS.slice(4), 'API']);
  const hrefs = async (where: ReturnType<Page['locator']>, selector: string) =>
    (await where.locator(selector).evaluateAll((as) => as.map((a) => a.getAttribute('href')))).sort();
  // The same links in both (the top bar's menus hold them while closed), the single link of a group of one too.
  expect(await hrefs(index, 'th a')).toEqual(await hrefs(page.locator('.top-nav'), 'a'));
  await expect(index.locator('[data-group=fleet] th a')).toHaveText(['Herds', 'Instances', 'Servers', 'Sites', 'Environments', 'DR pairs']);
  await expect(index.getByRole('link', { name: 'Add herd' })).toHaveAttribute('href', '/admin/herds/add');
  await expect(index.locator('[data-group=operations] .addlink')).toHaveCount(0);
  await page.screenshot({ path: path.join(PICTURES, 'dashboard-index.png') });
  await index.getByRole('link', { name: 'DNS records' }).click();
  await expect(page).toHaveURL(/\/admin\/dns-records$/);

  // A viewer everywhere: what needs admin stays out of both, and there is nothing to add.
  await signInAs(page, url, 'carol', carolPassword);
  await page.goto(`${url}/`);
  await expect(index.locator('[data-group=access] th a')).toHaveText(['API tokens', 'Audit entries']);
  await expect(index.locator('.addlink')).toHaveCount(0);
  await expect(topBar(page)).not.toContainText('Role bindings');
  expect(await hrefs(index, 'th a')).toEqual(await hrefs(page.locator('.top-nav'), 'a'));
});

/** A herd of staging's orders members under names of 60 characters and more, and a read name of as many for each. */
async function longNamedHerd(): Promise<{ herdId: number; labels: string[]; remove: () => Promise<void> }> {
  const db = lab.database.url;
  const dns = lab.dns!;
  const members = lab.instances.filter((i) => i.environment === 'staging' && i.herd === 'orders');
  const long = (server: string) => `${server}.eu-west-1.compute.internal.newcomer-long-names.example.com`;
  const readName = (server: string) => `${server}-reporting-read-endpoint-for-newcomers.staging.db.${dns.zone}`;
  const [herd] = await query<{ id: number }>(
    db,
    `INSERT INTO herds (environment_id, name, description, default_port, pg_version, automation)
     SELECT environment_id, 'newcomer-long-names', 'Long names, for the diagram', default_port, pg_version, 'maintenance'
     FROM herds WHERE name = 'orders' AND environment_id = (SELECT id FROM environments WHERE name = 'staging')
     RETURNING id`,
  );
  const herdId = herd!.id;
  const remove = async () => {
    await query(db, 'DELETE FROM herds WHERE id = $1', [herdId]);
    await query(db, 'DELETE FROM servers WHERE hostname = ANY($1)', [members.map((m) => long(m.server))]);
    for (const m of members)
      await replaceRecordSet({ host: dns.server, port: dns.port }, dns.zone, dns.key, {
        name: readName(m.server),
        type: 'CNAME',
        ttl: 30,
        values: [],
      });
  };
  try {
    for (const m of members) {
      const [server] = await query<{ id: number }>(
        db,
        `INSERT INTO servers (hostname, environment_id, address, site, ssh_port, ssh_user, ssh_host_key_fingerprint)
         SELECT $1, environment_id, address, site, ssh_port, ssh_user, ssh_host_key_fingerprint FROM servers WHERE hostname = $2
         RETURNING id`,
        [long(m.server), m.server],
      );
      const [instance] = await query<{ id: string }>(
        db,
        `INSERT INTO instances (herd_id, server_id, port, data_directory, pg_version, role, state)
         SELECT $1, $2, i.port, i.data_directory, i.pg_version, i.role, i.state
         FROM instances i JOIN servers s ON s.id = i.server_id WHERE s.hostname = $3 AND i.port = $4
         RETURNING id`,
        [herdId, server!.id, m.server, m.port],
      );
      await query(
        db,
        `INSERT INTO dns_records (herd_id, name, type, zone, provider, match, match_instance_id, ttl)
         VALUES ($1, $2, 'CNAME', $3, 'rfc2136', 'instance', $4, 30)`,
        [herdId, readName(m.server), dns.zone, instance!.id],
      );
      await replaceRecordSet({ host: dns.server, port: dns.port }, dns.zone, dns.key, {
        name: readName(m.server),
        type: 'CNAME',
        ttl: 30,
        values: [long(m.server)],
      });
    }
  } catch (err) {
    await remove();
    throw err;
  }
  return { herdId, labels: members.map((m) => `${long(m.server)}:${m.port}`), remove };
}

test('a herd with 60-character names: no label of its diagram overlaps another, no host name is cut', async ({ page }) => {
  const herd = await longNamedHerd();
  try {
    expect(Math.min(...herd.labels.map((l) => l.length))).toBeGreaterThanOrEqual(60);
    await asAdmin(page);
    await page.goto(`${url}/herds/${herd.herdId}`);
    const diagram = page.getByTestId('topology');
    // As observed: a primary, two replicas streaming from it, and each member's read name over it.
    await expect(diagram.locator('g.member')).toHaveCount(3);
    await expect(diagram.locator('g.member[data-role=replica]:not([data-upstream=""])')).toHaveCount(2);
    await expect(diagram.locator('text.label-dns')).toHaveCount(3);
    await expect(diagram.locator('text.label-lag')).toHaveCount(2);

    const drawn = await diagram.locator('svg').evaluate((svg) => {
      const rect = (b: DOMRect) => ({ x: b.x, y: b.y, width: b.width, height: b.height });
      return {
        labels: [...svg.querySelectorAll<SVGTextElement>('text')].map((t) => ({
          kind: t.getAttribute('class') ?? '',
          text: t.textContent,
          ...rect(t.getBBox()),
        })),
        members: [...svg.querySelectorAll<SVGGElement>('g.member')].map((g) => ({
          label: g.dataset.member ?? '',
          box: rect(g.querySelector('rect')!.getBBox()),
          inside: [...g.querySelectorAll<SVGTextElement>('text:not(.label-dns)')].map((t) => ({
            text: t.textContent,
            ...rect(t.getBBox()),
          })),
          host: g.querySelector('text.label-host')!.textContent,
        })),
      };
    });
    type Rect = { x: number; y: number; width: number; height: number };
    const meet = (a: Rect, b: Rect) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    const overlaps = drawn.labels.flatMap((a, i) =>
      drawn.labels
        .slice(i + 1)
        .flatMap((b) => (meet(a, b) ? [`"${a.text}" ${JSON.stringify(a)} meets "${b.text}" ${JSON.stringify(b)}`] : [])),
    );
    expect(overlaps).toEqual([]);
    expect(drawn.members.map((m) => m.label).sort()).toEqual([...herd.labels].sort());
    for (const m of drawn.members) {
      // The whole host name, in its box, and every line of the box's text inside it.
      expect(m.host).toBe(m.label);
      for (const t of m.inside) {
        expect(t.x, `${t.text} in ${m.label}`).toBeGreaterThanOrEqual(m.box.x);
        expect(t.x + t.width, `${t.text} in ${m.label}`).toBeLessThanOrEqual(m.box.x + m.box.width);
        expect(t.y + t.height, `${t.text} in ${m.label}`).toBeLessThanOrEqual(m.box.y + m.box.height);
      }
    }
    await diagram.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(PICTURES, 'herd-long-names.png') });
  } finally {
    await herd.remove();
  }
});

test('a herd\u2019s recent operations list an operation once, however many of its members it ran on', async ({ page, request }) => {
  const herdId = (
    await query<{ id: number }>(
      lab.database.url,
      "SELECT h.id FROM herds h JOIN environments e ON e.id = h.environment_id WHERE e.name = 'staging' AND h.name = 'orders'",
    )
  )[0]!.id;
  const ids = (await query<{ id: string }>(lab.database.url, 'SELECT id FROM instances WHERE herd_id = $1 ORDER BY id', [herdId])).map(
    (r) => Number(r.id),
  );
  expect(ids.length).toBeGreaterThan(1);
  // A reload changes nothing a later test sees, and runs on every member: one operation, a target a member.
  const plan = (await (
    await request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'reload', instanceIds: ids } })
  ).json()) as { digest: string; confirm?: string };
  const submitted = await request.post(`${url}/api/v1/operations`, {
    headers: operate,
    data: { action: 'reload', instanceIds: ids, digest: plan.digest, confirm: plan.confirm ?? '' },
  });
  expect(submitted.status()).toBe(202);
  const opId = ((await submitted.json()) as { id: number }).id;
  const done = await settledOperation(request, url, operate, opId);
  expect(done.targets).toHaveLength(ids.length);

  await asAdmin(page);
  await page.goto(`${url}/herds/${herdId}`);
  const recent = page.locator('ul.recent-operations > li');
  await expect(recent.filter({ has: page.getByRole('link', { name: `#${opId} reload` }) })).toHaveCount(1);
  const listed = await recent.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  expect(new Set(listed).size).toBe(listed.length);
});
