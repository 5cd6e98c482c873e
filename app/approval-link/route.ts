import { NextResponse, type NextRequest } from 'next/server';
import { getCurrentUser } from '@/lib/features/auth/session';
import { linkOperation } from '@/lib/features/operations/approval-links';

/**
 * GET /approval-link?t=TOKEN: where a chat link lands. A signed-in person goes to the operation's page
 * with the token (which that page checks, and where they decide, as themselves); anyone else signs in
 * first and then goes there. Nothing is decided here.
 */
export async function GET(req: NextRequest): Promise<NextResponse> {
  const token = req.nextUrl.searchParams.get('t') ?? '';
  const id = token.length <= 600 ? linkOperation(token) : null;
  const target = id === null ? '/approvals' : `/operations/${String(id)}?link=${encodeURIComponent(token)}`;
  const where = (await getCurrentUser()) ? target : `/login?next=${encodeURIComponent(target)}`;
  // A relative Location: the address the person reached pgherd by, whatever proxy is in front.
  return new NextResponse(null, { status: 303, headers: { location: where } });
}
