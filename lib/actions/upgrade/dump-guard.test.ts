import { describe, expect, it } from 'vitest';
import { dbnameArg, guardedScript, readAsConnectionString } from './dump-guard';

const guarded = [
  '--',
  '-- PostgreSQL database dump',
  '--',
  '\\restrict Ab12',
  '',
  'CREATE TABLE t (id int);',
  '',
  '\\unrestrict Ab12',
  '',
].join('\n');

describe('the schema copy keeps pg_dump\u2019s guards', () => {
  it('hands psql the dump with its \\restrict line, so psql runs no meta-command smuggled into it', () => {
    const hostile = guarded.replace('CREATE TABLE t (id int);', '-- Name: x\n\\! touch /tmp/owned\nCREATE TABLE t (id int);');
    const s = guardedScript(hostile, 'the dump of shop');
    expect(s.split('\n')).toContain('\\restrict Ab12');
    expect(s.indexOf('\\restrict Ab12')).toBeLessThan(s.indexOf('\\! touch'));
  });

  it('refuses a dump without the guard that holds a meta-command, and passes a plain one', () => {
    expect(() => guardedScript('CREATE TABLE t (id int);\n\\! touch /tmp/owned\n', 'the dump of shop')).toThrow(
      /the dump of shop holds a psql meta-command \("\\\\! touch \/tmp\/owned"\) and no \\restrict guard/,
    );
  });

  it('wraps a dump without the guard in one of its own, so a meta-command hidden mid-line is refused by psql too', () => {
    const s = guardedScript("CREATE TABLE t (id int); \\! touch /tmp/owned\nCOMMENT ON TABLE t IS 'x';", 'x');
    const lines = s.split('\n');
    const key = /^\\restrict ([0-9a-f]{48})$/.exec(lines[0]!)?.[1];
    expect(key).toBeDefined();
    expect(lines.slice(1, 3)).toEqual(['CREATE TABLE t (id int); \\! touch /tmp/owned', "COMMENT ON TABLE t IS 'x';"]);
    expect(lines[3]).toBe(`\\unrestrict ${key!}`);
    expect(guardedScript('SELECT 1;\n', 'x')).not.toContain(key);
  });

  it('gives libpq a database name as data, and knows one it would read as a connection string', () => {
    expect(dbnameArg('host=127.0.0.1 dbname=x')).toBe("dbname='host=127.0.0.1 dbname=x'");
    expect(dbnameArg("it's")).toBe("dbname='it\\'s'");
    expect(readAsConnectionString('host=127.0.0.1 dbname=x')).toBe(true);
    expect(readAsConnectionString('postgresql://evil/x')).toBe(true);
    expect(readAsConnectionString('shop')).toBe(false);
  });
});
