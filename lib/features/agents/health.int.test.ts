// Fleet health from the agents' reports, on the lab's inventory with real reports from its instances:
// a restored copy of a primary, started on its own and reported by another server, makes two primaries
// in the herd (both accept writes, asked of Postgres), an agent that stops reporting is silent after
// three of its own intervals, a replica an admin put in the wrong herd streams from outside it; each is
// seen only by those who may see its environment.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditEntries, environments, herds, instances, servers } from '@/db/schema';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { planOperation } from '@/lib/engine/plan';
import { seedLabFleet } from '@/lib/lab/seed';
import { restoredCopy } from '@/lib/lab/faults';
import { dsn } from '@/lib/lab/postgres';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';
import { collectInstance } from '@/lib/agent/collect';
import { healthy, fleetHealth, SILENT_AFTER_INTERVALS } from './health';
import { createAgentToken, receiveReport } from './ingest';
import type { InstanceReport, Report } from '@/lib/agent/report';

let t: TestDb;
const envId = new Map<string, number>();
const serverId = new Map<string, number>();
const tokens = new Map<string, string>();

async function send(hostname: string, instancesNow: InstanceReport[], intervalSeconds = 60) {
  const report: Report = {
    format: 1,
    agentVersion: 'test',
    hostname,
    observedAt: new Date().toISOString(),
    intervalSeconds,
    instances: instancesNow,
  };
  const text = JSON.stringify(report);
  const res = await receiveReport(t.db, {
    authorization: `Bearer ${tokens.get(hostname)!}`,
    contentLength: text.length,
    text: async () => text,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  // The herds other files change while this one runs (promote, switchover) are left out: the seed
  // observes the lab as it is, and caught one of them mid-promote (two primaries) in a CI run.
  for (const h of await t.db
    .select({ id: herds.id, name: herds.name, environment: environments.name })
    .from(herds)
    .innerJoin(environments, eq(environments.id, herds.environmentId)))
    if (isOpsTestHerd(h.environment, h.name)) await t.db.delete(herds).where(eq(herds.id, h.id));
  for (const e of await t.db.select().from(environments)) envId.set(e.name, e.id);
  for (const s of await t.db.select().from(servers)) {
    serverId.set(s.hostname, s.id);
    tokens.set(s.hostname, await createAgentToken(t.db, s.id, { id: null, username: 'admin' }));
  }
  // Every stable lab server's agent reports once.
  for (const i of t.lab.instances.filter((x) => !isOpsTestHerd(x.environment, x.herd))) {
    await send(i.server, [await collectInstance({ connectionString: i.dsn })]);
  }
});
afterAll(async () => ifAssigned(t)?.close());

const stagingPrimary = () =>
  t.lab.instances.find((i) => i.environment === 'staging' && i.role === 'primary' && !isOpsTestHerd(i.environment, i.herd))!;
const herdIdOf = async (env: string, name: string) =>
  (
    await t.db
      .select({ id: herds.id })
      .from(herds)
      .where(sql`${herds.environmentId} = ${envId.get(env)!} AND ${herds.name} = ${name}`)
  )[0]!.id;

describe('fleet health', () => {
  it('finds nothing wrong in the lab as its agents report it', async () => {
    expect(healthy(await fleetHealth(t.db, null))).toBe(true);
  });

  it('a second instance running as primary in a herd: the herd, both primaries; gone when the copy stops', async () => {
    const p = stagingPrimary();
    // A server that is not in the herd reports a running primary with the herd's system identifier: a
    // copy of the primary restored from a base backup and started on its own there, accepting writes
    // (the finding asks Postgres: an inventory row alone is no second primary).
    const host = t.lab.instances.find((i) => i.environment === 'staging' && i.herd !== p.herd && i.role === 'replica')!;
    const copyHost = host.server;
    const copy = await restoredCopy(t.lab, inject('labFile'), p, 'db-health-copy.lab.internal', host.address);
    const spare = await collectInstance({ connectionString: dsn(copy.node) });
    const [before] = await t.db
      .select()
      .from(instances)
      .where(eq(instances.serverId, serverId.get(copyHost)!));
    await send(copyHost, [
      { ...(await collectInstance({ connectionString: t.lab.instances.find((i) => i.server === copyHost)!.dsn })) },
      spare,
    ]);

    const h = await fleetHealth(t.db, null);
    const herdId = await herdIdOf('staging', p.herd);
    expect(h.twoPrimaries.total).toBe(1);
    expect(h.twoPrimaries.rows[0]).toMatchObject({ herdId, herd: `staging/${p.herd}` });
    expect(h.twoPrimaries.rows[0]!.primaries.map((x) => x.label).sort()).toEqual(
      [`${p.server}:${p.port}`, `${copyHost}:${spare.port}`].sort(),
    );
    // The herd page's view: the same, for that herd only; other herds are well.
    expect((await fleetHealth(t.db, null, { herdId })).twoPrimaries.total).toBe(1);
    expect(healthy(await fleetHealth(t.db, null, { herdId: before!.herdId }))).toBe(true);
    // Those who may see only production do not learn of it.
    expect(healthy(await fleetHealth(t.db, [envId.get('production')!]))).toBe(true);
    expect((await fleetHealth(t.db, [envId.get('staging')!])).twoPrimaries.total).toBe(1);

    // The copy is stopped: its server's next report no longer lists it, the instance is marked stopped.
    await copy.remove();
    await send(copyHost, [await collectInstance({ connectionString: t.lab.instances.find((i) => i.server === copyHost)!.dsn })]);
    expect(healthy(await fleetHealth(t.db, null))).toBe(true);
  });

  it('an agent silent for more than three of its intervals, counted in its own interval', async () => {
    const [a, b] = t.lab.instances.filter((i) => i.environment === 'production' && !isOpsTestHerd(i.environment, i.herd));
    await send(b!.server, [await collectInstance({ connectionString: b!.dsn })], 300);
    // Ten minutes without a report from either: a reports every minute, b every five.
    const quiet = (host: string, minutes: number) =>
      t.db.execute(sql`UPDATE servers SET last_seen_at = now() - make_interval(mins => ${minutes}) WHERE hostname = ${host}`);
    await quiet(a!.server, 10);
    await quiet(b!.server, 10);
    const h = await fleetHealth(t.db, null);
    expect(h.silent.rows.map((s) => s.hostname)).toEqual([a!.server]);
    expect(h.silent.rows[0]).toMatchObject({ environment: 'production', intervalSeconds: 60 });
    expect(h.silent.rows[0]!.silentSeconds).toBeGreaterThanOrEqual(595);
    expect(h.silent.rows[0]!.silentSeconds).toBeLessThan(700);
    // Sixteen minutes: b has now missed three of its intervals too.
    await quiet(b!.server, 16);
    expect((await fleetHealth(t.db, null)).silent.rows.map((s) => s.hostname)).toEqual([b!.server, a!.server]);
    expect(SILENT_AFTER_INTERVALS).toBe(3);
    // Counted from the time asked about: an hour on, every agent that reported is silent.
    expect((await fleetHealth(t.db, null, { now: new Date(Date.now() + 3600_000) })).silent.total).toBeGreaterThan(2);
    // The herd page lists the silent servers of its members only; staging viewers do not see them.
    expect((await fleetHealth(t.db, null, { herdId: await herdIdOf('production', a!.herd) })).silent.rows.map((s) => s.hostname)).toContain(
      a!.server,
    );
    expect((await fleetHealth(t.db, [envId.get('staging')!])).silent.total).toBe(0);
    // A server without an agent token is never "silent": it has no agent.
    await t.db.update(servers).set({ agentTokenHash: null }).where(eq(servers.hostname, b!.server));
    expect((await fleetHealth(t.db, null)).silent.rows.map((s) => s.hostname)).toEqual([a!.server]);
    tokens.set(b!.server, await createAgentToken(t.db, serverId.get(b!.server)!, { id: null, username: 'admin' }));
    await send(b!.server, [await collectInstance({ connectionString: b!.dsn })]);
    // a reports again: no longer silent.
    await send(a!.server, [await collectInstance({ connectionString: a!.dsn })]);
    expect(healthy(await fleetHealth(t.db, null))).toBe(true);
  });

  it('a replica whose upstream is in another herd (placed there by hand), hiding the other herd where it may not be seen', async () => {
    const r = t.lab.instances.find((i) => i.environment === 'production' && i.role === 'replica' && !isOpsTestHerd(i.environment, i.herd))!;
    // An admin moves the replica into a staging herd: it still streams from its production primary.
    const wrong = await herdIdOf('staging', stagingPrimary().herd);
    const [row] = await t.db
      .update(instances)
      .set({ herdId: wrong })
      .where(eq(instances.serverId, serverId.get(r.server)!))
      .returning();
    const h = await fleetHealth(t.db, null);
    expect(h.foreignUpstreams.total).toBe(1);
    expect(h.foreignUpstreams.rows[0]).toMatchObject({
      id: row!.id,
      label: `${r.server}:${r.port}`,
      herdId: wrong,
      herd: `staging/${stagingPrimary().herd}`,
      upstream: `${r.upstream!}:${t.lab.instances.find((i) => i.server === r.upstream)!.port}`,
      upstreamHerd: `production/${r.herd}`,
    });
    const stagingOnly = await fleetHealth(t.db, [envId.get('staging')!]);
    expect(stagingOnly.foreignUpstreams.rows[0]!.upstreamHerd).toBeNull();
    expect((await fleetHealth(t.db, [envId.get('production')!])).foreignUpstreams.total).toBe(0);
    // Its agent's next report puts it back in the herd its system identifier names.
    await send(r.server, [await collectInstance({ connectionString: r.dsn })]);
    expect(await fleetHealth(t.db, null)).toMatchObject({
      foreignUpstreams: { total: 0 },
      twoPrimaries: { total: 0 },
      silent: { total: 0 },
    });
  });

  it('an agent on a staging server naming a production herd\u2019s system identifier: held as a conflict, not merged, audited once, shown to both environments\u2019 viewers', async () => {
    const prod = t.lab.instances.find(
      (i) => i.environment === 'production' && i.role === 'primary' && !isOpsTestHerd(i.environment, i.herd),
    )!;
    const stagingHost = t.lab.instances.find(
      (i) => i.environment === 'staging' && i.role === 'replica' && !isOpsTestHerd(i.environment, i.herd),
    )!;
    const prodHerd = await herdIdOf('production', prod.herd);
    const members = async () =>
      (
        await t.db
          .select({ id: instances.id, serverId: instances.serverId, port: instances.port })
          .from(instances)
          .where(eq(instances.herdId, prodHerd))
      )
        .map((m) => `${m.serverId}:${m.port}`)
        .sort();
    const before = await members();
    const copy = { ...(await collectInstance({ connectionString: prod.dsn })), port: 7777, dataDirectory: '/srv/copy-of-production' };
    const own = await collectInstance({ connectionString: stagingHost.dsn });
    await send(stagingHost.server, [own, copy]);
    await send(stagingHost.server, [own, copy]); // seen again: one conflict, audited once
    expect(await members()).toEqual(before);
    expect(
      await t.db.$count(instances, sql`${instances.serverId} = ${serverId.get(stagingHost.server)!} AND ${instances.port} = 7777`),
    ).toBe(0);
    const all = await fleetHealth(t.db, null);
    expect(all.conflicts.rows).toEqual([
      expect.objectContaining({
        label: `${stagingHost.server}:7777`,
        serverEnvironment: 'staging',
        herd: `production/${prod.herd}`,
        herdId: prodHerd,
      }),
    ]);
    expect(healthy(all)).toBe(false);
    // A staging-only viewer sees it, without the production herd's name; the production herd's page shows it.
    const staging = await fleetHealth(t.db, [envId.get('staging')!]);
    expect(staging.conflicts.rows).toEqual([expect.objectContaining({ label: `${stagingHost.server}:7777`, herd: null })]);
    expect((await fleetHealth(t.db, null, { herdId: prodHerd })).conflicts.total).toBe(1);
    expect(
      await t.db.$count(auditEntries, sql`${auditEntries.action} = 'agent.conflict' AND ${auditEntries.objectId} = ${String(prodHerd)}`),
    ).toBe(1);
    // A switchover plan of the production herd does not list it.
    const plan = await planOperation(t.db, SYSTEM_ACCESS, switchoverAction, [prodHerd]);
    expect(JSON.stringify(plan.targets)).not.toContain(':7777');
    // Once its agent no longer reports it, the conflict is over.
    await send(stagingHost.server, [own]);
    expect((await fleetHealth(t.db, null)).conflicts.total).toBe(0);
  });
});
