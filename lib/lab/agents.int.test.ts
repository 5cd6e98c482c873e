// The demo's fleet is discovered, not seeded: the inventory is prepared as the demo prepares it (herds,
// servers, agent tokens; no instances), every lab server's agent reports over HTTP to the ingest
// endpoint's code, and the instances appear in their herds with the roles and upstreams the lab built.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environments, herds, instances, servers } from '@/db/schema';
import { fleetHealth } from '@/lib/features/agents/health';
import { receiveReport, UNASSIGNED_ENVIRONMENT } from '@/lib/features/agents/ingest';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';
import { reportAll, runLabAgents, writeLabAgents, type LabAgent } from './agents';
import { prepareDatabase } from './console';
import { waitFor } from '@/lib/testing/wait';

let t: TestDb;
let http: Server;
let url: string;
let tokens: Map<string, string>;
let agents: LabAgent[];
const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-lab-agents-'));

beforeAll(async () => {
  t = await freshDatabase();
  // The console's ingest endpoint, without Next: the same function behind the same URL.
  http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    const answer = async () => {
      const r = await receiveReport(t.db, {
        authorization: req.headers.authorization ?? null,
        contentLength: Number(req.headers['content-length'] ?? 0),
        text: async () => Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body));
    };
    req.on('end', () => void answer());
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  ({ agentTokens: tokens } = await prepareDatabase(
    { ...t.lab, database: { ...t.lab.database, url: t.url } },
    { username: 'admin', password: 'pw-for-the-test' },
    { discover: true },
  ));
});
afterAll(async () => {
  ifAssigned(http)?.close();
  await ifAssigned(t)?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the demo\u2019s agents', () => {
  it('start from an inventory of herds and servers with an agent token each, and no instance', async () => {
    expect(await t.db.select().from(instances)).toEqual([]);
    expect([...tokens.keys()].sort()).toEqual(t.lab.instances.map((i) => i.server).sort());
    agents = writeLabAgents({ ...t.lab, dir }, url, tokens, 5);
    expect(agents).toHaveLength(t.lab.instances.length);
    for (const a of agents) {
      expect(statSync(a.config.tokenFile).mode & 0o777).toBe(0o600);
      expect(a.config).toMatchObject({ server: url, hostname: a.server, intervalSeconds: 5, lsclusters: false });
    }
  });

  it('discover every lab instance in its herd, with the lab\u2019s roles and upstreams', async () => {
    for (let round = 0; round < 2; round++) expect(await reportAll(agents)).toEqual([]);
    const rows = await t.db
      .select({
        server: servers.hostname,
        herd: herds.name,
        env: environments.name,
        role: instances.role,
        state: instances.state,
        upstream: sql<
          string | null
        >`(SELECT s2.hostname FROM instances u JOIN servers s2 ON s2.id = u.server_id WHERE u.id = ${instances.upstreamInstanceId})`,
      })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .innerJoin(herds, eq(herds.id, instances.herdId))
      .innerJoin(environments, eq(environments.id, herds.environmentId));
    // Members of the herds other test files stop and restart meanwhile may be between the two (a stopped
    // instance names no system identifier, so no herd): every other instance is there, and nothing else is.
    const settled = t.lab.instances.filter((x) => !isOpsTestHerd(x.environment, x.herd));
    expect(rows.length).toBeGreaterThanOrEqual(settled.length);
    expect(rows.every((r) => t.lab.instances.some((i) => i.server === r.server))).toBe(true);
    for (const i of settled) {
      expect(
        rows.find((r) => r.server === i.server),
        i.server,
      ).toEqual({ server: i.server, herd: i.herd, env: i.environment, role: i.role, state: 'running', upstream: i.upstream });
    }
    expect(await t.db.select().from(environments).where(eq(environments.name, UNASSIGNED_ENVIRONMENT))).toEqual([]);
    const seen = await t.db
      .select({ at: servers.lastSeenAt, every: servers.agentIntervalSeconds })
      .from(servers)
      .where(sql`${servers.agentTokenHash} IS NOT NULL`);
    expect(seen.every((s) => s.at !== null && s.every === 5)).toBe(true);
    expect((await fleetHealth(t.db, null)).silent.total).toBe(0);
  });

  it('keep reporting every interval until stopped', async () => {
    const since = new Date();
    const loop = runLabAgents(agents, () => {});
    try {
      await waitFor(
        'every lab agent reporting again',
        async () => {
          const [r] = await t.db
            .select({ late: sql<number>`count(*) FILTER (WHERE ${servers.lastSeenAt} < ${since})::int` })
            .from(servers)
            .where(sql`${servers.agentTokenHash} IS NOT NULL`);
          return r!.late === 0 ? true : undefined;
        },
        30_000,
      );
    } finally {
      await loop.stop();
    }
  });
});
