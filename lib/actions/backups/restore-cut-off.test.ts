import { describe, expect, it } from 'vitest';
import { withoutPgCron } from '@/lib/actions/steps/restore-steps';

describe('a restored copy starts without pg_cron', () => {
  it('leaves pg_cron out of shared_preload_libraries and keeps the rest', () => {
    expect(withoutPgCron('pg_stat_statements, pg_cron,auto_explain\n')).toBe('pg_stat_statements,auto_explain');
    expect(withoutPgCron('"pg_cron"')).toBe('');
    expect(withoutPgCron('\n')).toBe('');
  });

  it('knows pg_cron by its file name, whatever path or suffix it is written with', () => {
    expect(withoutPgCron('$libdir/pg_cron')).toBe('');
    expect(withoutPgCron('pg_stat_statements,/usr/lib/postgresql/15/lib/pg_cron.so')).toBe('pg_stat_statements');
    expect(withoutPgCron('"$libdir/pg_cron.so", auto_explain')).toBe('auto_explain');
    expect(withoutPgCron('pg_cronish')).toBe('pg_cronish');
  });

  it('writes back nothing that is not a library name', () => {
    expect(() => withoutPgCron("pg_cron, x'; archive_command = 'sh")).toThrow(/not a library name/);
  });
});
