import { NextResponse, type NextRequest } from 'next/server';
import { getDb } from '@/db/client';
import { receiveReport } from '@/lib/agent/ingest';

/**
 * POST /api/agent/v1/report, `Authorization: Bearer <the server's agent token>`: the token names the
 * server, so a report can only speak for its own. A report is refused whole (4xx, nothing written)
 * when it is too large, not JSON, does not fit the schema, or comes from another host.
 */
export async function POST(req: NextRequest) {
  const { status, body } = await receiveReport(getDb(), {
    authorization: req.headers.get('authorization'),
    contentLength: Number(req.headers.get('content-length') ?? 0),
    text: () => req.text(),
  });
  return NextResponse.json(body, { status });
}
