// POST /api/v1/operations/{id}/approve | deny { comment }: a person's decision on an operation awaiting
// approval, with a token of the operate scope (it decides as its person, never as anyone else).
import type { NextRequest } from 'next/server';
import { NextResponse } from 'next/server';
import { decisionBody } from '@/lib/engine/operation-schemas';
import { getDb } from '@/db/client';
import { MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { apiUser, handle, jsonBody, pathId } from '@/lib/features/api/respond';
import { decideOperation } from '@/lib/features/operations/approvals';
import type { Queue } from 'bullmq';
import type { TargetJob } from '@/lib/engine/queue';

/** The route for one decision: an empty body is no comment. */
export function decisionRoute(decision: 'approved' | 'denied', queue: () => Queue<TargetJob> | null) {
  return handle(async (req: NextRequest, ctx) => {
    const user = await apiUser(req, 'operate');
    const id = pathId((await ctx.params).id, 'id', MAX_BIG_ID);
    const empty = req.headers.get('content-length') === '0' || (!req.headers.get('content-length') && !req.body);
    const body = empty ? { comment: '' } : await jsonBody(req, decisionBody);
    const res = await decideOperation(getDb(), queue(), id, user, { decision, comment: body.comment, via: 'api' });
    return NextResponse.json(res, { status: 200 });
  });
}
