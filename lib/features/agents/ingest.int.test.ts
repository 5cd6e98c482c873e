// Real reports: each lab server's instance read the way the agent reads it, ingested into an empty
// inventory that knows only the servers. Herds, roles, upstreams and LSNs are checked against the
// instances themselves; the same report twice changes nothing; bad reports are refused whole.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, environments, herds, instances, postgresBuilds, servers } from '@/db/schema';
import { lsnToNumber } from '@/lib/adapters/format/lsn';
import { query } from '@/lib/lab/postgres';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';
import { collectInstance } from '@/lib/agent/collect';
import {
  createAgentToken,
  ingestReport,
  namesServer,
  receiveReport,
  serverForToken,
  UNASSIGNED_ENVIRONMENT,
  type AgentServer,
} from './ingest';
import { MAX_INSTANCES, readReport, type InstanceReport, type Report } from '@/lib/agent/report';

let t: TestDb;
const serverOf = new Map<string, AgentServer>();
const report = (instances: InstanceReport[], observedAt = new Date().toISOString()): Report => ({
  format: 1,
  agentVersion: 'test',
  hostname: 'h',
  observedAt,
  intervalSeconds: 60,
  instances,
});
const everything = async () => ({
  herds: await t.db.select().from(herds).orderBy(herds.id),
  instances: await t.db.select().from(instances).orderBy(instances.id),
});

beforeAll(async () => {
  t = await freshDatabase();
  // The servers are registered (an admin does it, with their agent tokens); nothing else is.
  const [hosts] = await t.db.insert(environments).values({ name: 'lab-hosts' }).returning();
  for (const i of t.lab.instances) {
    const [s] = await t.db
      .insert(servers)
      .values({ hostname: i.server, environmentId: hosts!.id, address: i.address, site: i.site })
      .returning({ id: servers.id, hostname: servers.hostname, address: servers.address });
    serverOf.set(i.server, s!);
  }
});
afterAll(async () => ifAssigned(t)?.close());

