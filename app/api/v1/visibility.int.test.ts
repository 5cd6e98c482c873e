// What a user with a role in staging only may read through the API (and the functions the console's
// pages draw from): no production blackout, window or environment name, no EC2 discovery findings, no
// parameter or note of a mixed operation that names a production target; and what no caller may send:
// a body past the cap to a route that takes none. And what its requester may still read: their own
// operation once the herd it targeted is deleted.
import { and, eq } from 'drizzle-orm';
import { NextRequest } from 'next/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blackouts,
  discoveryRuns,
  environments,
  herds,
  instances,
  maintenanceWindows,
  operations,
  operationSteps,
  operationTargets,
  operationWaves,
  roleBindings,
  ruleRuns,
  servers,
  users,
} from '@/db/schema';
import { changeList } from '@/lib/features/admin/list-query';
import { parseListParams } from '@/lib/features/admin/list-params';
import { getAdmin } from '@/lib/features/admin/registry';
import { loadAccess, visibleEnvironments, type Access } from '@/lib/engine/access';
import { createApiToken } from '@/lib/features/auth/api-tokens';
import { latestDiscoveryRuns, runView } from '@/lib/features/discovery/discovery-runs';
import { seedLabFleet } from '@/lib/lab/seed';
import { WITHHELD } from '@/lib/engine/operation-withheld';
import { operationView } from '@/lib/engine/operation-view';
import { listBlackouts } from '@/lib/features/rules/blackouts';
import { ruleBody } from '@/lib/features/rules/rule-body';
import { createRule } from '@/lib/features/rules/rules';
import { listWindows } from '@/lib/features/rules/maintenance-windows';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import * as blackoutsRoute from './blackouts/route';
import * as blackoutRoute from './blackouts/[id]/route';
import * as discoveryRoute from './cloud/discovery/route';
import * as discoveryRunRoute from './cloud/discovery/[id]/route';
import * as windowsRoute from './maintenance-windows/route';
import * as operationRoute from './operations/[id]/route';
import * as ruleRunRoute from './rules/[id]/run/route';

let t: TestDb;
let stg: { id: number; access: Access; read: string; operate: string };
let root: { id: number; username: string; access: Access; read: string };
const env = new Map<string, number>();
let opId = 0;
let prodHost = '';
let prodInstance = 0;

type Handler = (req: NextRequest, ctx: { params: Promise<Record<string, string>> }) => Promise<Response>;
const call = async (
  h: Handler,
  path: string,
  token: string,
  init: { method?: string; body?: BodyInit; params?: Record<string, string> } = {},
) => {
  const req = new NextRequest(`http://127.0.0.1${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}` },
    ...(init.body ? { body: init.body, duplex: 'half' } : {}),
  });
  const res = await h(req, { params: Promise.resolve(init.params ?? {}) });
  return { status: res.status, text: await res.text() };
};

/** A body of `bytes` sent in chunks, with no Content-Length: cut off by the cap as it arrives. */
const chunked = (bytes: number) => {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= bytes) {
        c.close();
        return;
      }
      c.enqueue(new Uint8Array(16 * 1024).fill(0x7b));
      sent += 16 * 1024;
    },
  });
};

