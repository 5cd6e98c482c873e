// What a request to the API gets wrong, as a 4xx: ApiError carries the status and the details, and the
// query string is read strictly (a 400 naming each bad parameter).
import type { NextRequest } from 'next/server';
import type { z } from 'zod';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The query string, validated strictly: a 400 naming each bad parameter (or one it does not take). */
export function queryOf<T>(req: NextRequest, schema: z.ZodType<T>): T {
  const keys = [...req.nextUrl.searchParams.keys()];
  const repeated = [...new Set(keys.filter((k, i) => keys.indexOf(k) !== i))];
  if (repeated.length)
    throw new ApiError(
      400,
      'invalid query',
      repeated.map((k) => ({ path: k, message: 'given more than once' })),
    );
  const parsed = schema.safeParse(Object.fromEntries(req.nextUrl.searchParams.entries()));
  if (!parsed.success)
    throw new ApiError(
      400,
      'invalid query',
      parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(query)', message: i.message })),
    );
  return parsed.data;
}
