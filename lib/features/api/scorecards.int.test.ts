// The recoverability and DR scorecards through the API: the answers the OpenAPI document describes, each
// caller's environments only, another environment's refused by name, bad input a 400.
import { NextRequest } from 'next/server';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupPolicies, backups, environments, herds, parameterGroups, roleBindings, users } from '@/db/schema';
import { createApiToken } from '@/lib/features/auth/api-tokens';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import * as backupsRoute from '@/app/api/v1/backups/scorecard/route';
import * as drRoute from '@/app/api/v1/dr/scorecard/route';
import * as herdBackupsRoute from '@/app/api/v1/herds/[id]/backups/route';
import { backupRow, drRow, recoverabilityRow } from './contract/scorecards';

let t: TestDb;
const env = new Map<string, number>();
let rootToken = '';
let stgToken = '';

type Handler = typeof backupsRoute.GET;
const call = async (h: Handler, path: string, token: string, params: Record<string, string> = {}) => {
  const res = await h(new NextRequest(`http://127.0.0.1${path}`, { headers: { authorization: `Bearer ${token}` } }), {
    params: Promise.resolve(params),
  });
  return {
    status: res.status,
    body: (await res.json()) as { items: { environment: string; herd: string }[]; error?: string; [k: string]: unknown },
  };
};

beforeAll(async () => {
  t = await freshDatabase();
  process.env.DATABASE_URL = t.url; // the routes' own getDb()
  await seedLabFleet(t.db, t.lab);
  for (const e of await t.db.select().from(environments)) env.set(e.name, e.id);
  const [r] = await t.db.insert(users).values({ username: 'root-score', source: 'local', isSuperuser: true }).returning();
  const [s] = await t.db.insert(users).values({ username: 'stg-score', source: 'local' }).returning();
  await t.db.insert(roleBindings).values({ role: 'viewer', subjectType: 'user', subject: 'stg-score', environmentId: env.get('staging')! });
  rootToken = (await createApiToken(t.db, r!.id, 'r', 'read')).token;
  stgToken = (await createApiToken(t.db, s!.id, 'r', 'read')).token;
}, 120_000);

afterAll(async () => {
  await ifAssigned(t)?.close();
});

describe.each([
  ['/api/v1/backups/scorecard', backupsRoute.GET, recoverabilityRow],
  ['/api/v1/dr/scorecard', drRoute.GET, drRow],
] as const)('%s', (path, handler, row) => {
  it('answers as the document says, every herd a global viewer sees and only staging for a staging viewer', async () => {
    const all = await call(handler, path, rootToken);
    expect(all.status).toBe(200);
    z.object({ items: z.array(row) }).parse(all.body);
    expect(new Set(all.body.items.map((i) => i.environment))).toEqual(new Set(['production', 'staging']));
    const stg = await call(handler, path, stgToken);
    expect(stg.status).toBe(200);
    expect(stg.body.items.length).toBeGreaterThan(0);
    expect(stg.body.items.every((i) => i.environment === 'staging')).toBe(true);
    expect(stg.body.items.map((i) => i.herd)).toEqual(all.body.items.filter((i) => i.environment === 'staging').map((i) => i.herd));
    const one = await call(handler, `${path}?environment=${env.get('staging')!}`, rootToken);
    expect(one.body.items).toEqual(stg.body.items);
  });

  it("refuses another environment's, and what it does not take", async () => {
    const theirs = await call(handler, `${path}?environment=${env.get('production')!}`, stgToken);
    expect(theirs.status).toBe(403);
    expect(theirs.body.error).toMatch(/needs the viewer role/);
    for (const q of ['?environment=abc', '?environment=0', '?env=1', `?environment=1&environment=2`])
      expect((await call(handler, `${path}${q}`, rootToken)).status, q).toBe(400);
  });
});

describe('/api/v1/herds/{id}/backups', () => {
  it("lists a herd's backups newest first, the expired with all=1, to its environment's viewers alone", async () => {
    const herdOf = async (environment: string) => (await t.db.select().from(herds)).find((h) => h.environmentId === env.get(environment))!;
    const stg = await herdOf('staging');
    const prod = await herdOf('production');
    const at = (h: number) => new Date(Date.UTC(2026, 10, 1, h));
    const b = (label: string, type: 'full' | 'diff', h: number, gone = false) => ({
      herdId: stg.id,
      stanza: 'main',
      label,
      type,
      prior: type === 'full' ? null : 'F1',
      startedAt: at(h),
      stoppedAt: at(h + 1),
      sizeBytes: 1000,
      repoSizeBytes: 100,
      lsnStart: '0/1000000',
      lsnStop: '0/2000000',
      walStart: '000000010000000000000001',
      walStop: '000000010000000000000002',
      goneAt: gone ? at(20) : null,
    });
    await t.db.insert(backups).values([b('F0', 'full', 0, true), b('F1', 'full', 2), b('D1', 'diff', 4)]);
    const path = `/api/v1/herds/${stg.id}/backups`;
    const mine = await call(herdBackupsRoute.GET, path, stgToken, { id: String(stg.id) });
    expect(mine.status).toBe(200);
    z.object({ items: z.array(backupRow) }).parse(mine.body);
    expect(mine.body.items.map((i) => (i as unknown as { label: string }).label)).toEqual(['D1', 'F1']);
    const all = await call(herdBackupsRoute.GET, `${path}?all=1`, stgToken, { id: String(stg.id) });
    expect(all.body.items.map((i) => (i as unknown as { label: string }).label)).toEqual(['D1', 'F1', 'F0']);
    expect((await call(herdBackupsRoute.GET, `/api/v1/herds/${prod.id}/backups`, stgToken, { id: String(prod.id) })).status).toBe(403);
    expect((await call(herdBackupsRoute.GET, '/api/v1/herds/2147483647/backups', rootToken, { id: '2147483647' })).status).toBe(404);
    expect((await call(herdBackupsRoute.GET, '/api/v1/herds/x/backups', rootToken, { id: 'x' })).status).toBe(400);
    expect((await call(herdBackupsRoute.GET, `${path}?all=yes`, rootToken, { id: String(stg.id) })).status).toBe(400);
  });
});

