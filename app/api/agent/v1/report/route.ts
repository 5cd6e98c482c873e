import { NextResponse, type NextRequest } from 'next/server';
import { getDb } from '@/db/client';
import { answerReport } from '@/lib/features/agents/http';
import { ingestQueue } from '@/lib/features/agents/ingest-batcher';
import { MAX_REPORT_BYTES } from '@/lib/agent/report';
import { readCapped } from '@/lib/features/api/body';

/**
 * POST /api/agent/v1/report, `Authorization: Bearer <the server's agent token>`: the token names the
 * server, so a report can only speak for its own. A report is refused whole (4xx, nothing written)
 * when it is too large, not JSON, does not fit the schema, or comes from another host. Accepted reports
 * go through the process's ingest queue, which writes those arriving together in one statement.
 * The console's own server answers this path before it reaches Next (answerReport); this route
 * answers it the same way where that server is not in front.
 */
export async function POST(req: NextRequest) {
  const db = getDb();
  const { status, body, headers } = await answerReport(db, ingestQueue(db), {
    authorization: req.headers.get('authorization'),
    contentLength: Number(req.headers.get('content-length') ?? 0),
    text: () => readCapped(req, MAX_REPORT_BYTES),
  });
  return NextResponse.json(body, { status, headers });
}
