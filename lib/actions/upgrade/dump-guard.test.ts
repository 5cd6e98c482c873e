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
    expect(guardedScript('CREATE TABLE t (id int);\n', 'x')).toBe('CREATE TABLE t (id int);\n');
  });

  it('gives libpq a database name as data, and knows one it would read as a connection string', () => {
    expect(dbnameArg('host=127.0.0.1 dbname=x')).toBe("dbname='host=127.0.0.1 dbname=x'");
    expect(dbnameArg("it's")).toBe("dbname='it\\'s'");
    expect(readAsConnectionString('host=127.0.0.1 dbname=x')).toBe(true);
    expect(readAsConnectionString('postgresql://evil/x')).toBe(true);
    expect(readAsConnectionString('shop')).toBe(false);
  });
});
