import { NextResponse, type NextRequest } from 'next/server';
import { getDb } from '@/db/client';
import { ingestReport, serverForToken } from '@/lib/agent/ingest';
import { MAX_REPORT_BYTES, readReport } from '@/lib/agent/report';

const refuse = (status: number, error: string, details: unknown = null) => NextResponse.json({ error, details }, { status });

/**
 * POST /api/agent/v1/report, `Authorization: Bearer <the server's agent token>`: the token names the
 * server, so a report can only speak for its own. A report is refused whole (4xx, nothing written)
 * when it is too large, not JSON, or does not fit the schema.
 */
export async function POST(req: NextRequest) {
  const m = /^Bearer (\S+)$/.exec(req.headers.get('authorization') ?? '');
  if (!m) return refuse(401, 'authentication required: Authorization: Bearer <agent token>');
  const db = getDb();
  const server = await serverForToken(db, m[1]);
  if (!server) return refuse(401, 'unknown or rotated agent token');
  if (Number(req.headers.get('content-length') ?? 0) > MAX_REPORT_BYTES) return refuse(413, `a report is at most ${MAX_REPORT_BYTES} bytes`);
  const read = readReport(await req.text());
  if (!read.ok) return refuse(read.status, read.error, read.details);
  const result = await ingestReport(db, server, read.report);
  return NextResponse.json({ server: server.hostname, ...result });
}
