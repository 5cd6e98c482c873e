import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle } from '@/lib/features/api/respond';
import { ApiError, queryOf } from '@/lib/features/api/request-errors';
import { auditExportRoute } from '@/lib/features/api/contract/audit';
import { environmentsWith } from '@/lib/engine/access';
import { exportAudit } from '@/lib/features/audit/chain';

/** At most this long a range in one export (a SIEM asks for the next one). */
const MAX_RANGE_DAYS = 31;

/** GET /api/v1/audit/export: the sealed audit entries of a range as JSON lines, streamed, with their hash chain. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const q = queryOf(req, auditExportRoute.query);
  const from = new Date(q.from);
  const to = q.to ? new Date(q.to) : new Date();
  if (to <= from) throw new ApiError(400, 'invalid range', [{ path: 'to', message: 'must be after from' }]);
  if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * 86_400_000)
    throw new ApiError(400, 'invalid range', [
      { path: 'to', message: `at most ${MAX_RANGE_DAYS} days after from: export a longer span in parts` },
    ]);
  const lines = exportAudit(getDb(), { from, to, environments: environmentsWith(user.access, 'viewer') });
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await lines.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(`${JSON.stringify(next.value)}\n`));
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      await lines.return(undefined);
    },
  });
  return new NextResponse(body, {
    headers: {
      'content-type': 'application/x-ndjson; charset=utf-8',
      'content-disposition': `attachment; filename="pgherd-audit-${from.toISOString().slice(0, 10)}.jsonl"`,
      'cache-control': 'no-store',
    },
  });
});
