// Instance ids last: a report of instances pgherd already knows takes no value of their id sequence
// (a fleet reporting every minute would otherwise use up 2^31 ids within a year), a new instance still
// gets one, and an id past 2^31 works wherever the console and the engine read instances.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environments, herds, instances, lagSamples, servers } from '@/db/schema';
import { loadObject } from '@/lib/features/admin/change-form-data';
import { parseListParams } from '@/lib/features/admin/list-params';
import { changeList } from '@/lib/features/admin/list-query';
import { getAdmin, getEditable } from '@/lib/features/admin/registry';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { lagHistory, sampleLag } from '@/lib/fleet/lag-history';
import { loadInstanceRefs, loadInstancesWithHerds } from '@/lib/fleet/instance-ref';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { ingestReport, ingestReports, type AgentServer } from './ingest';
import type { InstanceReport, Report } from '@/lib/agent/report';

const SERVERS = 25;
const PORTS = 40;

let t: TestDb;
let fleet: AgentServer[] = [];
const sysidOf = (k: number) => `61000000000000${String(k).padStart(5, '0')}`;

/** Server k's report: a primary on its first port and replicas of it on the others, at `lsn`. */
const reportOf = (s: AgentServer, k: number, lsn: number, ports = PORTS, extra: InstanceReport[] = []): Report => ({
  format: 1,
  agentVersion: 'test',
  hostname: s.hostname,
  observedAt: new Date().toISOString(),
  intervalSeconds: 60,
  instances: [
    ...Array.from({ length: ports }, (_, p): InstanceReport => {
      const at = `0/${(lsn + (p === 0 ? 64 : 0)).toString(16).toUpperCase()}`;
      return {
        port: 6000 + p,
        dataDirectory: `/srv/pg/${6000 + p}`,
        state: 'running',
        majorVersion: 16,
        systemIdentifier: sysidOf(k),
        inRecovery: p !== 0,
        timeline: 1,
        ...(p === 0 ? { currentLsn: at } : { replayedLsn: at, receivedLsn: at, upstream: { host: s.hostname, port: 6000 } }),
        replicas: [],
        pendingRestart: [],
      };
    }),
    ...extra,
  ],
});

const lastValue = async () => Number((await t.db.execute<{ v: string }>(sql`SELECT last_value AS v FROM instances_id_seq`)).rows[0]!.v);

beforeAll(async () => {
  t = await freshDatabase();
  const [env] = await t.db.insert(environments).values({ name: 'ids' }).returning();
  fleet = await t.db
    .insert(servers)
    .values(Array.from({ length: SERVERS }, (_, k) => ({ hostname: `ids-${k}.example.com`, environmentId: env!.id })))
    .returning({ id: servers.id, hostname: servers.hostname, environment_id: servers.environmentId });
  await t.db
    .insert(herds)
    .values(Array.from({ length: SERVERS }, (_, k) => ({ environmentId: env!.id, name: `ids-${k}`, systemIdentifier: sysidOf(k) })));
  // The fleet's first reports: every instance is new.
  const created = await ingestReports(
    t.db,
    fleet.map((s, k) => ({ server: s, report: reportOf(s, k, 0x1000) })),
  );
  expect(created.reduce((n, r) => n + r.created, 0)).toBe(SERVERS * PORTS);
}, 120_000);
afterAll(async () => ifAssigned(t)?.close());

