import NextAuth from 'next-auth';
import { NextRequest, NextResponse } from 'next/server';
import { readCapped } from '@/lib/features/api/body';
import { authOptions } from '@/lib/features/auth/options';

/** next-auth 4 declares what NextAuth() returns as `any`; for the App Router it is this. */
type RouteHandler = (req: NextRequest, ctx: { params: Promise<{ nextauth: string[] }> }) => Promise<Response>;

const handler = NextAuth(authOptions) as RouteHandler;

/** A sign-in form is a username, a password and a CSRF token: anything near this size is not one. */
const MAX_SIGN_IN_BYTES = 16 * 1024;

/**
 * Sign-in posts reach pgherd before anyone is signed in: their bodies are capped while they arrive
 * (chunked ones too), like the API's, instead of being read whole into memory by next-auth.
 */
async function post(req: NextRequest, ctx: { params: Promise<{ nextauth: string[] }> }) {
  const tooLarge = () => NextResponse.json({ error: `request body over ${MAX_SIGN_IN_BYTES} bytes` }, { status: 413 });
  if (Number(req.headers.get('content-length') ?? 0) > MAX_SIGN_IN_BYTES) return tooLarge();
  const body = await readCapped(req, MAX_SIGN_IN_BYTES);
  if (body === null) return tooLarge();
  return handler(new NextRequest(req.url, { method: 'POST', headers: req.headers, body }), ctx);
}

export { handler as GET, post as POST };
