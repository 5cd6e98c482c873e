// The ingest queue: reports arriving together are written in one statement with the same outcome as
// one by one; a server's second report waits for its first; a report that cannot be written fails
// alone; a new system identifier named by two reports of one batch makes one herd.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, herds, instances, servers } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';
import { collectInstance } from '@/lib/agent/collect';
import { ingestReports, UNASSIGNED_ENVIRONMENT, type AgentServer } from './ingest';
import { IngestQueue } from './ingest-batcher';
import type { Report } from '@/lib/agent/report';

let t: TestDb;
const serverOf = new Map<string, AgentServer>();
const reportOf = new Map<string, Report>();
const stable = () => t.lab.instances.filter((i) => !isOpsTestHerd(i.environment, i.herd));

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab, { instances: false });
  for (const s of await t.db.select({ id: servers.id, hostname: servers.hostname, address: servers.address }).from(servers))
    serverOf.set(s.hostname, s);
  for (const i of stable()) {
    reportOf.set(i.server, {
      format: 1,
      agentVersion: 'test',
      hostname: i.server,
      observedAt: new Date().toISOString(),
      intervalSeconds: 60,
      instances: [await collectInstance({ connectionString: i.dsn })],
    });
  }
});
afterAll(async () => ifAssigned(t)?.close());

/** The row of the lab instance on `server` (the server may hold others the tests report). */
const rowOf = async (server: string) => {
  const port = t.lab.instances.find((i) => i.server === server)!.port;
  return (
    await t.db
      .select()
      .from(instances)
      .where(sql`${instances.serverId} = ${serverOf.get(server)!.id} AND ${instances.port} = ${port}`)
  )[0];
};