beforeAll(async () => {
  t = await freshDatabase();
  process.env.DATABASE_URL = t.url; // the routes' own getDb()
  await seedLabFleet(t.db, t.lab);
  for (const e of await t.db.select().from(environments)) env.set(e.name, e.id);
  const [r] = await t.db.insert(users).values({ username: 'root-vis', source: 'local', isSuperuser: true }).returning();
  const [s] = await t.db.insert(users).values({ username: 'stg-only', source: 'local' }).returning();
  await t.db.insert(roleBindings).values({ role: 'admin', subjectType: 'user', subject: 'stg-only', environmentId: env.get('staging')! });
  root = {
    id: r!.id,
    username: 'root-vis',
    access: await loadAccess(t.db, r!.id),
    read: (await createApiToken(t.db, r!.id, 'r', 'read')).token,
  };
  stg = {
    id: s!.id,
    access: await loadAccess(t.db, s!.id),
    read: (await createApiToken(t.db, s!.id, 'r', 'read')).token,
    operate: (await createApiToken(t.db, s!.id, 'o', 'operate')).token,
  };
  const [prodHerd] = await t.db
    .select()
    .from(herds)
    .where(eq(herds.environmentId, env.get('production')!))
    .limit(1);
  const [stgHerd] = await t.db
    .select()
    .from(herds)
    .where(eq(herds.environmentId, env.get('staging')!))
    .limit(1);
  const soon = new Date(Date.now() + 86_400_000);
  const later = new Date(Date.now() + 2 * 86_400_000);
  const b = { startsAt: soon, endsAt: later, createdBy: 'root-vis' };
  await t.db.insert(blackouts).values([
    { ...b, name: 'prod-freeze', environmentId: env.get('production')! },
    { ...b, name: 'prod-herd-freeze', herdId: prodHerd!.id },
    { ...b, name: 'stg-freeze', environmentId: env.get('staging')! },
    { ...b, name: 'everywhere-freeze' },
  ]);
  const w = { days: [1], starts: '02:00', durationMinutes: 60, createdBy: 'root-vis' };
  await t.db.insert(maintenanceWindows).values([
    { ...w, name: 'prod-window', environmentId: env.get('production')! },
    { ...w, name: 'prod-herd-window', herdId: prodHerd!.id },
    { ...w, name: 'stg-window', environmentId: env.get('staging')! },
    { ...w, name: 'everywhere-window' },
  ]);
  await t.db.insert(discoveryRuns).values([
    {
      requestedBy: 'root-vis',
      startedAt: soon,
      finishedAt: soon,
      summary: { found: 1, created: ['db-prod-secret.lab.internal'], updated: 0, gone: [], skipped: [] },
    },
    { requestedBy: 'root-vis', startedAt: soon, finishedAt: soon, error: 'UnauthorizedOperation: names i-0prod' },
  ]);
  // A mixed operation: a staging target and a production one, re-pointed to a production member.
  const [pi] = await t.db
    .select({ id: instances.id, host: servers.hostname, port: instances.port })
    .from(instances)
    .innerJoin(servers, eq(servers.id, instances.serverId))
    .where(eq(instances.herdId, prodHerd!.id))
    .limit(1);
  const [si] = await t.db.select({ id: instances.id }).from(instances).where(eq(instances.herdId, stgHerd!.id)).limit(1);
  prodHost = pi!.host;
  prodInstance = pi!.id;
  const [op] = await t.db
    .insert(operations)
    .values({
      action: 'remaster',
      actionParams: { upstreamInstanceId: String(pi!.id) },
      planDigest: 'x',
      requestedByName: 'root-vis',
      status: 'running',
      pausedAt: new Date(),
      pausedReason: `wave 2's health gate did not pass within 60 s: ${prodHerd!.name}: ${pi!.host} not streaming`,
      waves: { size: 1 },
    })
    .returning();
  opId = op!.id;
  await t.db.insert(operationTargets).values([
    { operationId: opId, instanceId: si!.id, herdId: stgHerd!.id, label: 'a staging member', wave: 1 },
    { operationId: opId, instanceId: pi!.id, herdId: prodHerd!.id, label: `${pi!.host}:${pi!.port}`, wave: 2 },
  ]);
  await t.db.insert(operationWaves).values([
    { operationId: opId, wave: 1, targets: 1, status: 'passed', gateNote: 'healthy since 02:00:00' },
    { operationId: opId, wave: 2, targets: 1, status: 'held', gateNote: `${pi!.host} replay paused` },
  ]);
});
afterAll(async () => ifAssigned(t)?.close());

