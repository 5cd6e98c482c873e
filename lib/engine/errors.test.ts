// What a failed statement says in a log line or a step's record: why first, not the whole statement.
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { describe, expect, it } from 'vitest';
import { errorText } from './errors';

describe('errorText', () => {
  it('says why a statement drizzle ran failed, with its beginning, never its parameters', () => {
    const query = `WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(id bigint))\n    UPDATE instances AS i SET state = v.state ${'x'.repeat(500)}`;
    const params = [JSON.stringify(Array.from({ length: 1000 }, (_, id) => ({ id, secret: 'not-in-the-log' })))];
    const cause = new Error(
      'insert or update on table "instances" violates foreign key constraint "instances_upstream_instance_id_instances_id_fk"',
    );
    const text = errorText(new DrizzleQueryError(query, params, cause));
    expect(text).toMatch(
      /^insert or update on table "instances" violates foreign key constraint .* \(in: WITH v AS \(SELECT \* FROM jsonb_to_recordset/,
    );
    expect(text.length).toBeLessThan(cause.message.length + 140);
    expect(text).not.toContain('not-in-the-log');
  });

  it('leaves every other error its message', () => {
    expect(errorText(new Error('Failed query: but no cause'))).toBe('Failed query: but no cause');
    expect(errorText(new Error('ssh: connection refused'))).toBe('ssh: connection refused');
    expect(errorText('plain')).toBe('plain');
  });
});
