import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { demand } from '@/lib/engine/access';
import { apiUser, handle, noBody } from '@/lib/features/api/respond';
import { ApiError } from '@/lib/features/api/request-errors';
import { latestDiscoveryRuns, requestDiscovery, runView } from '@/lib/features/discovery/discovery-runs';
import { discoveryUnavailable } from '@/lib/features/discovery/status';

/** GET /api/v1/cloud/discovery: whether discovery can run here (and why not), and its latest passes (what they found: global roles only). */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const reason = await discoveryUnavailable();
  const runs = (await latestDiscoveryRuns(getDb(), 10)).map((r) => runView(r, user.access));
  return NextResponse.json({ available: reason === null, reason, runs });
});

/**
 * POST /api/v1/cloud/discovery: asks the workers for a pass now (202, the pass; the one already waiting
 * when there is one). A global admin's act: a pass creates servers in any environment its tags name.
 * 503 with the reason when discovery or AWS is not configured here.
 */
export const POST = handle(async (req) => {
  const user = await apiUser(req, 'operate');
  // It takes no body: one sent (regions, tags) would be ignored, so it is refused rather than pass for obeyed.
  await noBody(req, 'POST /api/v1/cloud/discovery', 'what a pass reads is PGHERD_AWS_DISCOVERY');
  await demand(getDb(), user.access, 'admin', 'Asking for an EC2 discovery pass', [null]);
  const reason = await discoveryUnavailable();
  if (reason) throw new ApiError(503, reason);
  const { run, created } = await requestDiscovery(getDb(), user.username);
  return NextResponse.json(
    { ...runView(run, user.access), created },
    { status: 202, headers: { location: `/api/v1/cloud/discovery/${run.id}` } },
  );
});
