import { describe, expect, it } from 'vitest';
import { parseConnstr, readEntries, repointEntries } from './ini';

const INI = `; pgherd lab
[databases]
billing = host=127.0.1.1 port=5432 dbname=postgres
reports = dbname='my \\'db\\'' host=10.0.0.9
* = host=fallback

[pgbouncer]
listen_port = 6432
; host=127.0.1.1 in a comment stays
`;

describe('PgBouncer configuration', () => {
  it('re-points the named entries, keeping their other settings and everything else', () => {
    const out = repointEntries(INI, ['billing', 'reports'], { host: '127.0.1.3', port: 25433 });
    expect(out).toContain('billing = host=127.0.1.3 port=25433 dbname=postgres');
    expect(out).toContain("reports = dbname='my \\'db\\'' host=127.0.1.3 port=25433");
    expect(out).toContain('* = host=fallback');
    expect(out).toContain('; host=127.0.1.1 in a comment stays');
    expect(out.split('\n').length).toBe(INI.split('\n').length);
    expect(readEntries(out).get('billing')).toMatchObject({ host: '127.0.1.3', port: 25433 });
    expect(parseConnstr("dbname='my \\'db\\''")).toEqual([{ key: 'dbname', value: "my 'db'" }]);
  });

  it('refuses a missing entry, and a host or port that would write anything else into the file', () => {
    expect(() => repointEntries(INI, ['nope'], { host: 'a', port: 1 })).toThrow('[databases] has no entry "nope"');
    expect(() => repointEntries(INI, ['billing'], { host: 'a b\n[pgbouncer]', port: 1 })).toThrow('not a host name or address');
    expect(() => repointEntries(INI, ['billing'], { host: 'a', port: 70000 })).toThrow('not a port');
    expect(() => repointEntries('[pgbouncer]\nbilling = host=x\n', ['billing'], { host: 'a', port: 1 })).toThrow('no entry');
  });
});
