import { NextResponse } from 'next/server';
import { openApiDocument } from '@/lib/features/api/contract/document';
import { handle } from '@/lib/features/api/respond';

/** GET /api/v1/openapi.json: the OpenAPI 3.1 document, generated from the routes' own schemas (lib/features/api/contract). */
export const GET = handle((req) => {
  if ([...req.nextUrl.searchParams.keys()].length)
    return Promise.resolve(NextResponse.json({ error: 'it takes no query parameters', details: null }, { status: 400 }));
  return Promise.resolve(NextResponse.json(openApiDocument(), { headers: { 'cache-control': 'no-cache' } }));
});
