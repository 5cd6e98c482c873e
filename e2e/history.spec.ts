// Lag history in the browser: a replica whose replay is paused while its primary writes shows a rising
// line on the herd's chart; the restart that resumed it (replay pauses do not survive a restart) is
// marked on the time axis, and the line comes back down.
import { createDb } from '../db/client';
import { useLabSettings } from '../lib/lab/lab';
import { dsn, query } from '../lib/lab/postgres';
import { sampleLag } from '@/lib/fleet/lag-history';
import { refreshFleet } from '@/lib/fleet/refresher';
import { e2eLab, settledOperation, signInAs } from './lab';
import { expect, test } from './fixtures';

const lab = e2eLab();
const url = lab.console.url;
const operate = { authorization: `Bearer ${lab.console.apiToken!}` };

test('a paused replica rises on its herd\u2019s lag chart; the restart that resumed it is marked', async ({ page, request }) => {
  test.setTimeout(120_000);
  useLabSettings(lab);
  const primary = lab.instances.find((i) => i.environment === 'staging' && i.herd === 'billing' && i.role === 'primary')!;
  const replica = lab.instances.filter((i) => i.environment === 'staging' && i.herd === 'billing' && i.role === 'replica').at(-1)!;
  const listed = await (await request.get(`${url}/api/v1/instances?q=${encodeURIComponent(replica.server)}`, { headers: operate })).json();
  const { id: replicaId, herdId } = listed.items[0] as { id: number; herdId: number };
  const { db, pool } = createDb(lab.database.url, 2);
  // What the worker does every minute, now: the refresher's pass, then a sample.
  const observeAndSample = async () => {
    await refreshFleet(db);
    await sampleLag(db);
  };
  try {
    await query(dsn(replica), 'SELECT pg_wal_replay_pause()');
    await query(dsn(primary), 'CREATE TABLE IF NOT EXISTS lag_chart_test (x text)');
    const pausedAt = Date.now();
    for (let i = 0; i < 4; i++) {
      await query(dsn(primary), "INSERT INTO lag_chart_test SELECT repeat('x', 1000) FROM generate_series(1, 2000)");
      // (Each sample is its own row: the hour's view reads them as they are, one a millisecond apart or a minute.)
      await observeAndSample();
    }
    const history = async () =>
      (await (await request.get(`${url}/api/v1/herds/${herdId}/lag?range=hour`, { headers: operate })).json()) as {
        series: { instanceId: number; points: { t: number; bytes: number | null }[] }[];
        operations: { id: number; action: string; from: number; to: number | null }[];
      };
    const paused = (await history()).series.find((s) => s.instanceId === replicaId)!.points.filter((p) => p.t >= pausedAt);
    expect(paused.length).toBeGreaterThanOrEqual(4);
    const bytes = paused.map((p) => p.bytes ?? 0);
    for (let i = 1; i < bytes.length; i++)
      expect(bytes[i]!, `sample ${i} of ${JSON.stringify(bytes)}`).toBeGreaterThanOrEqual(bytes[i - 1]!);
    expect(bytes.at(-1)! - bytes[0]!).toBeGreaterThan(4_000_000);

    // The restart resumes replay: the operation, then the lag back down.
    const plan = await (
      await request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'restart', instanceIds: [replicaId] } })
    ).json();
    const submitted = await request.post(`${url}/api/v1/operations`, {
      headers: operate,
      data: { action: 'restart', instanceIds: [replicaId], digest: plan.digest, confirm: plan.confirm ?? '' },
    });
    const opId = (await submitted.json()).id as number;
    expect((await settledOperation(request, url, operate, opId)).status).toBe('succeeded');
    let lagNow = Infinity;
    for (let i = 0; i < 30 && lagNow > 100_000; i++) {
      await observeAndSample();
      const [row] = await query<{ lag: string | null }>(lab.database.url, 'SELECT lag_bytes::text AS lag FROM instances WHERE id = $1', [
        replicaId,
      ]);
      lagNow = Number(row?.lag ?? Infinity);
      if (lagNow > 100_000) await new Promise((r) => setTimeout(r, 500));
    }
    expect(lagNow).toBeLessThanOrEqual(100_000);
    const after = await history();
    const op = after.operations.find((o) => o.id === opId)!;
    expect(op).toMatchObject({ action: 'restart' });
    const points = after.series.find((s) => s.instanceId === replicaId)!.points;
    expect(points.at(-1)!.bytes!).toBeLessThan(Math.max(...bytes));

    // The page: the chart draws the members' lines and marks the restart; the samples table says the same.
    await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
    await page.goto(`${url}/herds/${herdId}`);
    const chart = page.getByTestId('lag-chart');
    // The paused replica's line (a replica that kept up draws a flat line along the axis: no height, not "visible").
    await expect(chart.locator(`.lag-line-${replicaId} path`).first()).toBeVisible();
    expect(await chart.locator('.lag-line').count()).toBeGreaterThanOrEqual(2);
    // Recharts draws the areas, and their labels in a layer of their own.
    await expect(chart.locator('.recharts-reference-area').filter({ visible: true }).first()).toBeVisible();
    await expect(chart.locator('svg text', { hasText: `#${opId} restart` })).toHaveCount(1);
    await chart.getByText(/^Samples/).click();
    const rows = chart.locator(`[data-testid="lag-samples"] tr[data-instance="${replica.server}:${replica.port}"]`);
    const shown = await rows.evaluateAll((trs): [number, number][] =>
      trs.map((tr) => [Number(tr.getAttribute('data-t')), Number(tr.getAttribute('data-bytes') || 0)]),
    );
    expect(Math.max(...shown.filter(([t]) => t >= pausedAt).map(([, b]) => b))).toBe(Math.max(...bytes));
    await expect(chart.locator(`[data-testid="lag-operations"] [data-operation="${opId}"]`)).toContainText('restart');
    await page.screenshot({ path: test.info().outputPath('herd-page.png'), fullPage: true });
    // The day and week views draw from 5- and 30-minute buckets.
    await chart.getByRole('button', { name: 'Last week' }).click();
    await expect(chart).toHaveAttribute('data-range', 'week');
    // A line of few points draws its dots (one bucket alone would draw nothing).
    await expect(chart.locator(`.lag-line-${replicaId} path, .lag-dot-${replicaId}`).filter({ visible: true }).first()).toBeVisible();
    const weekRows = chart.locator('[data-testid="lag-samples"] tr[data-t]');
    await expect(weekRows.first()).toBeAttached();
    // The week's samples replace the day's once they have arrived: waited for, not read at the click.
    await expect
      .poll(async () =>
        (await weekRows.evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-t'))))).every((t) => t % 1_800_000 === 0),
      )
      .toBe(true);
  } finally {
    await query(dsn(replica), 'SELECT pg_wal_replay_resume()').catch(() => {});
    await query(dsn(primary), 'DROP TABLE IF EXISTS lag_chart_test').catch(() => {});
    await pool.end();
  }
});