describe('a user with a role in staging only', () => {
  it('sees no production blackout or window, through the API or the pages\u2019 lists', async () => {
    const names = (text: string) => (JSON.parse(text) as { items: { name: string }[] }).items.map((i) => i.name).sort();
    expect(names((await call(blackoutsRoute.GET, '/api/v1/blackouts', stg.read)).text)).toEqual(['everywhere-freeze', 'stg-freeze']);
    expect(names((await call(windowsRoute.GET, '/api/v1/maintenance-windows', stg.read)).text)).toEqual([
      'everywhere-window',
      'stg-window',
    ]);
    expect((await listBlackouts(t.db, stg.access)).map((x) => x.name).sort()).toEqual(['everywhere-freeze', 'stg-freeze']);
    expect((await listWindows(t.db, stg.access)).map((x) => x.name).sort()).toEqual(['everywhere-window', 'stg-window']);
    // A global role sees them all.
    expect(names((await call(blackoutsRoute.GET, '/api/v1/blackouts', root.read)).text)).toHaveLength(4);
  });

  it('cannot lift a production blackout nor learn its environment\u2019s name by its id', async () => {
    const [prod] = await t.db.select().from(blackouts).where(eq(blackouts.name, 'prod-freeze'));
    const del = await call(blackoutRoute.DELETE, `/api/v1/blackouts/${prod!.id}`, stg.operate, {
      method: 'DELETE',
      params: { id: String(prod!.id) },
    });
    expect(del.status).toBe(404);
    expect(await t.db.$count(blackouts, eq(blackouts.id, prod!.id))).toBe(1);
    const set = await call(blackoutsRoute.POST, '/api/v1/blackouts', stg.operate, {
      method: 'POST',
      body: JSON.stringify({
        name: 'probe',
        startsAt: '2030-01-01T00:00:00Z',
        endsAt: '2030-01-02T00:00:00Z',
        environmentId: env.get('production'),
      }),
    });
    expect(set.status).toBe(400);
    expect(set.text).not.toContain('production');
    expect(set.text).toContain(`no environment #${String(env.get('production'))}`);
  });

  it('is offered only staging\u2019s name, and a mixed operation lists only staging among its environments', async () => {
    expect((await visibleEnvironments(t.db, stg.access)).map((e) => e.name)).toEqual(['staging']);
    const def = getAdmin('operations')!;
    const list = await changeList(t.db, def, parseListParams(def, {}, stg.access));
    const row = list.rows.find((r) => r.__id === opId)!;
    expect(row.environments).toBe('staging');
    const envFacet = list.facets.find((f) => f.key === 'environment')!;
    expect(envFacet.options.map((o) => o.label)).toEqual(['staging']);
    const all = await changeList(t.db, def, parseListParams(def, {}, root.access));
    expect(all.rows.find((r) => r.__id === opId)!.environments).toBe('production, staging');
  });

  it('sees that EC2 discovery ran, not what it found nor why it failed', async () => {
    const body = JSON.parse((await call(discoveryRoute.GET, '/api/v1/cloud/discovery', stg.read)).text) as {
      runs: { id: number; status: string; summary: unknown; error: unknown }[];
    };
    expect(body.runs.map((r) => [r.status, r.summary, r.error])).toEqual([
      ['failed', null, null],
      ['done', null, null],
    ]);
    const one = await call(discoveryRunRoute.GET, `/api/v1/cloud/discovery/${body.runs[1]!.id}`, stg.read, {
      params: { id: String(body.runs[1]!.id) },
    });
    expect(one.text).not.toContain('db-prod-secret');
    const [latest] = await latestDiscoveryRuns(t.db, 2);
    expect(runView(latest!, stg.access).error).toBeNull();
    expect(runView(latest!, root.access).error).toBe('UnauthorizedOperation: names i-0prod');
  });

  it('reads a mixed operation without the parameter and the notes that name its production target', async () => {
    const res = await call(operationRoute.GET, `/api/v1/operations/${opId}`, stg.read, { params: { id: String(opId) } });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(prodHost);
    const op = JSON.parse(res.text) as {
      params: Record<string, unknown>;
      pausedReason: string;
      waves: { list: { gateNote: string | null }[] };
      targets: unknown[];
    };
    expect(op.targets).toHaveLength(1);
    expect(op.params.upstreamInstanceId).toBe(WITHHELD);
    expect(op.pausedReason).toBe(WITHHELD);
    expect(op.waves.list.map((w) => w.gateNote)).toEqual(['healthy since 02:00:00', WITHHELD]);
    const whole = JSON.parse(
      (await call(operationRoute.GET, `/api/v1/operations/${opId}`, root.read, { params: { id: String(opId) } })).text,
    ) as typeof op;
    expect(whole.params.upstreamInstanceId).toBe(String(prodInstance));
    expect(whole.pausedReason).toContain(prodHost);
  });
});

