// Every console form refuses bad input with messages written for people, and names that would look
// like other names on screen.
import { describe, expect, it } from 'vitest';
import { forms } from './forms';
import { MAX_ID, parseIdList } from '@/lib/validation/ids';
import { newTokenForm } from '@/lib/auth/api-tokens';

const SCHEMA_TALK = /Too (big|small)|expected|Invalid (input|option)|received|<=|>=/;

function messages(model: string, input: Record<string, unknown>): Record<string, string> {
  const r = forms[model]!.schema.safeParse(input);
  if (r.success) return {};
  const out: Record<string, string> = {};
  for (const i of r.error.issues) out[String(i.path[0] ?? '')] ??= i.message;
  return out;
}

describe('form messages', () => {
  it('are sentences for people, for missing, overlong, mistyped and out-of-range values, in every form', () => {
    for (const [model, spec] of Object.entries(forms)) {
      const long = Object.fromEntries(spec.fields.map((f) => [f.name, 'x'.repeat(5000)]));
      const wrong = Object.fromEntries(spec.fields.map((f) => [f.name, f.input.type === 'number' || f.input.type === 'relation' ? String(2 ** 53) : ['a', 'b']]));
      for (const input of [{}, long, wrong]) {
        for (const [field, m] of Object.entries(messages(model, input))) {
          expect(m, `${model}.${field}: ${m}`).not.toMatch(SCHEMA_TALK);
          expect(m, `${model}.${field}: ${m}`).toMatch(/^[A-Z].*\.$/);
        }
      }
    }
  });

  it('say "At most N characters." for text that is too long', () => {
    expect(messages('environments', { name: 'x'.repeat(64) }).name).toBe('At most 63 characters.');
  });

  it('refuse control characters, line breaks and direction overrides in names', () => {
    for (const name of ['prod\u202Euction', 'prod\nuction', 'prod\u0000', 'a\u2066b\u2069', 'x\u200F', 'qa\u2028env', '\u200Bproduction', 'pro\u00ADduction', 'a\uFEFFb']) {
      expect(messages('environments', { name }).name).toBe('Control characters, line breaks, invisible characters and text-direction marks are not allowed.');
    }
    expect(messages('environments', { name: 'production-eu (Zürich) <b>' }).name).toBeUndefined();
    // A description may have line breaks, never a direction override.
    expect(messages('environments', { name: 'p', description: 'line one\nline two' }).description).toBeUndefined();
    expect(messages('environments', { name: 'p', description: 'x\u202E' }).description).toMatch(/not allowed/);
  });

  it('refuse ids beyond Postgres\u2019s integer range', () => {
    expect(messages('instances', { herdId: String(MAX_ID + 1) }).herdId).toBe('Choose one.');
    expect(parseIdList(`1,${MAX_ID}`)).toEqual([1, MAX_ID]);
    expect(parseIdList(`1,${MAX_ID + 1}`)).toBeNull();
    expect(parseIdList('0')).toBeNull();
    expect(parseIdList('1,,2')).toBeNull();
  });
});

describe('API token names', () => {
  it('refuse what would read differently on screen, as every other name does', () => {
    for (const name of ['ci\u202Egnp', 'ci\u0007', 'a\u200Bb', 'x\u2028y']) {
      expect(newTokenForm.safeParse({ name, scope: 'read' }).error?.issues[0]!.message).toBe('Control characters, line breaks, invisible characters and text-direction marks are not allowed.');
    }
    expect(newTokenForm.safeParse({ name: 'ci <deploy> & "nightly"', scope: 'read' }).success).toBe(true);
  });
});