describe('ingest of real reports', () => {
  const reports = new Map<string, Report>();

  it('creates the fleet from what the instances say: herds by system identifier, roles, upstreams, LSNs', async () => {
    const stable = t.lab.instances.filter((i) => !isOpsTestHerd(i.environment, i.herd));
    for (const i of t.lab.instances) reports.set(i.server, report([await collectInstance({ connectionString: i.dsn })]));
    // Agents report in any order: a replica reported before the instance it streams from gets its
    // upstream on its next report. Two rounds, as two intervals of a fleet's agents.
    for (let round = 0; round < 2; round++) {
      for (const i of t.lab.instances) await ingestReport(t.db, serverOf.get(i.server)!, reports.get(i.server)!);
    }

    const [unassigned] = await t.db.select().from(environments).where(eq(environments.name, UNASSIGNED_ENVIRONMENT));
    const hs = await t.db.select().from(herds);
    expect(hs.every((h) => h.environmentId === unassigned!.id)).toBe(true);
    expect(hs).toHaveLength(new Set(t.lab.instances.map((i) => `${i.environment}/${i.herd}`)).size);
    for (const i of stable) {
      const [real] = await query<{ sysid: string; rec: boolean }>(
        i.dsn,
        'SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid, pg_is_in_recovery() AS rec',
      );
      const [row] = await t.db
        .select({
          role: instances.role,
          state: instances.state,
          herdSysid: herds.systemIdentifier,
          lsn: instances.lsn,
          upstream: instances.upstreamInstanceId,
          lag: instances.lagBytes,
          dataDirectory: instances.dataDirectory,
          version: instances.pgVersion,
        })
        .from(instances)
        .innerJoin(herds, eq(instances.herdId, herds.id))
        .where(eq(instances.serverId, serverOf.get(i.server)!.id));
      expect(row, i.server).toMatchObject({
        role: i.role,
        state: 'running',
        herdSysid: real!.sysid,
        dataDirectory: i.dataDirectory,
        version: i.version,
      });
      expect(real!.rec).toBe(i.role === 'replica');
      const sent = reports.get(i.server)!.instances[0];
      expect(row!.lsn).toBe(lsnToNumber((i.role === 'primary' ? sent!.currentLsn : sent!.replayedLsn)!));
      if (i.upstream) {
        const [up] = await t.db
          .select({ id: instances.id, lsn: instances.lsn })
          .from(instances)
          .where(eq(instances.serverId, serverOf.get(i.upstream)!.id));
        expect(row!.upstream, `${i.server} streams from ${i.upstream}`).toBe(up!.id);
        // Lag: behind what its primary last reported (the lab's replicas are direct ones).
        expect(row!.lag, i.server).toBe(Math.max(up!.lsn! - row!.lsn!, 0));
      } else {
        expect(row!.upstream).toBeNull();
        expect(row!.lag).toBe(0);
      }
    }
    // Members of one herd share it; different herds do not.
    const byHerd = new Map<string, Set<number>>();
    for (const i of t.lab.instances) {
      const [r] = await t.db
        .select({ herd: instances.herdId })
        .from(instances)
        .where(eq(instances.serverId, serverOf.get(i.server)!.id));
      byHerd.set(`${i.environment}/${i.herd}`, (byHerd.get(`${i.environment}/${i.herd}`) ?? new Set()).add(r!.herd));
    }
    expect([...byHerd.values()].every((s) => s.size === 1)).toBe(true);
    expect(new Set([...byHerd.values()].map((s) => [...s][0])).size).toBe(byHerd.size);
    const created = await t.db.select().from(auditEntries).where(eq(auditEntries.action, 'agent.create'));
    expect(created.filter((e) => e.objectType === 'instances')).toHaveLength(t.lab.instances.length);
  });

  it('changes nothing when the same reports come again', async () => {
    const before = await everything();
    for (const i of t.lab.instances) {
      expect(await ingestReport(t.db, serverOf.get(i.server)!, reports.get(i.server)!)).toEqual({
        created: 0,
        updated: 0,
        stopped: 0,
        herdsCreated: 0,
        // What the server holds, told back to its agent.
        dataDirectories: [i.dataDirectory],
      });
    }
    expect(await everything()).toEqual(before);
  });

  it('takes an agent\u2019s silence about an instance for nothing: what Postgres answers sets its state', async () => {
    const i = t.lab.instances.find((x) => x.role === 'replica' && !isOpsTestHerd(x.environment, x.herd))!;
    const s = serverOf.get(i.server)!;
    // The server in its lab environment, whose credentials pgherd has (this database's fixture has none).
    const [was] = await t.db.select({ env: servers.environmentId }).from(servers).where(eq(servers.id, s.id));
    const [env] = await t.db.insert(environments).values({ name: i.environment }).returning({ id: environments.id });
    await t.db.update(servers).set({ environmentId: env!.id }).where(eq(servers.id, s.id));
    const [row] = await t.db.select().from(instances).where(eq(instances.serverId, s.id));
    // Beside it on the same server, a cluster the inventory has at a port where nothing listens.
    const [gone] = await t.db
      .insert(instances)
      .values({
        herdId: row!.herdId,
        serverId: s.id,
        port: 64999,
        dataDirectory: '/gone',
        pgVersion: row!.pgVersion,
        role: 'replica',
        state: 'running',
      })
      .returning({ id: instances.id });
    // An agent that sees neither (a socket directory it does not look in): the one that answers stays
    // running, the one whose port refuses connections is stopped; neither is deleted.
    const stateOf = async (id: number) => (await t.db.select({ s: instances.state }).from(instances).where(eq(instances.id, id)))[0]!.s;
    try {
      const r = await ingestReport(t.db, s, report([]));
      expect([await stateOf(row!.id), await stateOf(gone!.id)]).toEqual(['running', 'stopped']);
      expect(r).toMatchObject({ stopped: 1 });
    } finally {
      await t.db.delete(instances).where(eq(instances.id, gone!.id));
      await t.db.update(servers).set({ environmentId: was!.env }).where(eq(servers.id, s.id));
    }
    expect(await ingestReport(t.db, s, { ...reports.get(i.server)!, observedAt: new Date().toISOString() })).toMatchObject({ stopped: 0 });
    expect(await stateOf(row!.id)).toBe('running');
  });

  it('keeps a restored copy in its restored herd, and leaves out a cluster a restore is still laying down', async () => {
    // A restored copy shares its source's system identifier: on a server of its own, registered in a
    // restored herd. Its agent reports it (and, beside it, a drill's copy whose claim is still open).
    const source = t.lab.instances.find((i) => i.role === 'primary' && !isOpsTestHerd(i.environment, i.herd))!;
    const [sourceRow] = await t.db
      .select()
      .from(instances)
      .where(eq(instances.serverId, serverOf.get(source.server)!.id));
    const [env] = await t.db.select().from(environments).where(eq(environments.name, 'lab-hosts'));
    const [scratch] = await t.db
      .insert(servers)
      .values({ hostname: 'scratch-ingest', environmentId: env!.id, address: '127.0.99.230' })
      .returning({ id: servers.id, hostname: servers.hostname, address: servers.address });
    const [restored] = await t.db
      .insert(herds)
      .values({ environmentId: env!.id, name: 'copy', restoredFromHerdId: sourceRow!.herdId, restoredTo: 'latest' })
      .returning();
    const [copy] = await t.db
      .insert(instances)
      .values({
        herdId: restored!.id,
        serverId: scratch!.id,
        port: 26001,
        dataDirectory: '/srv/r/copy/data',
        role: 'primary',
        state: 'running',
      })
      .returning();
    const [op] = await t.db
      .execute<{ id: number }>(
        sql`INSERT INTO operations (action, plan_digest, requested_by_name) VALUES ('restore-drill', 'x', 'test') RETURNING id`,
      )
      .then((r) => r.rows);
    const [target] = await t.db
      .execute<{ id: number }>(sql`INSERT INTO operation_targets (operation_id, label) VALUES (${op!.id}, 'drill') RETURNING id`)
      .then((r) => r.rows);
    await t.db.execute(sql`
      INSERT INTO restore_claims (target_id, server_id, folder, data_directory, pg_version)
      VALUES (${target!.id}, ${scratch!.id}, '/srv/r/drill', '/srv/r/drill/data', 15)`);
    const sent = reports.get(source.server)!.instances[0]!;
    await ingestReport(
      t.db,
      scratch!,
      report([
        { ...sent, port: 26001, dataDirectory: '/srv/r/copy/data' },
        { ...sent, port: 26002, dataDirectory: '/srv/r/drill/data' },
      ]),
    );
    const rows = await t.db.select().from(instances).where(eq(instances.serverId, scratch!.id));
    expect(rows.map((r) => [r.port, r.herdId])).toEqual([[26001, restored!.id]]);
    expect((await t.db.select().from(instances).where(eq(instances.id, copy!.id)))[0]!.herdId).toBe(restored!.id);
    // The source herd keeps its one primary.
    const sourceMembers = await t.db.select().from(instances).where(eq(instances.herdId, sourceRow!.herdId));
    expect(sourceMembers.filter((m) => m.role === 'primary')).toHaveLength(1);
  });

  it('records the version and build each instance runs, and the builds a host has; a report without the list keeps them', async () => {
    const i = t.lab.instances.find((x) => x.binDir) ?? t.lab.instances[0]!;
    const srv = serverOf.get(i.server)!;
    const r = report([await collectInstance({ connectionString: i.dsn })]);
    const [real] = await query<{ v: number }>(i.dsn, `SELECT current_setting('server_version_num')::int AS v`);
    const builds = [
      {
        binDir: '/usr/lib/postgresql/15/bin',
        versionNum: 150018,
        versionText: 'postgres (PostgreSQL) 15.18',
        extensions: { plpgsql: '1.0' },
      },
      {
        binDir: '/opt/pg/15.17/bin',
        versionNum: 150017,
        versionText: 'postgres (PostgreSQL) 15.17',
        extensions: {} as Record<string, string>,
      },
    ];
    await ingestReport(t.db, srv, { ...r, instances: r.instances.map((x) => ({ ...x, binDir: '/opt/pg/15.17/bin' })), builds });
    const [row] = await t.db.select().from(instances).where(eq(instances.serverId, srv.id));
    expect(row).toMatchObject({ serverVersionNum: real!.v, binDir: '/opt/pg/15.17/bin' });
    const listed = async () =>
      (await t.db.select().from(postgresBuilds).where(eq(postgresBuilds.serverId, srv.id))).map((b) => [b.binDir, b.versionNum]).sort();
    expect(await listed()).toEqual([
      ['/opt/pg/15.17/bin', 150017],
      ['/usr/lib/postgresql/15/bin', 150018],
    ]);
    // The next report lists one build: the other is gone. One without a list (an older agent) keeps it.
    await ingestReport(t.db, srv, { ...r, builds: builds.slice(0, 1) });
    expect(await listed()).toEqual([['/usr/lib/postgresql/15/bin', 150018]]);
    const [b] = await t.db.select().from(postgresBuilds).where(eq(postgresBuilds.serverId, srv.id));
    expect(b!.extensions).toEqual({ plpgsql: '1.0' });
    await ingestReport(t.db, srv, r);
    expect(await listed()).toEqual([['/usr/lib/postgresql/15/bin', 150018]]);
    // A report that names no build for the instance leaves the one on record.
    await ingestReport(t.db, srv, { ...r, instances: r.instances.map(({ binDir: _, ...x }) => x) });
    const [kept] = await t.db.select().from(instances).where(eq(instances.serverId, srv.id));
    expect(kept!.binDir).toBe(r.instances[0]!.binDir ?? '/opt/pg/15.17/bin');
  });

  it('stores strings with HTML and SQL as data', async () => {
    const s = serverOf.get(t.lab.instances[0]!.server)!;
    const sent = reports.get(t.lab.instances[0]!.server)!;
    const odd = `/var/lib/<script>alert(1)</script>'; DROP TABLE instances; --`;
    await ingestReport(t.db, s, { ...sent, instances: [{ ...sent.instances[0]!, dataDirectory: odd }] });
    expect((await t.db.select().from(instances).where(eq(instances.serverId, s.id)))[0]!.dataDirectory).toBe(odd);
    await ingestReport(t.db, s, sent);
  });
});

