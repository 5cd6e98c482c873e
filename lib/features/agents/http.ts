// The agents' report endpoint, POST /api/agent/v1/report, answered in one place for both ways in:
// the console's own server (lib/entry/web/server.ts) answers it before Next.js, and the Next route
// (app/api/agent/v1/report/route.ts) answers it where that server is not in front (next dev).
// Agents report every few seconds from every host: Next's per-request machinery (Web Request and
// Response objects, its router, async context) cost twice the report's own work, for an endpoint that
// renders nothing and needs none of it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createDb, isDatabaseUnavailable, type Db } from '@/db/client';
import { receiveReport } from './ingest';
import { IngestQueue } from './ingest-batcher';
import { MAX_REPORT_BYTES } from '@/lib/agent/report';
import { ingestResult, metrics } from '@/lib/adapters/metrics/registry';

export const AGENT_REPORT_PATH = '/api/agent/v1/report';

export interface Answer {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

/** The whole answer to one report (see receiveReport for what is refused and why), counted in the process's metrics. */
export async function answerReport(
  db: Db,
  queue: IngestQueue,
  req: { authorization: string | null; contentLength: number; text: () => Promise<string | null> },
): Promise<Answer> {
  const started = performance.now();
  let status = 500;
  try {
    const answer = await receiveReport(db, req, (server, report) => queue.submit(server, report));
    status = answer.status;
    return { status, body: answer.body, headers: {} };
  } catch (err) {
    // The agent sends again at its next interval (exit 5: server unavailable).
    if (isDatabaseUnavailable(err)) {
      status = 503;
      return {
        status,
        body: { error: "pgherd's database is unavailable; send again later", details: null },
        headers: { 'retry-after': '30' },
      };
    }
    throw err;
  } finally {
    const m = metrics();
    const result = ingestResult(status);
    m.ingestReports.inc({ result });
    m.ingestSeconds.observe({ result }, (performance.now() - started) / 1000);
  }
}

/** The body as text, or null once it passes `max` bytes (what is left is not read). */
export async function readCappedStream(req: IncomingMessage, max: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.byteLength;
    if (total > max) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Answers a report arriving at the console's own server; `log` hears of what failed unexpectedly. */
export async function serveReport(
  db: Db,
  queue: IngestQueue,
  req: IncomingMessage,
  res: ServerResponse,
  log: (event: string, fields: object) => void,
): Promise<void> {
  let answer: Answer;
  try {
    answer = await answerReport(db, queue, {
      authorization: req.headers.authorization ?? null,
      contentLength: Number(req.headers['content-length'] ?? 0),
      text: () => readCappedStream(req, MAX_REPORT_BYTES),
    });
  } catch (err) {
    log('agent.report.error', { error: err instanceof Error ? err.message : String(err) });
    answer = { status: 500, body: { error: 'internal error', details: null }, headers: {} };
  }
  const json = JSON.stringify(answer.body);
  // A body left unread (refused before reading it, or past the cap) is not waited for: the connection closes.
  const unread = !req.complete;
  res.writeHead(answer.status, {
    ...answer.headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
    ...(unread ? { connection: 'close' } : {}),
  });
  res.end(json);
}

/**
 * What the console's own server answers agents with: a pool and an ingest queue of its own (the app's
 * are in its bundle, which that server does not share), on connections that keep generic plans. They
 * run the same few named statements, whose plans do not depend on the values; Postgres's default kept
 * planning the ingest statement for every report, which took longer than running it (1.0 of 1.6 ms).
 * A generic plan made while the inventory was empty (a fleet's first reports) would walk every
 * instance for each replica's upstream until autovacuum's first analyze, a minute or more later: when
 * reports have created instances or herds, their statistics are taken again (which also makes the
 * plans again), at most every `analyzeEveryMs` and only while the inventory grows.
 */
export function agentReports(
  url: string,
  log: (event: string, fields: object) => void,
  opts: { pool?: number; writers?: number; analyzeEveryMs?: number } = {},
) {
  const { db, pool } = createDb(url, opts.pool ?? 4, {
    application_name: 'pgherd-agent-reports',
    options: '-c plan_cache_mode=force_generic_plan',
  });
  const queue = new IngestQueue(db, { writers: opts.writers ?? 2 });
  let analyzed = 0;
  const timer = setInterval(() => {
    const created = queue.stats.created;
    if (created === analyzed) return;
    analyzed = created;
    pool.query('ANALYZE instances, herds').catch((err: unknown) => log('agent.analyze.error', { error: String(err) }));
  }, opts.analyzeEveryMs ?? 2000);
  timer.unref();
  return {
    serve: (req: IncomingMessage, res: ServerResponse) => serveReport(db, queue, req, res, log),
    queue,
    async close() {
      clearInterval(timer);
      await pool.end();
    },
  };
}
