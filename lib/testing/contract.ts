// The contract test's checker: an exchange with the API (a request and the answer it got) against the
// OpenAPI document. The browser tests run every API call they make through it (e2e/fixtures.ts).
//
// - The answer: its status must be one the document lists for the operation, and its JSON body must
//   validate against that status's schema (ajv, JSON Schema 2020-12, which OpenAPI 3.1 uses).
// - The request: one the document says is invalid (a parameter or body its schemas refuse, a query
//   parameter it does not list) must have been refused with a 4xx. One it says is valid may still be
//   refused (an unknown action is a 400 the schema cannot see), so that is not checked.
// - A path under /api/v1 the document does not list is a problem in itself.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { openApiDocument } from '@/lib/features/api/contract/document';
import { matchRoute } from '@/lib/features/api/contract/routes';

type Json = Record<string, unknown>;

export interface Exchange {
  method: string;
  /** The URL asked for (absolute or a path). */
  url: string;
  /** The request's body as sent: an object (sent as JSON), a string, or undefined. */
  body?: unknown;
  status: number;
  /** The answer's body as text. */
  responseText: string;
  contentType: string;
}

interface Operation {
  /** "method path", as the messages name it. */
  template: string;
  op: Json;
}

const COVERED = /^\/api\/(v1|agent\/v1)\//;

function ajvFor(coerce: boolean) {
  const ajv = new Ajv2020({ strict: false, allErrors: true, coerceTypes: coerce, validateFormats: true });
  addFormats.default(ajv);
  return ajv;
}

/** Checks exchanges against the document as this checkout generates it. */
export function contractChecker(doc: Json = openApiDocument() as unknown as Json) {
  const responses = ajvFor(false);
  const requests = ajvFor(true);
  const root = { $id: 'https://pgherd.invalid/openapi.json', components: doc.components };
  responses.addSchema(root);
  requests.addSchema(root);
  const compiled = new Map<string, ValidateFunction>();
  // A schema from the document, its $refs resolved against the document's components.
  const validator = (key: string, schema: unknown, forRequest: boolean) => {
    let v = compiled.get(`${String(forRequest)} ${key}`);
    if (!v) {
      const text = JSON.stringify(schema).replaceAll('"#/components/', '"https://pgherd.invalid/openapi.json#/components/');
      v = (forRequest ? requests : responses).compile(JSON.parse(text) as Json);
      compiled.set(`${String(forRequest)} ${key}`, v);
    }
    return v;
  };
  // The document's operation for a request: found by the routes' own matcher (lib/features/api/contract/routes.ts).
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const operationOf = (method: string, pathname: string): { o: Operation; params: Record<string, string> } | undefined => {
    const m = matchRoute(method, pathname);
    const op = m ? paths[m.spec.path]?.[m.spec.method] : undefined;
    return m && op ? { o: { template: `${m.spec.method} ${m.spec.path}`, op }, params: m.params } : undefined;
  };

  // Each message once, the first few: a body of 300 wrong keys says so in one line.
  const errorsOf = (v: ValidateFunction) => {
    const all = [...new Set((v.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}`))];
    return all.slice(0, 6).join('; ') + (all.length > 6 ? `; and ${all.length - 6} more` : '');
  };

  /** What the request broke of the document ([] when it fits it). */
  function requestProblems(o: Operation, pathValues: Record<string, string>, query: URLSearchParams, body: unknown): string[] {
    const out: string[] = [];
    const params = (o.op.parameters ?? []) as { in: string; name: string; required?: boolean; schema: unknown }[];
    for (const p of params) {
      const value = p.in === 'path' ? pathValues[p.name] : p.in === 'query' ? query.get(p.name) : undefined;
      if (p.in === 'header') continue;
      if (value === null || value === undefined) {
        if (p.required) out.push(`${p.in} parameter ${p.name} is required`);
        continue;
      }
      const holder = { v: value };
      const v = validator(`${o.template} ${p.in} ${p.name}`, { type: 'object', properties: { v: p.schema } }, true);
      if (!v(holder)) out.push(`${p.in} parameter ${p.name}=${JSON.stringify(value)}: ${errorsOf(v)}`);
    }
    for (const name of new Set(query.keys()))
      if (!params.some((p) => p.in === 'query' && p.name === name)) out.push(`query parameter ${name} is not in the document`);
    const content = (o.op.requestBody as { content?: Record<string, { schema: unknown }> } | undefined)?.content?.['application/json'];
    if (body !== undefined && !content) out.push('a body, which the document does not take');
    if (content) {
      if (body === undefined) out.push('no body, which the document requires');
      else {
        let value: unknown = body;
        const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : null;
        if (text !== null) {
          try {
            value = JSON.parse(text);
          } catch {
            out.push('a body that is not JSON');
            return out;
          }
        }
        const v = validator(`${o.template} body`, content.schema, false);
        if (!v(value)) out.push(`body: ${errorsOf(v)}`);
      }
    }
    return out;
  }

  return {
    /** The problems of one exchange ([] when it keeps to the document). Exchanges outside the API are not checked. */
    check(x: Exchange): string[] {
      const url = new URL(x.url, 'http://localhost');
      if (!COVERED.test(url.pathname)) return [];
      const method = x.method.toLowerCase();
      const found = operationOf(method, url.pathname);
      if (!found) {
        // Next answers a path no route has with its own 404/405, which no document lists.
        if (x.status === 404 || x.status === 405) return [];
        return [`${method.toUpperCase()} ${url.pathname} is not in the document (answered ${x.status})`];
      }
      const out: string[] = [];
      const { o, params } = found;
      const broken = requestProblems(o, params, url.searchParams, x.body);
      if (broken.length && (x.status < 400 || x.status >= 500))
        out.push(`the request breaks the document (${broken.join('; ')}) but was answered ${x.status}`);
      const answers = o.op.responses as Record<string, { content?: Record<string, { schema: unknown }> }>;
      const answer = answers[String(x.status)];
      if (!answer)
        return [...out, `${o.template} answered ${x.status}, which the document does not list (${Object.keys(answers).join(', ')})`];
      const schema = answer.content?.['application/json']?.schema;
      if (!schema) {
        if (x.responseText !== '') out.push(`${o.template} ${x.status} has a body, which the document does not describe`);
        return out;
      }
      if (!x.contentType.includes('application/json')) return [...out, `${o.template} ${x.status} is ${x.contentType}, not JSON`];
      let value: unknown;
      try {
        value = JSON.parse(x.responseText);
      } catch {
        return [...out, `${o.template} ${x.status}: the body is not JSON`];
      }
      const v = validator(`${o.template} ${x.status}`, schema, false);
      if (!v(value)) out.push(`${o.template} ${x.status}: ${errorsOf(v)}`);
      return out;
    },
  };
}