describe('refusals: the whole report, with what is wrong', () => {
  const good = () => ({
    format: 1,
    agentVersion: '1',
    hostname: 'db-1',
    observedAt: new Date().toISOString(),
    instances: [{ port: 5432, dataDirectory: '/d', state: 'stopped', majorVersion: 15 }],
  });

  it('refuses malformed JSON, wrong types, unknown fields, duplicates and reports over the limits', () => {
    expect(readReport('{"format":1,')).toMatchObject({ ok: false, status: 400 });
    expect(readReport(JSON.stringify(good()))).toMatchObject({ ok: true });
    const wrongType = readReport(JSON.stringify({ ...good(), instances: [{ ...good().instances[0], port: '5432' }] }));
    expect(wrongType).toMatchObject({ ok: false, status: 422, details: [{ path: 'instances.0.port' }] });
    expect(readReport(JSON.stringify({ ...good(), extra: 1 }))).toMatchObject({ ok: false, status: 422 });
    // A build is an absolute path of one line and a version server_version_num could be.
    const build = { binDir: '/usr/lib/postgresql/15/bin', versionNum: 150018, versionText: 'x' };
    expect(readReport(JSON.stringify({ ...good(), builds: [build] }))).toMatchObject({ ok: true });
    for (const bad of [{ binDir: 'bin' }, { binDir: '/a\nb' }, { versionNum: 15 }, { extra: 1 }])
      expect(readReport(JSON.stringify({ ...good(), builds: [{ ...build, ...bad }] }))).toMatchObject({ ok: false, status: 422 });
    expect(readReport(JSON.stringify({ ...good(), instances: [{ ...good().instances[0], binDir: '../x' }] }))).toMatchObject({
      ok: false,
      status: 422,
    });
    const running = { port: 5432, dataDirectory: '/d', state: 'running', majorVersion: 15 };
    expect(readReport(JSON.stringify({ ...good(), instances: [running] }))).toMatchObject({
      ok: false,
      details: [
        { path: 'instances.0.systemIdentifier', message: 'required for a running instance' },
        { path: 'instances.0.inRecovery' },
        { path: 'instances.0.timeline' },
      ],
    });
    expect(readReport(JSON.stringify({ ...good(), instances: [good().instances[0], good().instances[0]] }))).toMatchObject({
      ok: false,
      details: [{ message: 'port 5432 is reported twice' }],
    });
    const many = Array.from({ length: MAX_INSTANCES + 1 }, (_, n) => ({ ...good().instances[0], port: 5000 + n }));
    expect(readReport(JSON.stringify({ ...good(), instances: many }))).toMatchObject({
      ok: false,
      status: 422,
      details: [{ path: 'instances', message: `at most ${MAX_INSTANCES} instances` }],
    });
    expect(readReport(JSON.stringify({ ...good(), agentVersion: 'x'.repeat(300 * 1024) }))).toMatchObject({ ok: false, status: 413 });
    expect(
      readReport(JSON.stringify({ ...good(), instances: [{ ...good().instances[0], currentLsn: "0/0'; DROP TABLE x" }] })),
    ).toMatchObject({ ok: false, status: 422 });
    // A data directory that would read differently on screen: a control character, a direction override, a zero-width space.
    for (const dataDirectory of ['/srv/a\u0007b', '/srv/\u202Eniam', '/srv/ma\u200Bin', '/srv/a\rb']) {
      expect(
        readReport(JSON.stringify({ ...good(), instances: [{ ...good().instances[0], dataDirectory }] })),
        JSON.stringify(dataDirectory),
      ).toMatchObject({
        ok: false,
        status: 422,
        details: [
          { path: 'instances.0.dataDirectory', message: 'an absolute path without control, invisible or text-direction characters' },
        ],
      });
    }
  });

  it('knows a server only by its current token', async () => {
    const s = serverOf.get(t.lab.instances[0]!.server)!;
    const first = await createAgentToken(t.db, s.id, { id: null, username: 'admin' });
    expect(await serverForToken(t.db, first)).toMatchObject(s);
    const second = await createAgentToken(t.db, s.id, { id: null, username: 'admin' });
    expect(await serverForToken(t.db, first)).toBeNull();
    expect(await serverForToken(t.db, second)).toMatchObject(s);
    expect(await serverForToken(t.db, 'pgha_short')).toBeNull();
    const [row] = await t.db.select({ hash: servers.agentTokenHash }).from(servers).where(eq(servers.id, s.id));
    expect(row!.hash).not.toContain(second.slice(5, 20));
    const [audited] = await t.db
      .select()
      .from(auditEntries)
      .where(sql`${auditEntries.action} = 'agent.token'`);
    expect(audited!.changes).toEqual({ agentToken: ['(hidden)', '(new)'] });
  });

  it('refuses through the endpoint\u2019s door, writing nothing: no token, a rotated token, a token for another server, a bad report', async () => {
    const [a, b] = t.lab.instances.filter((i) => !isOpsTestHerd(i.environment, i.herd));
    const sa = serverOf.get(a!.server)!;
    const sb = serverOf.get(b!.server)!;
    const tokenA = await createAgentToken(t.db, sa.id, { id: null, username: 'admin' });
    const oldB = await createAgentToken(t.db, sb.id, { id: null, username: 'admin' });
    const tokenB = await createAgentToken(t.db, sb.id, { id: null, username: 'admin' });
    // What b's agent sends, with b's instance: facts about b.
    const fromB = { ...report([await collectInstance({ connectionString: b!.dsn })]), hostname: b!.server };
    const send = (token: string | null, body: unknown) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      return receiveReport(t.db, {
        authorization: token === null ? null : `Bearer ${token}`,
        contentLength: Buffer.byteLength(text),
        text: async () => text,
      });
    };
    const state = async () =>
      JSON.stringify({
        ...(await everything()),
        servers: await t.db
          .select({ id: servers.id, seen: servers.lastSeenAt, every: servers.agentIntervalSeconds })
          .from(servers)
          .orderBy(servers.id),
      });
    const before = await state();

    expect(await send(null, fromB)).toMatchObject({ status: 401 });
    expect(await send('Basic abc', fromB)).toMatchObject({ status: 401 });
    expect(await send(oldB, fromB)).toMatchObject({ status: 401, body: { error: 'unknown or rotated agent token' } });
    // a's token with b's report (a token file copied to the wrong host): refused, naming both.
    const crossed = await send(tokenA, fromB);
    expect(crossed.status).toBe(403);
    expect((crossed.body as { error: string }).error).toContain(
      `this token belongs to ${a!.server}, and the report comes from ${b!.server}`,
    );
    expect(await send(tokenB, '{"format":1,')).toMatchObject({ status: 400 });
    expect(await send(tokenB, { ...fromB, instances: [{ ...fromB.instances[0], port: 'x' }] })).toMatchObject({ status: 422 });
    expect(await send(tokenB, { ...fromB, agentVersion: 'x'.repeat(300 * 1024) })).toMatchObject({ status: 413 });
    // A load average that is not three non-negative numbers: refused, naming it.
    for (const bad of [
      [1, 2],
      [-1, 0, 0],
      ['1', 0, 0],
      [1, 2, 3, 4],
    ])
      expect(await send(tokenB, { ...fromB, loadAverage: bad }), JSON.stringify(bad)).toMatchObject({
        status: 422,
        body: { details: [expect.objectContaining({ path: expect.stringMatching(/^loadAverage/) })] },
      });
    // A report dated ahead of this server's clock (it would make old facts look new): refused, naming the field.
    const ahead = new Date(Date.now() + 3_600_000).toISOString();
    expect(await send(tokenB, { ...fromB, observedAt: ahead, loadAverage: [9, 9, 9] })).toMatchObject({
      status: 422,
      body: { details: [expect.objectContaining({ path: 'observedAt', message: expect.stringMatching(/ahead of this server's clock/) })] },
    });
    expect(await state()).toBe(before);

    // A report observed a while ago (held back by the network, say): its load average is as old as it is.
    const earlier = new Date(Date.now() - 20 * 60_000);
    expect(await send(tokenB, { ...fromB, observedAt: earlier.toISOString(), loadAverage: [3, 2, 1] })).toMatchObject({ status: 200 });
    const [old] = await t.db.select().from(servers).where(eq(servers.id, sb.id));
    expect([old!.loadAverage, old!.loadAverageAt!.getTime()]).toEqual([3, earlier.getTime()]);

    // b's own token: accepted, and the server's interval is kept for the silence count, its load for rules' conditions.
    expect(await send(tokenB, { ...fromB, intervalSeconds: 120, loadAverage: [1.5, 0.8, 0.25] })).toMatchObject({
      status: 200,
      // The clusters pgherd has on record there: the agent looks for their lock files too.
      body: { server: b!.server, dataDirectories: expect.arrayContaining([fromB.instances[0]!.dataDirectory]) },
    });
    const [row] = await t.db.select().from(servers).where(eq(servers.id, sb.id));
    expect(row!.agentIntervalSeconds).toBe(120);
    expect([row!.loadAverage, row!.loadAverageAt!.getTime() > Date.now() - 60_000]).toEqual([1.5, true]);
    expect(row!.lastSeenAt!.getTime()).toBeGreaterThan(Date.now() - 60_000);

    // The host's memory and cores, and each instance's configuration load time (what the settings pass
    // follows); an older agent's report without them leaves what is on record, an older load time too.
    const conf = fromB.instances[0]!.confLoadedAt!;
    expect(conf).toMatch(/^\d{4}-/);
    expect(await send(tokenB, { ...fromB, memoryMb: 16384, cpus: 8 })).toMatchObject({ status: 200 });
    const loaded = async () =>
      (await t.db.select({ c: instances.confLoadedAt }).from(instances).where(eq(instances.serverId, sb.id)))[0]!.c!.toISOString();
    expect(await loaded()).toBe(new Date(conf).toISOString());
    const { memoryMb: _m, cpus: _c, ...older } = fromB as typeof fromB & { memoryMb?: number; cpus?: number };
    const earlierConf = new Date(Date.parse(conf) - 3_600_000).toISOString();
    expect(await send(tokenB, { ...older, instances: fromB.instances.map((i) => ({ ...i, confLoadedAt: earlierConf })) })).toMatchObject({
      status: 200,
    });
    const [host] = await t.db.select().from(servers).where(eq(servers.id, sb.id));
    expect([host!.memoryMb, host!.cpus]).toEqual([16384, 8]);
    expect(await loaded()).toBe(new Date(conf).toISOString());
  });

  it('takes a host\u2019s short name, or the server\u2019s address, for the server\u2019s name; nothing else', () => {
    const s = { id: 1, hostname: 'db-1.example.com', address: '10.0.0.7' };
    for (const ok of ['db-1.example.com', 'DB-1.example.com.', 'db-1', '10.0.0.7']) expect(namesServer(s, ok), ok).toBe(true);
    for (const no of ['db-2', 'db-1.other.com', 'db-10.example.com', 'example.com', '10.0.0.8']) expect(namesServer(s, no), no).toBe(false);
    expect(namesServer({ id: 2, hostname: 'db-1' }, 'db-1.example.com')).toBe(true);
    expect(namesServer({ id: 3, hostname: '10.0.0.7' }, '10.0.0.8')).toBe(false);
  });
});
