// GET /metrics on the console and on the worker, scraped as Prometheus would: refused without the
// token, and counting what really happened (a bulk restart's targets and steps, agent reports, the
// lab's replicas' lag).
import { type APIRequestContext } from '@playwright/test';
import { expect, test } from './fixtures';
import { e2eLab, settledOperation } from './lab';

const lab = e2eLab();
const url = lab.console.url;
const operate = { authorization: `Bearer ${lab.console.apiToken!}` };
const metrics = lab.metrics!;
const scrapeAuth = { authorization: `Bearer ${metrics.token}` };

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of Prometheus's text format (labels' values unescaped). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples named `name` whose labels include `labels`. */
const total = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

async function scrape(request: APIRequestContext, at: string): Promise<Sample[]> {
  const res = await request.get(at, { headers: scrapeAuth });
  expect(res.status()).toBe(200);
  expect(res.headers()['content-type']).toContain('text/plain');
  return parse(await res.text());
}

test('refused without the token, or with another, on the console and on the worker', async ({ request }) => {
  for (const at of [metrics.web!, ...metrics.workers]) {
    const none = await request.get(at);
    expect(none.status(), at).toBe(401);
    expect((await none.json()).error).toMatch(/metrics token is required/);
    expect((await request.get(at, { headers: { authorization: `Bearer ${'x'.repeat(48)}` } })).status(), at).toBe(401);
    expect((await request.get(at, { headers: operate })).status(), `${at}: an API token is not the metrics token`).toBe(401);
    expect((await request.post(at, { headers: scrapeAuth })).status(), at).toBe(405);
  }
});

test("the console's gauges say what the inventory says: instances, each replica's lag, queues, workers", async ({ request }) => {
  const s = await scrape(request, metrics.web!);
  const list = await (await request.get(`${url}/api/v1/instances?per=100`, { headers: operate })).json();
  expect(total(s, 'pgherd_instances')).toBe(list.total);
  expect(total(s, 'pgherd_instances', { environment: 'staging', role: 'primary' })).toBe(
    list.items.filter((i: { environment: string; role: string }) => i.environment === 'staging' && i.role === 'primary').length,
  );
  // A gauge per replica whose lag is known, labelled with its environment, herd and host:port.
  const replicas = (
    list.items as { environment: string; herd: string; server: string; port: number; role: string; lagBytes: number | null }[]
  ).filter((i) => i.role === 'replica' && i.lagBytes !== null);
  expect(replicas.length).toBeGreaterThan(0);
  for (const r of replicas) {
    const labels = { environment: r.environment, herd: r.herd, pg_instance: `${r.server}:${r.port}` };
    expect(
      s.some((x) => x.name === 'pgherd_replication_lag_bytes' && Object.entries(labels).every(([k, v]) => x.labels[k] === v)),
      JSON.stringify(labels),
    ).toBe(true);
  }
  expect(total(s, 'pgherd_workers', { state: 'alive' })).toBeGreaterThanOrEqual(1);
  expect(total(s, 'pgherd_inventory_up')).toBe(1);
  expect(total(s, 'pgherd_queue_up', { queue: 'pgherd-targets' }), JSON.stringify(s.filter((x) => x.name.startsWith('pgherd_queue')))).toBe(
    1,
  );
  expect(s.some((x) => x.name === 'pgherd_queue_jobs' && x.labels.queue === 'pgherd-targets' && x.labels.state === 'delayed')).toBe(true);
  expect(s.some((x) => x.name === 'pgherd_herds_two_primaries')).toBe(true);
  expect(s.some((x) => x.name === 'pgherd_dns_records_drifted')).toBe(true);
  // The process's own (prom-client's defaults).
  expect(total(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  expect(total(s, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
});

test("a bulk restart moves the worker's counters by its number of targets, and its steps' histogram by its steps", async ({ request }) => {
  const list = await (await request.get(`${url}/api/v1/instances?q=db-stg-&role=replica&per=100`, { headers: operate })).json();
  const ids = (list.items as { id: number; herd: string }[]).filter((i) => i.herd !== 'ledger').map((i) => i.id);
  expect(ids.length).toBeGreaterThanOrEqual(4);
  const [worker] = metrics.workers;
  const before = await scrape(request, worker!);
  const plan = await (
    await request.post(`${url}/api/v1/operations/plan`, { headers: operate, data: { action: 'restart', instanceIds: ids } })
  ).json();
  const submitted = await request.post(`${url}/api/v1/operations`, {
    headers: operate,
    data: { action: 'restart', instanceIds: ids, digest: plan.digest, confirm: plan.confirm ?? '' },
  });
  expect(submitted.status()).toBe(202);
  const op = await settledOperation(request, url, operate, (await submitted.json()).id);
  expect(op.status).toBe('succeeded');
  const steps = op.targets.reduce((n, t) => n + t.steps.length, 0);
  const after = await scrape(request, worker!);
  const moved = (name: string, labels: Record<string, string>) => total(after, name, labels) - total(before, name, labels);
  expect(moved('pgherd_operation_targets_total', { action: 'restart', outcome: 'succeeded' })).toBe(ids.length);
  expect(moved('pgherd_operation_targets_total', { action: 'restart', outcome: 'failed' })).toBe(0);
  expect(moved('pgherd_step_duration_seconds_count', { action: 'restart' })).toBe(steps);
  expect(moved('pgherd_step_duration_seconds_sum', { action: 'restart' })).toBeGreaterThan(0);
  // Step labels carry no host names: one series per kind of step however many instances ran it.
  const labels = after
    .filter((x) => x.name === 'pgherd_step_duration_seconds_count' && x.labels.action === 'restart')
    .map((x) => x.labels.step!);
  expect(labels.length).toBeGreaterThan(0);
  expect(labels.filter((l) => /lab\.internal/.test(l))).toEqual([]);
  expect(labels.length).toBeLessThan(steps);
});

test('agent reports are counted by result on the console', async ({ request }) => {
  const before = await scrape(request, metrics.web!);
  for (let i = 0; i < 3; i++) {
    const res = await request.post(`${url}/api/agent/v1/report`, { headers: { authorization: `Bearer pgha_${'x'.repeat(43)}` }, data: {} });
    expect(res.status()).toBe(401);
  }
  const after = await scrape(request, metrics.web!);
  expect(
    total(after, 'pgherd_ingest_reports_total', { result: 'refused' }) -
      total(before, 'pgherd_ingest_reports_total', { result: 'refused' }),
  ).toBe(3);
  expect(
    total(after, 'pgherd_ingest_duration_seconds_count', { result: 'refused' }) -
      total(before, 'pgherd_ingest_duration_seconds_count', { result: 'refused' }),
  ).toBe(3);
});