describe('instance ids', () => {
  it('takes no sequence value for 100,000 reports of instances it knows, each changing them', async () => {
    const before = await lastValue();
    const started = Date.now();
    let updated = 0;
    for (let round = 1; round <= 100; round++) {
      const results = await ingestReports(
        t.db,
        fleet.map((s, k) => ({ server: s, report: reportOf(s, k, 0x1000 + round * 256) })),
      );
      updated += results.reduce((n, r) => n + r.updated, 0);
      expect(results.every((r) => r.created === 0)).toBe(true);
    }
    console.log(`100,000 instance reports in ${Date.now() - started} ms`);
    expect(updated).toBe(100 * SERVERS * PORTS);
    expect(await lastValue()).toBe(before);
    // The facts were written: the last round's LSNs.
    const [row] = await t.db
      .select({ lsn: instances.lsn })
      .from(instances)
      .where(sql`${instances.serverId} = ${fleet[0]!.id} AND ${instances.port} = 6001`);
    expect(row!.lsn).toBe(0x1000 + 100 * 256);
  });

  it('gives a new instance the next id, and moves the sequence by exactly the new ones beside known ones', async () => {
    const s = fleet[1]!;
    const before = await lastValue();
    const one = await ingestReport(t.db, s, reportOf(s, 1, 0x80000, PORTS + 1));
    expect(one).toMatchObject({ created: 1, updated: PORTS });
    const [added] = await t.db
      .select({ id: instances.id })
      .from(instances)
      .where(sql`${instances.serverId} = ${s.id} AND ${instances.port} = ${6000 + PORTS}`);
    expect(added!.id).toBe(before + 1);
    expect(await lastValue()).toBe(before + 1);

    const three = await ingestReport(t.db, s, reportOf(s, 1, 0x90000, PORTS + 4));
    expect(three).toMatchObject({ created: 3, updated: PORTS + 1 });
    expect(await lastValue()).toBe(before + 4);
    // The same report again: nothing changes, no value is taken.
    expect(await ingestReport(t.db, s, reportOf(s, 1, 0x90000, PORTS + 4))).toMatchObject({ created: 0 });
    expect(await lastValue()).toBe(before + 4);
  });

  it('keeps concurrent reports of the same servers correct: one row per instance, no deadlock, the facts of one of them', async () => {
    const pair = [fleet[2]!, fleet[3]!];
    for (let round = 0; round < 20; round++) {
      const lsn = 0x100000 + round * 4096;
      // Two batches naming the same servers in opposite orders, each with a new instance per server.
      const batch = (order: AgentServer[], d: number) =>
        ingestReports(
          t.db,
          order.map((s) => ({ server: s, report: reportOf(s, fleet.indexOf(s), lsn + d, PORTS + 1 + round) })),
        );
      const before = await lastValue();
      const [a, b] = await Promise.all([batch(pair, 0), batch([...pair].reverse(), 16)]);
      // Each new instance is created once; a report that lost the race to create it updates it.
      expect([...a, ...b].reduce((n, r) => n + r.created, 0)).toBe(2);
      // A value is taken for each new instance, and at most one more for each that both reports tried to insert.
      expect(await lastValue()).toBeGreaterThanOrEqual(before + 2);
      expect(await lastValue()).toBeLessThanOrEqual(before + 4);
      for (const s of pair) {
        const rows = await t.db.select({ port: instances.port, lsn: instances.lsn }).from(instances).where(eq(instances.serverId, s.id));
        expect(rows).toHaveLength(PORTS + 1 + round);
        const replicaLsn = new Set(rows.filter((r) => r.port !== 6000).map((r) => r.lsn));
        // All of one report or all of the other: never a mix within a server.
        expect(replicaLsn.size, `round ${round}`).toBe(1);
        expect([lsn, lsn + 16]).toContain([...replicaLsn][0]);
      }
    }
  });

  it('works past 2^31: a new instance and its replica get such ids, and the console and the engine read them', async () => {
    await t.db.execute(sql`SELECT setval('instances_id_seq', ${2 ** 31 + 5})`);
    const s = fleet[4]!;
    const [env] = await t.db.select({ id: environments.id }).from(environments).where(eq(environments.name, 'ids'));
    await t.db.insert(herds).values({ environmentId: env!.id, name: 'ids-big', systemIdentifier: sysidOf(99) });
    // A new primary (a second herd on the server) and a replica of it.
    const big = (lsn: number): InstanceReport[] => [
      {
        port: 7000,
        dataDirectory: '/srv/pg/7000',
        state: 'running',
        majorVersion: 16,
        systemIdentifier: sysidOf(99),
        inRecovery: false,
        timeline: 1,
        currentLsn: `0/${(lsn + 100).toString(16)}`,
        replicas: [],
        pendingRestart: [],
      },
      {
        port: 7001,
        dataDirectory: '/srv/pg/7001',
        state: 'running',
        majorVersion: 16,
        systemIdentifier: sysidOf(99),
        inRecovery: true,
        timeline: 1,
        replayedLsn: `0/${lsn.toString(16)}`,
        upstream: { host: s.hostname, port: 7000 },
        replicas: [],
        pendingRestart: [],
      },
    ];
    // Twice: the replica finds its upstream on the second report (agents report in any order).
    expect(await ingestReport(t.db, s, reportOf(s, 4, 0x200000, PORTS, big(0x300000)))).toMatchObject({ created: 2 });
    expect(await ingestReport(t.db, s, reportOf(s, 4, 0x200000, PORTS, big(0x300000)))).toMatchObject({ created: 0 });
    const rows = await t.db
      .select()
      .from(instances)
      .where(sql`${instances.serverId} = ${s.id} AND ${instances.port} >= 7000`)
      .orderBy(instances.port);
    expect(rows.map((r) => r.id)).toEqual([2 ** 31 + 6, 2 ** 31 + 7]);
    const [primary, replica] = rows;
    expect(replica!.upstreamInstanceId).toBe(primary!.id);
    expect(replica!.lagBytes).toBe(100);
    expect(await lastValue()).toBe(2 ** 31 + 7);

    // The changelist, the change form and the history of lag, as the console reads them.
    const def = getAdmin('instances')!;
    const list = await changeList(t.db, def, parseListParams(def, { herd: String(primary!.herdId) }, SYSTEM_ACCESS));
    expect(list.rows.map((r) => r.__id)).toEqual(expect.arrayContaining([primary!.id, replica!.id]));
    const form = await loadObject(t.db, getEditable('instances')!, replica!.id);
    expect(form?.values.upstreamInstanceId).toBe(String(primary!.id));
    expect(await sampleLag(t.db)).toBeGreaterThan(0);
    const [sample] = await t.db.select().from(lagSamples).where(eq(lagSamples.instanceId, replica!.id));
    expect(sample!.lagBytes).toBe(100);
    const history = await lagHistory(t.db, { instanceId: replica!.id }, 'hour');
    expect(history.series.map((x) => x.instanceId)).toEqual([replica!.id]);

    // What planning an action reads.
    expect((await loadInstanceRefs(t.db, [replica!.id])).map((r) => r.id)).toEqual([replica!.id]);
    expect((await loadInstanceRefs(t.db, [], { herdOfInstance: replica!.id })).map((r) => r.id)).toEqual([primary!.id, replica!.id]);
    const { refs, members } = await loadInstancesWithHerds(t.db, [replica!.id]);
    expect(refs.map((r) => r.upstreamId ?? null)).toEqual([primary!.id]);
    expect(members.get(primary!.herdId)?.map((r) => r.id)).toEqual([primary!.id, replica!.id]);
  });
});
