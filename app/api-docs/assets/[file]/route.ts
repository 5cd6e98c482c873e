import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { NextResponse } from 'next/server';

// Swagger UI's files, served from the installed swagger-ui-dist (never a CDN): the API reference page's renderer.
const FILES: Record<string, string> = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
};

export async function GET(_req: Request, ctx: { params: Promise<{ file: string }> }) {
  const { file } = await ctx.params;
  const type = FILES[file];
  if (!type) return NextResponse.json({ error: 'no such file', details: null }, { status: 404 });
  const body = await readFile(path.join(process.cwd(), 'node_modules', 'swagger-ui-dist', file));
  return new NextResponse(body, { headers: { 'content-type': type, 'cache-control': 'public, max-age=86400' } });
}
