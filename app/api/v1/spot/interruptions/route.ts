import { NextResponse, type NextRequest } from 'next/server';
import { getDb } from '@/db/client';
import { webQueue } from '@/lib/entry/web/web-queue';
import { readCapped } from '@/lib/features/api/body';
import { receiveSpotNotice } from '@/lib/features/spot/notice';

/**
 * POST /api/v1/spot/interruptions: EC2's spot interruption warning, as EventBridge sends it (an API
 * destination with `Authorization: Bearer <PGHERD_SPOT_EVENTS_TOKEN>`), or as a host's agent relays it
 * for its own instance (its agent token). Each member on the instance is evacuated at once
 * (lib/features/spot/notice.ts); the same notice again answers what the first one started.
 */
export async function POST(req: NextRequest) {
  const text = await readCapped(req, 64 * 1024);
  if (text === null) return NextResponse.json({ error: 'the notice is larger than 64 KiB' }, { status: 413 });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return NextResponse.json({ error: 'the body is not JSON' }, { status: 400 });
  }
  const answer = await receiveSpotNotice(getDb(), webQueue(), { authorization: req.headers.get('authorization'), body });
  return NextResponse.json(answer.body, { status: answer.status });
}
