// The document itself: valid OpenAPI 3.1, and listing every route the app has (and no other); the
// contract checker catches what it exists to catch.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { contractChecker } from '@/lib/testing/contract';
import { openApiDocument } from './document';
import { routeFor } from './routes';

const ROOT = path.join(__dirname, '..', '..', '..', '..');

/** Each route file's methods as "method /path" ([id] written {id}). */
function routesOnDisk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...routesOnDisk(full));
    else if (name === 'route.ts') {
      const url = '/' + path.relative(path.join(ROOT, 'app'), dir).replace(/\[([^\]]+)\]/g, '{$1}');
      for (const m of readFileSync(full, 'utf8').matchAll(/export (?:const|async function) (GET|POST|PUT|PATCH|DELETE)\b/g))
        out.push(`${m[1]!.toLowerCase()} ${url}`);
    }
  }
  return out;
}

describe('the OpenAPI document', () => {
  const doc = openApiDocument() as unknown as { paths: Record<string, Record<string, unknown>>; openapi: string };

  it('is valid OpenAPI 3.1', async () => {
    const res = await new Validator().validate(JSON.parse(JSON.stringify(doc)) as Parameters<Validator['validate']>[0]);
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
  });

  it('lists every /api/v1 route and the agents\u2019 report, and nothing that is not a route', () => {
    const documented = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m} ${p}`));
    const onDisk = [...routesOnDisk(path.join(ROOT, 'app', 'api', 'v1')), ...routesOnDisk(path.join(ROOT, 'app', 'api', 'agent'))];
    expect(onDisk.length).toBeGreaterThan(20);
    expect(documented.sort()).toEqual(onDisk.sort());
  });

  it('gives every operation an id, a summary, its security and the error format', () => {
    for (const [p, item] of Object.entries(doc.paths))
      for (const [m, op] of Object.entries(item) as [
        string,
        {
          operationId?: string;
          summary?: string;
          security?: unknown[];
          responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
        },
      ][]) {
        expect(op.operationId, `${m} ${p}`).toMatch(/^[a-z]+[A-Za-z0-9.]+$/);
        expect(op.summary, `${m} ${p}`).toBeTruthy();
        expect(op.security, `${m} ${p}`).toBeDefined();
        expect(op.responses['500']?.content?.['application/json']?.schema.$ref, `${m} ${p}`).toBe('#/components/schemas/Error');
      }
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => (op as { operationId: string }).operationId));
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('the contract checker', () => {
  const checker = contractChecker();
  const ok = (x: object) => ({ method: 'GET', status: 200, contentType: 'application/json', ...x }) as Parameters<typeof checker.check>[0];

  it('passes an answer the document describes', () => {
    expect(
      checker.check(ok({ url: '/api/v1/operations/7/pause', method: 'POST', status: 202, responseText: '{"id":7,"paused":true}' })),
    ).toEqual([]);
    expect(checker.check(ok({ url: '/api/v1/instances?per=10', status: 401, responseText: '{"error":"x","details":null}' }))).toEqual([]);
  });

  it('catches an answer of the wrong shape, an undocumented status, and an undocumented route', () => {
    expect(
      checker.check(ok({ url: '/api/v1/operations/7/pause', method: 'POST', status: 202, responseText: '{"id":"7"}' })).join(),
    ).toMatch(/\/id must be integer/);
    expect(checker.check(ok({ url: '/api/v1/instances', status: 418, responseText: '{}' })).join()).toMatch(/does not list/);
    expect(checker.check(ok({ url: '/api/v1/instances', status: 400, responseText: '{"error":"x"}' })).join()).toMatch(
      /must have required property 'details'/,
    );
    expect(checker.check(ok({ url: '/api/v1/nowhere', status: 200, responseText: '{}' })).join()).toMatch(/not in the document/);
  });

  it('catches a request the document refuses that was not refused', () => {
    const accepted = (url: string, body?: unknown, method = 'GET') =>
      checker.check(ok({ url, body, method, status: 200, responseText: '{"items":[],"total":0,"page":1,"pages":0}' })).join();
    expect(accepted('/api/v1/instances?role=emperor')).toMatch(/query parameter role="emperor".*answered 200/);
    expect(accepted('/api/v1/instances?colour=red')).toMatch(/colour is not in the document/);
    expect(accepted('/api/v1/instances?per=10&page=2')).not.toMatch(/breaks the document/);
    expect(accepted('/api/v1/operations/plan', { action: 'reload', instanceIds: ['x'] }, 'POST')).toMatch(/body: .*instanceIds/);
    // Refused, as it should be: nothing to say of the request.
    expect(
      checker.check(ok({ url: '/api/v1/instances?role=emperor', status: 400, responseText: '{"error":"invalid query","details":[]}' })),
    ).toEqual([]);
  });
});

describe('routeFor', () => {
  it('finds the declared route of a request, literal paths before templated ones', async () => {
    expect(routeFor('GET', '/api/v1/operations/7')?.path).toBe('/api/v1/operations/{id}');
    expect(routeFor('POST', '/api/v1/operations/plan')?.path).toBe('/api/v1/operations/plan');
    expect(routeFor('POST', '/api/v1/operations/7/pause')?.path).toBe('/api/v1/operations/{id}/{verb}');
    expect(routeFor('GET', '/api/v1/herds/3/lag')?.path).toBe('/api/v1/herds/{id}/lag');
    expect(routeFor('PATCH', '/api/v1/herds')).toBeUndefined();
    expect(routeFor('GET', '/api/v1/nowhere')).toBeUndefined();
  });
});
