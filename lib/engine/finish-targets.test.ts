// The statement that ends targets writes their last steps' ends as the recorder writes a step's end:
// the same columns, replacing what was written before the same way.
import { describe, expect, it } from 'vitest';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { STEP_END_COLUMNS, STEP_END_CONFLICT } from './db-recorder';

const words = (s: string) => s.replace(/\s+/g, ' ').trim();

describe('finish-targets.sql', () => {
  const text = words(sqlFile('lib/engine/finish-targets.sql'));

  it("inserts the recorder's columns of a step's end", () => {
    expect(text).toContain(`INSERT INTO operation_steps (target_id, ${words(STEP_END_COLUMNS)})`);
  });

  it("replaces an earlier record as the recorder's does", () => {
    expect(text).toContain(words(STEP_END_CONFLICT));
  });
});