describe('the ingest queue', () => {
  it('writes reports that arrive together in fewer statements, each with its own result', async () => {
    const q = new IngestQueue(t.db, { writers: 1 });
    const results = await Promise.all(stable().map((i) => q.submit(serverOf.get(i.server)!, reportOf.get(i.server)!)));
    expect(results.every((r) => r.created === 1 && r.updated === 0 && r.stopped === 0)).toBe(true);
    expect(q.stats.reports).toBe(stable().length);
    // What they created is counted (the console's report server analyzes the inventory when it grows).
    expect(q.stats.created).toBe(stable().length + results.reduce((n, r) => n + r.herdsCreated, 0));
    // The first goes alone (the queue was idle), the rest arrive while it is written: one more statement.
    expect(q.stats.statements).toBe(2);
    for (const i of stable()) {
      const [row] = await t.db
        .select({ role: instances.role, herd: herds.name, state: instances.state })
        .from(instances)
        .innerJoin(herds, eq(herds.id, instances.herdId))
        .where(eq(instances.serverId, serverOf.get(i.server)!.id));
      expect(row, i.server).toEqual({ role: i.role, herd: i.herd, state: 'running' });
    }
    // Upstreams of replicas written in the same batch as their primary come with the next report.
    await Promise.all(
      stable().map((i) => q.submit(serverOf.get(i.server)!, { ...reportOf.get(i.server)!, observedAt: new Date().toISOString() })),
    );
    for (const i of stable().filter((x) => x.upstream)) {
      expect((await rowOf(i.server))!.upstreamInstanceId, i.server).toBe((await rowOf(i.upstream!))!.id);
    }
  });

  it('holds a server\u2019s second report until its first is written: the later one wins', async () => {
    const q = new IngestQueue(t.db, { writers: 2 });
    const i = stable().find((x) => x.role === 'replica')!;
    const s = serverOf.get(i.server)!;
    const [first, second] = await Promise.all([
      q.submit(s, { ...reportOf.get(i.server)!, observedAt: new Date().toISOString() }),
      q.submit(s, { ...reportOf.get(i.server)!, observedAt: new Date().toISOString(), instances: [] }),
    ]);
    expect(first).toMatchObject({ stopped: 0 });
    // The later, empty report was written after the first: its silence is checked over Postgres, which answers.
    expect(second).toMatchObject({ stopped: 0 });
    expect(q.stats.statements).toBe(2);
    expect((await rowOf(i.server))!.state).toBe('running');
    await q.submit(s, { ...reportOf.get(i.server)!, observedAt: new Date().toISOString() });
    expect((await rowOf(i.server))!.state).toBe('running');
  });

  it('fails only the report that cannot be written (its server deleted meanwhile); the batch\u2019s others are written', async () => {
    const q = new IngestQueue(t.db, { writers: 1 });
    const [a, b, c, d] = stable();
    // A server the admin deleted after its agent's token was checked.
    const [gone] = await t.db
      .insert(servers)
      .values({
        hostname: 'db-gone.lab.internal',
        environmentId: (await t.db.select().from(servers).where(eq(servers.hostname, a!.server)))[0]!.environmentId,
      })
      .returning();
    await t.db.delete(servers).where(eq(servers.id, gone!.id));
    const goneReport = {
      ...reportOf.get(b!.server)!,
      hostname: gone!.hostname,
      instances: reportOf.get(b!.server)!.instances.map((x) => ({ ...x, port: 6543 })),
    };
    const at = new Date(Date.now() + 1000);
    const stamped = (server: string) => ({ ...reportOf.get(server)!, observedAt: at.toISOString() });
    const settled = await Promise.allSettled([
      q.submit(serverOf.get(a!.server)!, stamped(a!.server)),
      q.submit(serverOf.get(c!.server)!, stamped(c!.server)),
      q.submit({ id: gone!.id, hostname: gone!.hostname }, goneReport),
      q.submit(serverOf.get(d!.server)!, stamped(d!.server)),
    ]);
    expect(settled.map((x) => x.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(String((settled[2] as PromiseRejectedResult).reason)).toMatch(/foreign key/);
    // Three statements written: the first report alone; the other three failed together, and the two
    // that could be written were then written one by one.
    expect(q.stats).toEqual({ reports: 3, statements: 3, created: 0 });
    for (const x of [a, c, d]) expect((await rowOf(x!.server))!.lastObservedAt, x!.server).toEqual(at);
    expect(await t.db.select().from(instances).where(eq(instances.port, 6543))).toEqual([]);
  });

  it('makes one herd for a new system identifier that two reports of a batch name', async () => {
    const [a, b] = stable().filter((x) => x.role === 'replica');
    const sysid = '7999999999999999999';
    const moved = (server: string, port: number): Report => ({
      ...reportOf.get(server)!,
      instances: reportOf.get(server)!.instances.map((x) => ({ ...x, port, systemIdentifier: sysid })),
    });
    const results = await ingestReports(t.db, [
      { server: serverOf.get(a!.server)!, report: moved(a!.server, 7001) },
      { server: serverOf.get(b!.server)!, report: moved(b!.server, 7002) },
    ]);
    expect(results.map((r) => r.herdsCreated)).toEqual([1, 0]);
    expect(results.map((r) => r.created)).toEqual([1, 1]);
    const made = await t.db.select().from(herds).where(eq(herds.systemIdentifier, sysid));
    expect(made).toHaveLength(1);
    expect(made[0]!.name).toBe(`pg-${sysid}`);
    const members = await t.db
      .select({ port: instances.port })
      .from(instances)
      .where(eq(instances.herdId, made[0]!.id))
      .orderBy(instances.port);
    expect(members).toEqual([{ port: 7001 }, { port: 7002 }]);
    const audit = await t.db
      .select()
      .from(auditEntries)
      .where(sql`${auditEntries.action} = 'agent.create' AND ${auditEntries.objectLabel} = ${`${UNASSIGNED_ENVIRONMENT}/pg-${sysid}`}`);
    expect(audit).toHaveLength(1);
    // The real instance on those servers was not in the report: observed over Postgres, it answers and stays running.
    expect((await rowOf(a!.server))!.state).toBe('running');
  });
});
