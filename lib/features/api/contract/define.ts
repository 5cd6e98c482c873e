// The REST API's contract: each route declared once, with the zod schemas its handler validates with
// (query, path, body) and those of its answers. The handlers read their schemas from here, and the
// OpenAPI document (GET /api/v1/openapi.json, lib/features/api/contract/document.ts) is generated from the same
// declarations: the document cannot say one thing while the route checks another.
import { z } from 'zod';
import { MAX_BIG_ID, MAX_ID } from '@/lib/adapters/validation/ids';

/** Who may call it: an API token (or the console's session) with that scope, a server's agent token, or anyone. */
export type RouteAuth = 'read' | 'operate' | 'agent' | 'none';

export interface RouteAnswer {
  description: string;
  /** The JSON body (none: no body, as a 204); with `contentType` application/x-ndjson, one line's. */
  schema?: z.ZodType;
  /** Its media type when not application/json. */
  contentType?: string;
  /** Headers it sets (Location on a 201 or 202). */
  headers?: Record<string, string>;
}

export interface RouteSpec {
  method: 'get' | 'post' | 'put' | 'delete';
  /** As OpenAPI writes it: /api/v1/rules/{id}. */
  path: string;
  /** Groups the reference page shows it under. */
  tag: string;
  summary: string;
  description?: string;
  auth: RouteAuth;
  query?: z.ZodObject;
  params?: z.ZodObject;
  /** The JSON body it takes; `noBody`: it refuses one (400). */
  body?: z.ZodType;
  noBody?: boolean;
  /** Request headers it reads (Idempotency-Key). */
  headers?: z.ZodObject;
  /** Its answers besides the errors every route may give (added from `auth`, `query` and `body`). */
  responses: Record<number, RouteAnswer>;
  /** Errors particular to it (404 for an id not found, 409 for a conflict), with what they mean. */
  errors?: Record<number, string>;
}

/** The error body every route answers with: a sentence, and where it applies (per field) when it does. */
export const errorSchema = z
  .object({
    error: z.string().meta({ description: 'What went wrong, in a sentence.' }),
    details: z.unknown().meta({
      description:
        'Null, or where it applies: for a 400, a list of { path, message }, one per field and message; for a 409 on a stale plan, { digest } of the plan now.',
    }),
  })
  .meta({ id: 'Error' });

/** An id in the path, of a table with integer ids (`max` MAX_BIG_ID: bigint ids). */
const pathIdParams = (max: number) =>
  z.object({
    id: z.coerce
      .number()
      .int()
      .min(1)
      .max(max)
      .meta({ description: `The id: a whole number from 1 to ${max}, in decimal digits (anything else is a 400 naming it).` }),
  });
export const idParams = pathIdParams(MAX_ID);
/** An instance's or an operation's id in the path (bigint ids). */
export const bigIdParams = pathIdParams(MAX_BIG_ID);

/** Declares a route (the value is returned as given: the declaration is the contract). */
export const defineRoute = <T extends RouteSpec>(spec: T): T => spec;
