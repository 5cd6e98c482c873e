// Migrations are expand-then-contract (lib/lint/migrations.ts): none takes away what the release before
// it still reads, so that the previous release's processes run on the new schema during a rolling upgrade.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkMigrations, contractProblems, type SnapshotTables } from './migrations';

const previous: SnapshotTables = {
  tables: {
    'public.herds': { name: 'herds', columns: { id: {}, name: {}, vhost: {} } },
    'public.old_runs': { name: 'old_runs', columns: { id: {} } },
  },
};

describe('migrations are expand-then-contract', () => {
  it('every migration of db/migrations keeps what the release before it reads', () => {
    expect(checkMigrations(path.join(process.cwd(), 'db', 'migrations'))).toEqual([]);
  });

  it('refuses a drop of a column or table the release before still reads, a rename, an in-place type change', () => {
    const sql = [
      'ALTER TABLE "herds" DROP COLUMN "vhost";--> statement-breakpoint',
      'DROP TABLE "old_runs" CASCADE;--> statement-breakpoint',
      'ALTER TABLE "herds" RENAME COLUMN "name" TO "title";--> statement-breakpoint',
      'ALTER TABLE "herds" ALTER COLUMN "name" SET DATA TYPE varchar(40);',
    ].join('\n');
    const problems = contractProblems('0069_x', sql, previous);
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(
      /^0069_x: drops herds\.vhost, which the release before still reads: take it out of db\/schema\.ts in one release/,
    );
    expect(problems[1]).toMatch(/^0069_x: drops table old_runs/);
    expect(problems[2]).toMatch(/^0069_x: renames in herds/);
    expect(problems[3]).toMatch(/^0069_x: changes the type of herds\.name in place/);
  });

  it('takes the drop of what the release before no longer declared, and additions', () => {
    const gone: SnapshotTables = { tables: { 'public.herds': { name: 'herds', columns: { id: {}, name: {} } } } };
    const sql =
      'ALTER TABLE "herds" DROP COLUMN "vhost";--> statement-breakpoint\nALTER TABLE "herds" ADD COLUMN "notes" text;\nDROP TABLE "old_runs";\n' +
      'ALTER TABLE "herds" ALTER COLUMN "id" SET DATA TYPE bigint, ALTER COLUMN "name" SET DATA TYPE text;';
    expect(contractProblems('0070_y', sql, gone)).toEqual([]);
  });
});