test('the dashboard draws the fleet by state and role over the last day, and operations by outcome over the week', async ({
  page,
  request,
}) => {
  const { db, pool } = createDb(lab.database.url, 1);
  try {
    await sampleLag(db);
  } finally {
    await pool.end();
  }
  const instances = await (await request.get(`${url}/api/v1/instances?per=100`, { headers: operate })).json();
  // Succeeded today, read before and after the page (the worker may end one of its own meanwhile).
  const succeededToday = async () =>
    (
      await query<{ n: number }>(
        lab.database.url,
        "SELECT count(*)::int AS n FROM operations WHERE status = 'succeeded' AND finished_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
      )
    )[0]!.n;
  const before = await succeededToday();
  await signInAs(page, url, lab.console.admin.username, lab.console.admin.password);
  await page.goto(url);
  const byState = page.getByTestId('fleet-by-state');
  // A fresh lab has a half hour or two of samples: the areas' points are drawn as dots too.
  // (A state no instance is in draws an area of no height: not "visible", hence the filter.)
  await expect(byState.locator('.recharts-area path, .recharts-area-dots circle').filter({ visible: true }).first()).toBeVisible();
  const lastState = JSON.parse((await byState.getAttribute('data-last')) ?? '{}') as Record<string, number>;
  expect(Object.values(lastState).reduce((a, b) => a + b, 0)).toBe(instances.total);
  const lastRole = JSON.parse((await page.getByTestId('fleet-by-role').getAttribute('data-last')) ?? '{}') as Record<string, number>;
  expect(lastRole.primary).toBe(instances.items.filter((i: { role: string }) => i.role === 'primary').length);
  const outcomes = page.getByTestId('operations-by-outcome');
  const days = JSON.parse((await outcomes.getAttribute('data-days')) ?? '[]') as { day: string; byStatus: Record<string, number> }[];
  expect(days).toHaveLength(7);
  expect(days.at(-1)!.day).toBe(new Date().toISOString().slice(0, 10));
  const shown = days.at(-1)!.byStatus.succeeded ?? 0;
  expect(shown).toBeGreaterThanOrEqual(Math.max(1, before));
  expect(shown).toBeLessThanOrEqual(await succeededToday());
  await expect(outcomes.locator('.recharts-bar-rectangle').filter({ visible: true }).first()).toBeVisible();
  await page.screenshot({ path: test.info().outputPath('dashboard.png'), fullPage: true });
});
