// The browser tests' `test`: Playwright's, whose `request` checks every API exchange against the
// OpenAPI document (lib/testing/contract.ts): an answer the document does not describe, or a request it
// refuses that was not refused, fails the test that made it. Every spec imports `test` from here.
import { test as base, type APIRequestContext, type APIResponse } from '@playwright/test';
import { contractChecker } from '../lib/testing/contract';

export { expect } from '@playwright/test';

const checker = contractChecker();
const METHODS = { get: 'GET', post: 'POST', put: 'PUT', patch: 'PATCH', delete: 'DELETE', head: 'HEAD' } as const;

type Options = { data?: unknown; params?: Record<string, string | number | boolean> | URLSearchParams | string; method?: string };

/** The URL as sent, the `params` option's query included. */
function sentUrl(url: string, options: Options | undefined): string {
  const u = new URL(url, 'http://localhost');
  const params = options?.params;
  if (params) {
    const extra =
      typeof params === 'string' || params instanceof URLSearchParams
        ? new URLSearchParams(params)
        : new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
    for (const [k, v] of extra) u.searchParams.append(k, v);
  }
  return u.toString();
}

async function checked(method: string, url: string, options: Options | undefined, res: APIResponse): Promise<APIResponse> {
  const problems = checker.check({
    method,
    url: sentUrl(url, options),
    body: options?.data,
    status: res.status(),
    responseText: method === 'HEAD' ? '' : await res.text(),
    contentType: res.headers()['content-type'] ?? '',
  });
  if (problems.length) throw new Error(`the API broke its OpenAPI document:\n  ${problems.join('\n  ')}`);
  return res;
}

/** `request`, its calls checked against the document. */
export function contractChecked(request: APIRequestContext): APIRequestContext {
  return new Proxy(request, {
    get(target, prop, receiver) {
      const original = Reflect.get(target, prop, receiver) as unknown;
      if (typeof original !== 'function') return original;
      const fn = original as (...a: unknown[]) => Promise<unknown>;
      if (prop in METHODS)
        return async (url: string, options?: Options) =>
          checked(METHODS[prop as keyof typeof METHODS], url, options, (await fn.call(target, url, options)) as APIResponse);
      if (prop === 'fetch')
        return async (url: string, options?: Options) =>
          checked((options?.method ?? 'GET').toUpperCase(), url, options, (await fn.call(target, url, options)) as APIResponse);
      return fn.bind(target);
    },
  });
}

export const test = base.extend({
  request: async ({ request }, use) => {
    await use(contractChecked(request));
  },
  // page.request too: the calls a test makes with the page's cookies.
  page: async ({ page }, use) => {
    Object.defineProperty(page, 'request', { value: contractChecked(page.request) });
    await use(page);
  },
});
