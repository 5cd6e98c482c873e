import { randomBytes } from 'node:crypto';
import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { answeringWith, apiUser, handle, jsonBody } from '@/lib/features/api/respond';
import { ApiError } from '@/lib/features/api/request-errors';
import { IDEMPOTENCY_KEY, submitBody } from '@/lib/engine/operation-schemas';
import { deprecatedName, deprecationHeaders, getAction } from '@/lib/actions/registry';
import { submitOperation } from '@/lib/engine/submit';
import { webQueue } from '@/lib/entry/web/web-queue';

/** POST /api/v1/operations: 202 { id }; a plan that no longer holds is a 409 with the new digest (a SubmitError, answered by handle). */
export const POST = handle(async (req) => {
  const user = await apiUser(req, 'operate');
  const body = await jsonBody(req, submitBody);
  // A deprecated name's answer says so, a refusal or an error too.
  return answeringWith(deprecationHeaders(body.action), async () => {
    // The key in the body, or the `Idempotency-Key` header HTTP clients send; both must say the same.
    const header = req.headers.get('idempotency-key');
    if (header !== null && !IDEMPOTENCY_KEY.test(header))
      throw new ApiError(400, 'invalid Idempotency-Key header', { 'Idempotency-Key': '8 to 64 of A-Z, a-z, 0-9, _ and -' });
    if (header !== null && body.idempotencyKey !== undefined && header !== body.idempotencyKey)
      throw new ApiError(400, "the Idempotency-Key header and the body's idempotencyKey differ");
    const key = body.idempotencyKey ?? header ?? randomBytes(16).toString('hex');
    const action = getAction(body.action);
    if (!action) throw new ApiError(400, `unknown action ${body.action}`);
    const res = await submitOperation(
      getDb(),
      webQueue(),
      action,
      {
        instanceIds: body.instanceIds,
        herdIds: body.herdIds,
        params: body.params ?? {},
        digest: body.digest,
        confirmation: body.confirm,
        idempotencyKey: key,
        waves: body.waves ?? null,
        ...(body.breakGlass ? { breakGlass: body.breakGlass.reason } : {}),
      },
      user,
    );
    const deprecated = deprecatedName(body.action);
    return NextResponse.json(
      { id: res.id, duplicate: res.duplicate, status: res.status, ...(deprecated ? { deprecated } : {}) },
      { status: 202, headers: { location: `/api/v1/operations/${res.id}`, ...deprecationHeaders(body.action) } },
    );
  });
});
