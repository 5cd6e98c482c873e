import { NextResponse, type NextRequest } from 'next/server';
import { getDb, isDatabaseUnavailable } from '@/db/client';
import { receiveReport } from '@/lib/agent/ingest';
import { ingestQueue } from '@/lib/agent/queue';
import { MAX_REPORT_BYTES } from '@/lib/agent/report';
import { readCapped } from '@/lib/api/body';

/**
 * POST /api/agent/v1/report, `Authorization: Bearer <the server's agent token>`: the token names the
 * server, so a report can only speak for its own. A report is refused whole (4xx, nothing written)
 * when it is too large, not JSON, does not fit the schema, or comes from another host. Accepted reports
 * go through the process's ingest queue, which writes those arriving together in one statement.
 */
export async function POST(req: NextRequest) {
  const db = getDb();
  const queue = ingestQueue(db);
  try {
    const { status, body } = await receiveReport(
      db,
      {
        authorization: req.headers.get('authorization'),
        contentLength: Number(req.headers.get('content-length') ?? 0),
        text: () => readCapped(req, MAX_REPORT_BYTES),
      },
      (server, report) => queue.submit(server, report),
    );
    return NextResponse.json(body, { status });
  } catch (err) {
    // The agent sends again at its next interval (exit 5: server unavailable).
    if (isDatabaseUnavailable(err))
      return NextResponse.json(
        { error: "pgherd's database is unavailable; send again later" },
        { status: 503, headers: { 'retry-after': '30' } },
      );
    throw err;
  }
}
