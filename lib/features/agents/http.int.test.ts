// The agents' endpoint as the console's own server answers it (before Next): a real report written,
// refused ones writing nothing (an oversized body without a length is cut off at the cap), 503 while
// pgherd's database is away, and statistics taken again once reports grew the inventory.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environments, instances, servers } from '@/db/schema';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';
import { collectInstance } from '@/lib/agent/collect';
import { agentReports, AGENT_REPORT_PATH } from './http';
import { createAgentToken } from './ingest';
import { MAX_REPORT_BYTES } from '@/lib/agent/report';

let t: TestDb;
let reports: ReturnType<typeof agentReports>;
let server: http.Server;
let base: string;
let token: string;
let serverId: number;
let body: string;
const logged: string[] = [];

/** Listens with `serve` on a free port; returns its base URL. */
async function listen(
  serve: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>,
): Promise<{ s: http.Server; url: string }> {
  const s = http.createServer((req, res) => void serve(req, res));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { s, url: `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
}

/** POSTs `chunks` (no content-length when more than one: sent chunked), with the token when given. */
function post(url: string, chunks: string[], auth?: string): Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${AGENT_REPORT_PATH}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(auth ? { authorization: `Bearer ${auth}` } : {}),
        ...(chunks.length === 1 ? { 'content-length': Buffer.byteLength(chunks[0]!) } : {}),
      },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    // The server may close before it has read everything (that is the point of the cap).
    req.on('error', (err) => (req.writableEnded ? undefined : reject(err)));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

const rowsOfServer = async () =>
  (await t.db.select().from(instances).where(eq(instances.serverId, serverId)).orderBy(instances.id)).map((i) => ({
    ...i,
    lastObservedAt: null,
    updatedAt: null,
  }));

beforeAll(async () => {
  t = await freshDatabase();
  const lab = t.lab.instances.find((i) => !isOpsTestHerd(i.environment, i.herd) && i.role === 'primary');
  if (!lab) throw new Error('no lab primary outside the operations tests');
  const [env] = await t.db.insert(environments).values({ name: 'http-hosts' }).returning();
  const [s] = await t.db
    .insert(servers)
    .values({ hostname: lab.server, environmentId: env!.id, address: lab.address, site: lab.site })
    .returning();
  serverId = s!.id;
  token = await createAgentToken(t.db, serverId, { id: null, username: 'test' });
  body = JSON.stringify({
    format: 1,
    agentVersion: 'test',
    hostname: lab.server,
    observedAt: new Date().toISOString(),
    intervalSeconds: 60,
    instances: [await collectInstance({ connectionString: lab.dsn })],
  });
  reports = agentReports(t.url, (e, f) => logged.push(JSON.stringify({ e, ...f })), { analyzeEveryMs: 100 });
  ({ s: server, url: base } = await listen(reports.serve));
});
afterAll(async () => {
  server.close();
  await reports.close();
  await ifAssigned(t)?.close();
});

describe('the console server\u2019s agent endpoint', () => {
  it('writes a report; refuses whole, writing nothing, one without a token, one that is not JSON, and one past the cap sent without a length', async () => {
    const ok = await post(base, [body], token);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text)).toMatchObject({ created: 1, updated: 0 });
    expect(ok.headers['content-type']).toBe('application/json');
    const was = await rowsOfServer();
    expect(was).toHaveLength(1);

    expect((await post(base, [body])).status).toBe(401);
    expect((await post(base, [body], 'pgha_not-a-token')).status).toBe(401);
    expect((await post(base, ['{"format":1,'], token)).status).toBe(400);
    // Chunked, no content-length: read up to the cap, then refused, and the connection closed.
    const big = await post(base, [body.slice(0, -1), `,"pad":"${'x'.repeat(MAX_REPORT_BYTES)}"}`], token);
    expect(big.status).toBe(413);
    expect(big.headers.connection).toBe('close');
    expect(await rowsOfServer()).toEqual(was);
    expect(logged).toEqual([]);
  });

  it('takes the inventory\u2019s statistics again once reports created instances', async () => {
    // The first test's report created one: within a few of the 100 ms rounds, instances is analyzed.
    const analyzed = async () =>
      (await t.db.execute<{ at: string | null }>(sql`SELECT last_analyze AS at FROM pg_stat_user_tables WHERE relname = 'instances'`))
        .rows[0]?.at ?? null;
    const deadline = Date.now() + 10_000;
    while ((await analyzed()) === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await analyzed()).not.toBeNull();
  });

  it('answers 503 with a retry time while pgherd\u2019s database cannot be reached', async () => {
    const away = agentReports('postgres://postgres@127.0.0.1:1/pgherd', () => {});
    const { s, url } = await listen(away.serve);
    try {
      const res = await post(url, [body], token);
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('30');
    } finally {
      s.close();
      await away.close();
    }
  });
});
