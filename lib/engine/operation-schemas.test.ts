// The operation API's bodies: a parameter name that an object would swallow is refused, not dropped.
import { describe, expect, it } from 'vitest';
import { planBody, submitBody } from '@/lib/engine/operation-schemas';

const issues = (schema: typeof planBody | typeof submitBody, body: string) => {
  const r = schema.safeParse(JSON.parse(body));
  return r.success ? null : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
};

describe('operation bodies: params', () => {
  it('refuses __proto__, constructor and names that are not identifiers, as it refuses any unknown key', () => {
    const digest = '0'.repeat(32);
    expect(issues(planBody, '{"action":"resize","instanceIds":[1],"params":{"__proto__":{"instanceType":"m6i.large"}}}')).toBe(
      'params: __proto__ is not a parameter name',
    );
    expect(issues(submitBody, `{"action":"resize","instanceIds":[1],"digest":"${digest}","params":{"__proto__":{}}}`)).toBe(
      'params: __proto__ is not a parameter name',
    );
    expect(issues(planBody, '{"action":"resize","instanceIds":[1],"params":{"constructor":1}}')).toMatch(/^params\.constructor: /);
    expect(issues(planBody, '{"action":"resize","instanceIds":[1],"params":{"a-b":1}}')).toMatch(/^params\.a-b: /);
    expect(
      issues(planBody, '{"action":"resize","instanceIds":[1],"params":{"instanceType":"m6i.large","fallbackTypes":["r6i.large"]}}'),
    ).toBeNull();
    expect(issues(planBody, '{"action":"restart","instanceIds":[1]}')).toBeNull();
  });
});