describe('the fleet configuration routes', () => {
  it("answer as the document says, a staging viewer's own environment only", async () => {
    const {
      drPairsRoute: dr,
      groupsRoute: g,
      herdSettingsRoute: hs,
      policiesRoute: p,
      restoreWindowRoute: rw,
    } = await import('./contract/fleet-config');
    const routes = {
      pairs: await import('@/app/api/v1/dr/pairs/route'),
      policies: await import('@/app/api/v1/backup-policies/route'),
      groups: await import('@/app/api/v1/parameter-groups/route'),
      settings: await import('@/app/api/v1/herds/[id]/settings/route'),
      window: await import('@/app/api/v1/herds/[id]/restore-window/route'),
    };
    const schema = (r: { responses: Record<number, { schema?: z.ZodType }> }) => r.responses[200]!.schema!;
    const herdsOf = async (environment: string) =>
      (await t.db.select().from(herds)).filter((h) => h.environmentId === env.get(environment));
    const stg = (await herdsOf('staging'))[0]!;
    const prod = (await herdsOf('production'))[0]!;
    // DR pairs: every herd a global viewer sees; a staging viewer's are staging's alone.
    const all = await call(routes.pairs.GET, '/api/v1/dr/pairs', rootToken);
    schema(dr).parse(all.body);
    expect(new Set(all.body.items.map((i) => i.environment))).toEqual(new Set(['production', 'staging']));
    const mine = await call(routes.pairs.GET, '/api/v1/dr/pairs', stgToken);
    expect(mine.body.items.length).toBeGreaterThan(0);
    expect(mine.body.items.every((i) => i.environment === 'staging')).toBe(true);
    expect((await call(routes.pairs.GET, '/api/v1/dr/pairs?bogus=1', rootToken)).status).toBe(400);
    // Backup policies: staging's and production's; a staging viewer sees staging's.
    await t.db.insert(backupPolicies).values([
      { environmentId: env.get('staging')!, herdId: stg.id, repoKind: 's3', s3Bucket: 'stg-backups', repoPath: '/stg' },
      { environmentId: env.get('production')!, herdId: prod.id, repoKind: 's3', s3Bucket: 'prod-backups', repoPath: '/prod' },
    ]);
    const repos = (b: { items: unknown[] }) => b.items.map((i) => (i as { repository: string; environment: string }).repository);
    const pol = await call(routes.policies.GET, '/api/v1/backup-policies', stgToken);
    schema(p).parse(pol.body);
    expect(repos(pol.body)).toContain('s3://stg-backups/stg');
    expect(pol.body.items.every((i) => i.environment === 'staging')).toBe(true);
    expect(repos((await call(routes.policies.GET, '/api/v1/backup-policies', rootToken)).body)).toEqual(
      expect.arrayContaining(['s3://stg-backups/stg', 's3://prod-backups/prod']),
    );
    // Parameter groups: a catalogue, with its settings.
    await t.db.insert(parameterGroups).values({ name: 'api-test', settings: 'work_mem = 8MB\nshared_buffers = 1GB', version: 3 });
    const groups = await call(routes.groups.GET, '/api/v1/parameter-groups?per=500', stgToken);
    schema(g).parse(groups.body);
    expect(groups.body.items.find((i) => (i as unknown as { name: string }).name === 'api-test')).toMatchObject({
      version: 3,
      settings: 'work_mem = 8MB\nshared_buffers = 1GB',
    });
    // A herd's settings and restore window: its environment's viewers alone.
    const s = await call(routes.settings.GET, `/api/v1/herds/${stg.id}/settings`, stgToken, { id: String(stg.id) });
    expect(s.status).toBe(200);
    schema(hs).parse(s.body);
    expect((await call(routes.settings.GET, `/api/v1/herds/${prod.id}/settings`, stgToken, { id: String(prod.id) })).status).toBe(403);
    const w = await call(routes.window.GET, `/api/v1/herds/${stg.id}/restore-window`, stgToken, { id: String(stg.id) });
    schema(rw).parse(w.body);
    // The backups the test above put in: the oldest still there (F1) ended at 03:00.
    expect(w.body).toMatchObject({ earliest: '2026-11-01T03:00:00.000Z', backups: 2 });
    expect((await call(routes.window.GET, `/api/v1/herds/${prod.id}/restore-window`, stgToken, { id: String(prod.id) })).status).toBe(403);
    expect((await call(routes.window.GET, '/api/v1/herds/2147483647/restore-window', rootToken, { id: '2147483647' })).status).toBe(404);
  });
});