describe('an operation whose herd was deleted since', () => {
  it('its requester still reads it, with its target and steps; another staging admin, not its requester, is refused', async () => {
    // A Tear down's end: the restored herd it targeted is deleted by its last step.
    const [torn] = await t.db
      .insert(herds)
      .values({ environmentId: env.get('staging')!, name: 'restored-torn', systemIdentifier: '7399999999999999001', pgVersion: 15 })
      .returning();
    const [op] = await t.db
      .insert(operations)
      .values({
        action: 'tear-down-restored',
        actionParams: {},
        planDigest: 'x',
        requestedBy: stg.id,
        requestedByName: 'stg-only',
        status: 'succeeded',
        finishedAt: new Date(),
      })
      .returning();
    const [target] = await t.db
      .insert(operationTargets)
      .values({ operationId: op!.id, herdId: torn!.id, label: 'staging/restored-torn', status: 'succeeded' })
      .returning();
    await t.db.insert(operationSteps).values({
      targetId: target!.id,
      seq: 1,
      name: 'delete the herd from the inventory',
      status: 'succeeded',
      startedAt: new Date(),
      finishedAt: new Date(),
    });
    await t.db.delete(herds).where(eq(herds.id, torn!.id));
    const [other] = await t.db.insert(users).values({ username: 'stg-other', source: 'local' }).returning();
    await t.db
      .insert(roleBindings)
      .values({ role: 'admin', subjectType: 'user', subject: 'stg-other', environmentId: env.get('staging')! });
    const path = `/api/v1/operations/${op!.id}`;
    const mine = await call(operationRoute.GET, path, stg.read, { params: { id: String(op!.id) } });
    expect(mine.status, mine.text).toBe(200);
    const body = JSON.parse(mine.text) as {
      status: string;
      targets: { herdId: number | null; label: string; steps: { name: string }[] }[];
    };
    expect(body.status).toBe('succeeded');
    expect(body.targets).toEqual([
      expect.objectContaining({
        herdId: null,
        label: 'staging/restored-torn',
        steps: [expect.objectContaining({ name: 'delete the herd from the inventory' })],
      }),
    ]);
    // The console's page and its poll read the same view.
    const view = (await operationView(t.db, op!.id, stg.access))!;
    expect(view.hiddenTargets).toBe(0);
    expect(view.targets.map((x) => x.label)).toEqual(['staging/restored-torn']);
    // Not its requester: a herd that is gone belongs to no environment, global viewers only.
    const theirs = await call(operationRoute.GET, path, (await createApiToken(t.db, other!.id, 'r', 'read')).token, {
      params: { id: String(op!.id) },
    });
    expect(theirs.status).toBe(403);
    expect((await operationView(t.db, op!.id, await loadAccess(t.db, other!.id)))!.targets).toEqual([]);
  });
});

describe('a body past the cap to a route that takes none', () => {
  it('gets a 413, chunked or not, and nothing is asked for', async () => {
    const rule = await createRule(
      t.db,
      { ...root, access: root.access },
      ruleBody.parse({
        schedule: { cron: ['0 3 * * *'], timezone: 'UTC' },
        action: 'reload',
        instanceIds: [prodInstance],
        name: 'capped',
        confirmation: 'production',
      }),
    );
    const admin = (await createApiToken(t.db, root.id, 'o', 'operate')).token;
    for (const body of [chunked(1024 * 1024), 'x'.repeat(1024 * 1024)]) {
      const run = await call(ruleRunRoute.POST, `/api/v1/rules/${rule.id}/run`, admin, {
        method: 'POST',
        body,
        params: { id: String(rule.id) },
      });
      expect(run.status).toBe(413);
      const disc = await call(discoveryRoute.POST, '/api/v1/cloud/discovery', admin, {
        method: 'POST',
        body: typeof body === 'string' ? body : chunked(1024 * 1024),
      });
      expect(disc.status).toBe(413);
    }
    expect(await t.db.$count(ruleRuns, eq(ruleRuns.ruleId, rule.id))).toBe(0);
    expect(await t.db.$count(discoveryRuns, and(eq(discoveryRuns.requestedBy, 'root-vis')))).toBe(2);
  });
});
