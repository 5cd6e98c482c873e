// The discovery agent end to end: an admin creates a server's agent token on its page, the bundled
// agent reports that server's instance to the built console, and the ingest endpoint refuses what it
// must (no token, a rotated one, another server's facts, bad reports) without writing anything.
import { type Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { createDb } from '../db/client';
import { environments, instances, servers } from '../db/schema';
import { createAgentToken } from '@/lib/features/agents/ingest';
import { restoredCopy } from '../lib/lab/faults';
import { PG_SUPERUSER, query } from '../lib/lab/postgres';
import { E2E_LAB_FILE, E2E_SUBNETS, e2eLab, signInAs } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const ROOT = path.resolve(__dirname, '..');
const target = lab.instances.find((i) => i.environment === 'staging' && i.herd === 'orders' && i.role === 'replica')!;

const signIn = (page: Page) => signInAs(page, url, lab.console.admin.username, lab.console.admin.password);

async function rowsOf(hostname: string) {
  const { db, pool } = createDb(lab.database.url, 1);
  try {
    const [s] = await db.select().from(servers).where(eq(servers.hostname, hostname));
    return { server: s, instances: await db.select().from(instances).where(eq(instances.serverId, s!.id)) };
  } finally {
    await pool.end();
  }
}

test.describe.configure({ mode: 'serial' });

let token = '';
const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-agent-e2e-'));
const runAgent = (args: string[], tokenValue = token, hostname = target.server, socketDirectory = target.socketDirectory) => {
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, `${tokenValue}\n`);
  chmodSync(tokenFile, 0o600);
  const cfg = path.join(dir, 'agent.json');
  writeFileSync(
    cfg,
    JSON.stringify({ server: url, hostname, tokenFile, lsclusters: false, user: PG_SUPERUSER, socketDirectories: [socketDirectory] }),
  );
  return spawnSync(process.execPath, [path.join(ROOT, 'dist', 'pgherd-agent.js'), '--config', cfg, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
};

test('an admin creates a server\u2019s agent token on its page; the agent reports the server\u2019s instance', async ({ page }) => {
  execFileSync('npm', ['run', '--silent', 'build:agent'], { cwd: ROOT, stdio: 'inherit' });
  const before = await rowsOf(target.server);
  expect(before.server!.lastSeenAt).toBeNull();
  await signIn(page);
  await page.goto(`${url}/admin/servers/${before.server!.id}`);
  await page.getByRole('button', { name: 'Create an agent token' }).click();
  token = (await page.getByTestId('agent-token').textContent())!;
  expect(token).toMatch(/^pgha_[A-Za-z0-9_-]{43}$/);

  const res = runAgent(['--once']);
  expect(res.status, res.stderr).toBe(0);
  expect(res.stdout).toContain('reported 1 instance(s)');
  const after = await rowsOf(target.server);
  expect(after.server!.lastSeenAt).not.toBeNull();
  // The same herd (matched by system identifier), the same role and upstream the lab set up.
  expect(after.instances).toHaveLength(1);
  expect(after.instances[0]).toMatchObject({
    herdId: before.instances[0]!.herdId,
    role: 'replica',
    state: 'running',
    upstreamInstanceId: before.instances[0]!.upstreamInstanceId,
  });
  expect(after.instances[0]!.lastObservedAt!.getTime()).toBeGreaterThan(Date.now() - 60_000);
  await page.reload();
  await expect(page.locator('.agent-token')).not.toContainText('Last report: never');
});

test('the ingest endpoint refuses whole, writing nothing: no token, a rotated token, bad JSON, wrong types, too large, another host\u2019s report', async ({
  request,
  page,
}) => {
  const post = (data: string, auth?: string) =>
    request.post(`${url}/api/agent/v1/report`, {
      data: Buffer.from(data),
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
    });
  const report = JSON.parse(runAgent(['--dry-run']).stdout);
  // What a report writes and the refresh never does: the server's last report and host facts, and each
  // instance's row without what the refresh and the settings pass also record (the worker's chores may
  // look at the instance meanwhile: the settings pass reads it when the refresh saw its configuration loaded).
  const observedToo = new Set([
    'settingsSnapshotId',
    'settingsLoadedAt',
    'settingsDrift',
    'settingsDriftSince',
    'settingsWantedDigest',
    'settingsStatus',
    'lsn',
    'lagBytes',
    'lagSeconds',
    'lastObservedAt',
    'updatedAt',
    'timeline',
    'state',
    'role',
    'observedRole',
    'serverVersionNum',
    'confLoadedAt',
    'pendingRestart',
  ]);
  const snapshot = async () => {
    const r = await rowsOf(target.server);
    return JSON.stringify({
      server: { lastSeenAt: r.server?.lastSeenAt, loadAverage: r.server?.loadAverage, memoryMb: r.server?.memoryMb, cpus: r.server?.cpus },
      instances: r.instances.map((i) => Object.fromEntries(Object.entries(i).filter(([k]) => !observedToo.has(k)))),
    });
  };
  const was = await snapshot();
  expect((await post(JSON.stringify(report))).status()).toBe(401);
  expect((await post('{"format":1,', token)).status()).toBe(400);
  const wrong = await post(JSON.stringify({ ...report, instances: [{ ...report.instances[0], port: 'five' }] }), token);
  expect(wrong.status()).toBe(422);
  expect((await wrong.json()).details).toEqual([{ path: 'instances.0.port', message: expect.stringContaining('number') }]);
  expect((await post(JSON.stringify({ ...report, agentVersion: 'x'.repeat(300_000) }), token)).status()).toBe(413);
  expect(await snapshot()).toBe(was);

  // Rotating on the page makes the old token a 401 at once.
  await signIn(page);
  await page.goto(`${url}/admin/servers/${(await rowsOf(target.server)).server!.id}`);
  await page.getByRole('button', { name: 'Rotate the agent token' }).click();
  const rotated = (await page.getByTestId('agent-token').textContent())!;
  expect((await post(JSON.stringify(report), token)).status()).toBe(401);
  expect(runAgent(['--once'], token).status).toBe(4);
  expect(runAgent(['--once'], rotated).status).toBe(0);

  // The token copied to another host: that host's report is refused, and the server's row is untouched.
  const other = lab.instances.find((i) => i.server !== target.server)!;
  const seen = (await rowsOf(target.server)).server!.lastSeenAt;
  const was2 = await snapshot();
  const crossed = runAgent(['--once'], rotated, other.server);
  expect(crossed.status).toBe(4);
  expect(crossed.stderr).toContain(`this token belongs to ${target.server}, and the report comes from ${other.server}`);
  expect(await snapshot()).toBe(was2);
  expect((await rowsOf(target.server)).server!.lastSeenAt).toEqual(seen);
});

test('a restored copy of a herd\u2019s primary, started on its own and reported by its agent, shows as a second primary on the dashboard and the herd page', async ({
  page,
}) => {
  const primary = lab.instances.find((i) => i.environment === target.environment && i.herd === target.herd && i.role === 'primary')!;
  const copyHost = 'db-restored.lab.internal';
  const copyAddress = `${E2E_SUBNETS.fleet}.240`;
  const copy = await restoredCopy(lab, E2E_LAB_FILE, primary, 'restored-orders', copyAddress);
  const { db, pool } = createDb(lab.database.url, 1);
  try {
    // A real split brain: the copy shares the herd's system identifier and is not in recovery.
    const facts = 'SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid, pg_is_in_recovery() AS rec';
    const [mine] = await query<{ sysid: string; rec: boolean }>(
      `postgres://${PG_SUPERUSER}@${copyAddress}:${copy.node.port}/postgres`,
      facts,
    );
    const [real] = await query<{ sysid: string; rec: boolean }>(primary.dsn, facts);
    expect(mine).toEqual({ sysid: real!.sysid, rec: false });

    // The host is registered in staging with an agent token; its agent reports what runs there.
    const [staging] = await db.select().from(environments).where(eq(environments.name, target.environment));
    const [srv] = await db
      .insert(servers)
      .values({ hostname: copyHost, environmentId: staging!.id, address: copyAddress, site: 'lab' })
      .returning();
    const copyToken = await createAgentToken(db, srv!.id, { id: null, username: 'e2e' });
    const res = runAgent(['--once'], copyToken, copyHost, copy.node.socketDirectory);
    expect(res.status, res.stderr).toBe(0);
    const [row] = await db.select().from(instances).where(eq(instances.serverId, srv!.id));
    expect(row).toMatchObject({ role: 'primary', state: 'running', herdId: (await rowsOf(primary.server)).instances[0]!.herdId });

    await signIn(page);
    await page.goto(`${url}/`);
    const two = page.getByTestId('fleet-health').locator('[data-health="two-primaries"]');
    await expect(two).toContainText(`${target.environment}/${target.herd}: 2 instances run as primaries`);
    await expect(two).toContainText(`${primary.server}:${primary.port}`);
    await expect(two).toContainText(`${copyHost}:${copy.node.port}`);
    // The herd page says it twice: as the agents report it, and as the members answer now.
    await two.getByRole('link', { name: `${target.environment}/${target.herd}` }).click();
    await expect(page.getByTestId('fleet-health').locator('[data-health="two-primaries"]')).toContainText(`${copyHost}:${copy.node.port}`);
    await expect(page.getByText('2 members answer as primaries')).toBeVisible();

    // The copy is stopped; its agent's next report says so and the dashboard is well again.
    await copy.remove();
    const after = runAgent(['--once'], copyToken, copyHost, copy.node.socketDirectory);
    expect(after.status, after.stderr).toBe(0);
    expect((await db.select().from(instances).where(eq(instances.serverId, srv!.id)))[0]!.state).toBe('stopped');
    await page.goto(`${url}/`);
    await expect(page.getByTestId('fleet-health')).toBeVisible();
    await expect(page.locator('[data-health="two-primaries"]')).toHaveCount(0);
  } finally {
    await copy.remove();
    // The lab's inventory as the later tests expect it.
    await db.delete(servers).where(eq(servers.hostname, copyHost));
    await pool.end();
  }
});

test('strings in a report are data: HTML in a data directory is stored as sent and shown as text on the instance\u2019s page and history', async ({
  page,
  request,
}) => {
  const { db, pool } = createDb(lab.database.url, 1);
  const host = 'db-odd.lab.internal';
  try {
    const [staging] = await db.select().from(environments).where(eq(environments.name, target.environment));
    const [srv] = await db
      .insert(servers)
      .values({ hostname: host, environmentId: staging!.id, address: `${E2E_SUBNETS.fleet}.238`, site: 'lab' })
      .returning();
    const oddToken = await createAgentToken(db, srv!.id, { id: null, username: 'e2e' });
    const [sysid] = await query<{ s: string }>(target.dsn, 'SELECT system_identifier::text AS s FROM pg_control_system()');
    const odd = `/srv/<img src=x onerror="window.__pwned=1">'; DROP TABLE instances; --`;
    const report = {
      format: 1,
      agentVersion: 'e2e',
      hostname: host,
      observedAt: new Date().toISOString(),
      intervalSeconds: 60,
      instances: [
        {
          port: 5999,
          dataDirectory: odd,
          state: 'running',
          majorVersion: 15,
          systemIdentifier: sysid!.s,
          inRecovery: true,
          timeline: 1,
          receivedLsn: '0/1',
          replayedLsn: '0/1',
          upstream: null,
          replicas: [],
          pendingRestart: [],
        },
      ],
    };
    const res = await request.post(`${url}/api/agent/v1/report`, {
      data: Buffer.from(JSON.stringify(report)),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${oddToken}` },
    });
    expect(res.status(), await res.text()).toBe(200);
    const [row] = await db.select().from(instances).where(eq(instances.serverId, srv!.id));
    expect(row!.dataDirectory).toBe(odd);

    await signIn(page);
    await page.goto(`${url}/admin/instances/${row!.id}`);
    await expect(page.getByLabel('Data directory')).toHaveValue(odd);
    await page.goto(`${url}/admin/instances/${row!.id}/history`);
    await expect(page.getByText(odd, { exact: false }).first()).toBeVisible();
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  } finally {
    await db.delete(servers).where(eq(servers.hostname, host));
    await pool.end();
  }
});
