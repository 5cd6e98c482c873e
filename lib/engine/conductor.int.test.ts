// The wave conductor's decision against a real pgherd database: a herd whose primary answers on a
// kept session but takes no new connection (what runConductor's observation pool reports for it,
// see observe.int.test.ts) holds its wave; healthy again, the next wave starts. And whom the gate
// waits for: the members of the herds the wave touched, but not those excused or stopped by it.
import { and, eq, sql } from 'drizzle-orm';
import type { PgInsertValue } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environments, herds, instances, operations, operationTargets, operationWaves, servers } from '@/db/schema';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { conductWaves, sampleGate, type Observer } from '@/lib/engine/conductor';
import { wavesSchema } from '@/lib/engine/waves';

let t: TestDb;

const healthy: Observer = () => Promise.resolve({ reachable: true, inRecovery: false, timeline: 1, lsn: '0/3000000' });
const frozen: Observer = () => Promise.resolve({ reachable: false, error: 'timeout expired (the postmaster takes no new connection)' });

/**
 * A rolling operation on a one-member herd of its own (`name`): wave 1's target ran and succeeded, wave
 * 2's waits, held, behind a gate of `soakSeconds`; wave 1's row as `firstWave` says (running, or soaking).
 */
async function twoWaves(name: string, soakSeconds: number, firstWave: Partial<PgInsertValue<typeof operationWaves>>) {
  const [env] = await t.db.insert(environments).values({ name }).returning();
  const [herd] = await t.db
    .insert(herds)
    .values({ environmentId: env!.id, name: `${name}-h` })
    .returning();
  const [server] = await t.db
    .insert(servers)
    .values({ hostname: `${name}-s`, environmentId: env!.id, address: '127.0.0.1' })
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
      waves: wavesSchema.parse({ size: 1, gate: { soakSeconds } }),
    })
    .returning();
  const operationId = op!.id;
  await t.db.insert(operationWaves).values([
    { operationId, wave: 1, targets: 1, status: 'running', startedAt: new Date(), ...firstWave },
    { operationId, wave: 2, targets: 1, status: 'pending' },
  ]);
  const row = { operationId, instanceId: inst!.id, herdId: herd!.id, label: `${name}-s:5432` };
  await t.db.insert(operationTargets).values([
    { ...row, wave: 1, status: 'succeeded', attempts: 1 },
    { ...row, wave: 2, status: 'queued', held: true },
  ]);
  const byWave = (table: typeof operationWaves | typeof operationTargets, n: number) =>
    and(eq(table.operationId, operationId), eq(table.wave, n));
  return {
    waveOf: async (n: number) => (await t.db.select().from(operationWaves).where(byWave(operationWaves, n)))[0]!,
    targetOf: async (n: number) => (await t.db.select().from(operationTargets).where(byWave(operationTargets, n)))[0]!,
  };
}

beforeAll(async () => {
  t = await freshDatabase();
});
afterAll(async () => ifAssigned(t)?.close());

describe('the gate that passes a wave', () => {
  it('holds the wave while the primary takes no new connection; passes it once the primary is healthy', async () => {
    // Wave 1 ran and ended; wave 2 waits behind a 0-second gate.
    const op = await twoWaves('gate', 0, { status: 'running' });
    await conductWaves(t.db, null, { look: frozen });
    expect(await op.waveOf(1)).toMatchObject({ status: 'soaking', gateNote: expect.stringContaining('gate-h: no writable primary') });
    expect(await op.waveOf(2)).toMatchObject({ status: 'pending' });
    expect(await op.targetOf(2)).toMatchObject({ held: true });

    await conductWaves(t.db, null, { look: healthy });
    expect(await op.waveOf(1)).toMatchObject({ status: 'passed' });
    expect(await op.waveOf(2)).toMatchObject({ status: 'running' });
    expect(await op.targetOf(2)).toMatchObject({ held: false });
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
  // A wave soaking for 10 s, its next wave held; the conductor (or pgherd's database) away for a while.
  let n = 0;
  const soakingOperation = (times: { soakFromAgo: number; lastReadingAgo: number | null }) => {
    const ago = (s: number) => sql`now() - ${s} * interval '1 second'`;
    return twoWaves(`soak-${String(++n)}`, 10, {
      status: 'soaking',
      soakFrom: ago(times.soakFromAgo),
      lastReadingAt: times.lastReadingAgo === null ? null : ago(times.lastReadingAgo),
    });
  };

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
