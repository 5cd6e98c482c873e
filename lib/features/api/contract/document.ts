// The OpenAPI 3.1 document, generated (zod-openapi) from the routes' declarations in this folder:
// the same zod schemas the handlers validate with. GET /api/v1/openapi.json serves it.
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { errorSchema, type RouteSpec } from './define';
import { API_ROUTES } from './routes';

const ERRORS = {
  400: 'The request is not valid (details: one { path, message } per field and message); a query parameter the route does not take, or one given twice, is one.',
  401: 'No token, or one that is invalid, expired or revoked.',
  403: 'The token is read-only, or your roles do not allow this in an environment it touches.',
  413: 'The body is larger than allowed.',
  500: 'An internal error (logged on the console).',
  503: "pgherd's database (or what the route needs: AWS) is unavailable; nothing was changed. Retry-After says when to try again.",
};

function errorsOf(r: RouteSpec): Record<number, string> {
  const out: Record<number, string> = { 500: ERRORS[500], 503: ERRORS[503] };
  if (r.auth !== 'none') out[401] = r.auth === 'agent' ? 'No agent token, or one that is unknown or rotated.' : ERRORS[401];
  if (r.auth === 'read' || r.auth === 'operate') out[403] = r.auth === 'read' ? 'Your roles do not allow this.' : ERRORS[403];
  // Every route may answer 400: a query parameter it does not declare (or one given twice) is refused.
  out[400] = ERRORS[400];
  if (r.body) out[413] = ERRORS[413];
  return { ...out, ...r.errors };
}

function operationOf(r: RouteSpec): ZodOpenApiOperationObject {
  const responses: ZodOpenApiResponsesObject = {};
  for (const [status, a] of Object.entries(r.responses))
    responses[status as `${1 | 2 | 3 | 4 | 5}${string}`] = {
      description: a.description,
      ...(a.headers
        ? {
            headers: Object.fromEntries(
              Object.entries(a.headers).map(([name, example]) => [name, { description: `As ${example}`, schema: { type: 'string' } }]),
            ),
          }
        : {}),
      ...(a.schema ? { content: { [a.contentType ?? 'application/json']: { schema: a.schema } } } : {}),
    };
  for (const [status, description] of Object.entries(errorsOf(r)))
    responses[status as `${1 | 2 | 3 | 4 | 5}${string}`] = { description, content: { 'application/json': { schema: errorSchema } } };
  const security: Record<string, string[]>[] =
    r.auth === 'none' ? [] : r.auth === 'agent' ? [{ agentToken: [] }] : [{ apiToken: [] }, { session: [] }];
  return {
    operationId: `${r.method}${r.path.replace(/[{}]/g, '').replace(/(^|[/-])([a-z])/g, (_, __, c: string) => c.toUpperCase())}`,
    tags: [r.tag],
    summary: r.summary,
    ...(r.description ? { description: r.description } : {}),
    security,
    ...(r.query || r.params || r.headers
      ? {
          requestParams: {
            ...(r.query ? { query: r.query } : {}),
            ...(r.params ? { path: r.params } : {}),
            ...(r.headers ? { header: r.headers } : {}),
          },
        }
      : {}),
    ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
    ...(r.auth === 'operate' ? { 'x-pgherd-scope': 'operate' } : {}),
    responses,
  };
}

let built: ReturnType<typeof createDocument> | null = null;

/** The document (made once per process: the routes do not change while it runs). */
export function openApiDocument(version = process.env.npm_package_version ?? '0.1.0') {
  if (built) return built;
  const paths: ZodOpenApiPathsObject = {};
  for (const r of API_ROUTES) (paths[r.path] ??= {})[r.method] = operationOf(r);
  built = createDocument(
    {
      openapi: '3.1.0',
      info: {
        title: 'pgherd API',
        version,
        description:
          "pgherd's REST API: the inventory, operations (plan, then submit the plan's digest), rules, blackouts, maintenance windows, webhooks and EC2 discovery; and the agents' report endpoint. Every error answers { error, details }.",
      },
      servers: [{ url: '/', description: 'This console' }],
      security: [{ apiToken: [] }],
      tags: [
        { name: 'Inventory', description: 'Instances and herds, as the changelists show them.' },
        { name: 'Operations', description: 'Plan, submit, follow, pause, resume and abort.' },
        { name: 'Rules', description: 'Actions on a schedule, with conditions, blackouts and maintenance windows.' },
        { name: 'Webhooks', description: 'Where pgherd posts what happened.' },
        { name: 'Cloud', description: 'EC2 discovery passes.' },
        { name: 'Agents', description: 'The agents on the database hosts (their own tokens).' },
        { name: 'Audit', description: 'The audit log for a SIEM, with its hash chain.' },
        { name: 'Backups', description: 'The recoverability and DR scorecards.' },
        { name: 'Risks', description: "The fleet's risks, each with its fix, and their acknowledgements." },
      ],
      paths,
      components: {
        securitySchemes: {
          apiToken: {
            type: 'http',
            scheme: 'bearer',
            description:
              "An API token (pgh_...), made on the console's Account > API tokens page: read or operate scope; it acts as its user.",
          },
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: 'next-auth.session-token',
            description: "The console's session (a signed-in page); writes must come from pgherd's own pages.",
          },
          agentToken: { type: 'http', scheme: 'bearer', description: "A server's agent token (pgha_...): it names the server." },
        },
      },
    },
    { reused: 'inline' },
  );
  return built;
}
