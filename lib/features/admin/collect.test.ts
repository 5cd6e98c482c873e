// The delete collector follows every foreign key to the rows it would take or unlink, by their id: a
// table that references another must have a one-column primary key, or deleting what it references is
// a server error on the confirmation page (instance_doors once had a two-column key).
import { getTableConfig, PgTable } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import * as schema from '@/db/schema';

describe('the delete collector', () => {
  it('finds a one-column primary key on every table that references another', () => {
    const tables: PgTable[] = (Object.values(schema) as unknown[]).filter((t): t is PgTable => t instanceof PgTable);
    const without = tables
      .filter((t) => getTableConfig(t).foreignKeys.length)
      .filter((t) => getTableConfig(t).columns.filter((c) => c.primary).length !== 1)
      .map((t) => getTableConfig(t).name);
    expect(without).toEqual([]);
  });
});
