// The wave conductor's decision against a real pgherd database: a herd whose primary answers on a
// kept session but takes no new connection (what runConductor's observation pool reports for it,
// see observe.int.test.ts) holds its wave; healthy again, the next wave starts. And whom the gate
// waits for: the members of the herds the wave touched, but not those excused or stopped by it.
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environments, herds, instances, operations, operationTargets, operationWaves, servers } from '@/db/schema';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { conductWaves, sampleGate, type Observer } from './conductor';
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

describe('sampleGate', () => {
  it('waits for the members of the herds the wave touched, except those excused or stopped by this operation', async () => {
    const [env] = await t.db.insert(environments).values({ name: 'gate-members' }).returning();
    const [herd, untouched] = await t.db
      .insert(herds)
      .values([
        { environmentId: env!.id, name: 'gm-h' },
        { environmentId: env!.id, name: 'gm-untouched' },
      ])
      .returning();
    let port = 6000;
    const member = async (hostname: string, herdId: number, role: 'primary' | 'replica', state: 'running' | 'stopped') => {
      const [s] = await t.db.insert(servers).values({ hostname, environmentId: env!.id, address: '127.0.0.2' }).returning();
      const [i] = await t.db.insert(instances).values({ herdId, serverId: s!.id, port: port++, role, state }).returning();
      return i!.id;
    };
    await member('gm-primary', herd!.id, 'primary', 'running');
    const excused = await member('gm-excused', herd!.id, 'replica', 'stopped');
    const stoppedHere = await member('gm-stopped-here', herd!.id, 'replica', 'stopped');
    const stoppedElsewhere = await member('gm-stopped-elsewhere', herd!.id, 'replica', 'stopped');
    const notStarted = await member('gm-not-started', untouched!.id, 'primary', 'running');
    const [op, other] = await t.db
      .insert(operations)
      .values([
        { action: 'stop', status: 'running', planDigest: 'x', requestedByName: 'test', waves: { size: 3 }, gateExcused: [excused] },
        { action: 'stop', status: 'succeeded', planDigest: 'x', requestedByName: 'test' },
      ])
      .returning();
    await t.db.insert(operationTargets).values([
      // This operation stopped one member (succeeded); another operation stopped another one.
      { operationId: op!.id, instanceId: stoppedHere, herdId: herd!.id, label: 'here', wave: 1, status: 'succeeded', attempts: 1 },
      {
        operationId: other!.id,
        instanceId: stoppedElsewhere,
        herdId: herd!.id,
        label: 'elsewhere',
        wave: 1,
        status: 'succeeded',
        attempts: 1,
      },
      // A target of the wave that never started: its herd is not the gate's.
      {
        operationId: op!.id,
        instanceId: notStarted,
        herdId: untouched!.id,
        label: 'not started',
        wave: 1,
        status: 'cancelled',
        attempts: 0,
      },
    ]);
    const looked: string[] = [];
    // Each member on its own port, so observed on its own: the primary answers, the rest do not.
    const look: Observer = (m) => {
      looked.push(m.hostname);
      return Promise.resolve(
        m.hostname === 'gm-primary'
          ? { reachable: true, inRecovery: false, timeline: 1, lsn: '0/3000000' }
          : { reachable: false, error: 'connection refused' },
      );
    };
    const gate = { maxLagBytes: 1024, maxLagSeconds: 10 };
    const problem = await sampleGate(t.db, op!.id, 1, gate, look);
    expect(problem).toBe('gm-h: gm-stopped-elsewhere not answering (connection refused)');
    expect(looked).not.toContain('gm-not-started');
  });
});

describe('the soak counts only time the gate was read', () => {
  // A wave soaking for 10 s, its next wave held; the conductor (or pgherd's database) away for 30 s.
  async function soakingOperation(times: { soakFromAgo: number; lastReadingAgo: number | null }) {
    const [env] = await t.db
      .insert(environments)
      .values({ name: `soak-${Math.random().toString(36).slice(2, 8)}` })
      .returning();
    const [herd] = await t.db.insert(herds).values({ environmentId: env!.id, name: 'soak-h' }).returning();
    const [server] = await t.db
      .insert(servers)
      .values({ hostname: `${env!.name}-s`, environmentId: env!.id, address: '127.0.0.3' })
      .returning();
    const [inst] = await t.db
      .insert(instances)
      .values({ herdId: herd!.id, serverId: server!.id, port: 5432, role: 'primary', state: 'running' })
      .returning();
    const [op] = await t.db
      .insert(operations)
      .values({
        action: 'reload',
        status: 'running',
        planDigest: 'x',
        requestedByName: 'test',
        waves: wavesSchema.parse({ size: 1, gate: { soakSeconds: 10 } }),
      })
      .returning();
    const ago = (s: number) => sql`now() - ${s} * interval '1 second'`;
    await t.db.insert(operationWaves).values([
      {
        operationId: op!.id,
        wave: 1,
        targets: 1,
        status: 'soaking',
        startedAt: new Date(),
        soakFrom: ago(times.soakFromAgo),
        lastReadingAt: times.lastReadingAgo === null ? null : ago(times.lastReadingAgo),
      },
      { operationId: op!.id, wave: 2, targets: 1, status: 'pending' },
    ]);
    const row = { operationId: op!.id, instanceId: inst!.id, herdId: herd!.id, label: 'soak' };
    await t.db.insert(operationTargets).values([
      { ...row, wave: 1, status: 'succeeded', attempts: 1 },
      { ...row, wave: 2, status: 'queued', held: true },
    ]);
    const waveOf = async (n: number) =>
      (
        await t.db
          .select()
          .from(operationWaves)
          .where(and(eq(operationWaves.operationId, op!.id), eq(operationWaves.wave, n)))
      )[0]!;
    return { waveOf };
  }

  it('a healthy reading after 30 s without one starts the soak again; it passes only after 10 s of readings', async () => {
    // Last read 30 s ago (healthy since 30 s): the first reading since must not pass a 10 s soak.
    const gap = await soakingOperation({ soakFromAgo: 30, lastReadingAgo: 30 });
    await conductWaves(t.db, null, { look: healthy });
    expect(await gap.waveOf(1)).toMatchObject({
      status: 'soaking',
      gateNote: expect.stringMatching(/soak started again: no reading for 30 s/),
    });
    expect(await gap.waveOf(2)).toMatchObject({ status: 'pending' });

    // Soaking since 30 s, never read (the conductor died as the wave ended): the same.
    const never = await soakingOperation({ soakFromAgo: 30, lastReadingAgo: null });
    await conductWaves(t.db, null, { look: healthy });
    expect(await never.waveOf(1)).toMatchObject({ status: 'soaking' });
    expect(await never.waveOf(2)).toMatchObject({ status: 'pending' });

    // Read every second for 11 s: watched, it passes.
    const watched = await soakingOperation({ soakFromAgo: 11, lastReadingAgo: 1 });
    await conductWaves(t.db, null, { look: healthy });
    expect(await watched.waveOf(1)).toMatchObject({ status: 'passed' });
    expect(await watched.waveOf(2)).toMatchObject({ status: 'running' });
  });
});
