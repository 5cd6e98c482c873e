// The wave conductor's decision against a real pgherd database: a herd whose primary answers on a
// kept session but takes no new connection (what runConductor's observation pool reports for it,
// see observe.int.test.ts) holds its wave; healthy again, the next wave starts.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environments, herds, instances, operations, operationTargets, operationWaves, servers } from '@/db/schema';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { conductWaves, type Observer } from './conductor';
import { wavesSchema } from './waves';

let t: TestDb;
let opId: number;

const healthy: Observer = () => Promise.resolve({ reachable: true, inRecovery: false, timeline: 1, lsn: '0/3000000' });
const frozen: Observer = () => Promise.resolve({ reachable: false, error: 'timeout expired (the postmaster takes no new connection)' });

const wave = async (n: number) =>
  (
    await t.db
      .select()
      .from(operationWaves)
      .where(and(eq(operationWaves.operationId, opId), eq(operationWaves.wave, n)))
  )[0]!;

beforeAll(async () => {
  t = await freshDatabase();
  const [env] = await t.db.insert(environments).values({ name: 'gate-test' }).returning();
  const [herd] = await t.db.insert(herds).values({ environmentId: env!.id, name: 'gate-h' }).returning();
  const [server] = await t.db.insert(servers).values({ hostname: 'gate-s', environmentId: env!.id, address: '127.0.0.1' }).returning();
  const [inst] = await t.db
    .insert(instances)
    .values({ herdId: herd!.id, serverId: server!.id, port: 5432, role: 'primary', state: 'running' })
    .returning();
  // Wave 1 ran and ended (its target succeeded); wave 2 waits behind a 0-second gate.
  const [op] = await t.db
    .insert(operations)
    .values({
      action: 'reload',
      status: 'running',
      planDigest: 'x',
      requestedByName: 'test',
      waves: wavesSchema.parse({ size: 1, gate: { soakSeconds: 0 } }),
    })
    .returning();
  opId = op!.id;
  await t.db.insert(operationWaves).values([
    { operationId: opId, wave: 1, targets: 1, status: 'running', startedAt: new Date() },
    { operationId: opId, wave: 2, targets: 1, status: 'pending' },
  ]);
  const row = { operationId: opId, instanceId: inst!.id, herdId: herd!.id, label: 'gate-s:5432' };
  await t.db.insert(operationTargets).values([
    { ...row, wave: 1, status: 'succeeded', attempts: 1 },
    { ...row, wave: 2, status: 'queued', held: true },
  ]);
});
afterAll(async () => ifAssigned(t)?.close());

describe('the gate that passes a wave', () => {
  it('holds the wave while the primary takes no new connection; passes it once the primary is healthy', async () => {
    await conductWaves(t.db, null, { look: frozen });
    expect(await wave(1)).toMatchObject({ status: 'soaking', gateNote: expect.stringContaining('gate-h: no writable primary') });
    expect(await wave(2)).toMatchObject({ status: 'pending' });
    expect((await t.db.select().from(operationTargets).where(eq(operationTargets.wave, 2)))[0]).toMatchObject({ held: true });

    await conductWaves(t.db, null, { look: healthy });
    expect(await wave(1)).toMatchObject({ status: 'passed' });
    expect(await wave(2)).toMatchObject({ status: 'running' });
    expect((await t.db.select().from(operationTargets).where(eq(operationTargets.wave, 2)))[0]).toMatchObject({ held: false });
  });
});
