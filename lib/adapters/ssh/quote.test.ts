import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { quoteArg, redact, shellCommand } from './quote';

const hostile = ['/data; touch /tmp/x', "it's", '$(id)', '`id`', 'a b', '', 'x\ny', '*', '-rf', '"dq"', '\\', '$HOME'];

describe('shell quoting', () => {
  it('leaves plain words alone and quotes everything else', () => {
    expect(shellCommand(['/usr/lib/postgresql/15/bin/pg_ctl', '-D', '/var/lib/pg/main', '-m', 'fast', 'stop'])).toBe(
      '/usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/pg/main -m fast stop',
    );
    expect(quoteArg("it's")).toBe(`'it'\\''s'`);
    expect(quoteArg('')).toBe("''");
  });

  it('gets every argument through a real shell exactly as given', () => {
    const out = execFileSync('/bin/sh', ['-c', shellCommand(['printf', '%s\\0', ...hostile])]).toString();
    expect(out.split('\0').slice(0, -1)).toEqual(hostile);
  });

  it('refuses NUL bytes and empty commands', () => {
    expect(() => quoteArg('a\0b')).toThrow(/NUL/);
    expect(() => shellCommand([])).toThrow(/empty/);
  });

  it('redacts passwords in every quoting style', () => {
    for (const [input, out] of [
      ["password='a b c' user=x", 'password=*** user=x'],
      ['password="a b" user=x', 'password=*** user=x'],
      ['password = secret', 'password = ***'],
      ['PGPASSWORD=hunter2 psql', 'PGPASSWORD=*** psql'],
      ['{"password": "s3cr\\"et"}', '{"password": "***"}'],
      ['postgres://app:hunter2@db:5432/x', 'postgres://app:***@db:5432/x'],
      ["billing = host=10.0.0.1 port=5432 password='p; w'", 'billing = host=10.0.0.1 port=5432 password=***'],
    ])
      expect(redact(input!), input).toBe(out);
    expect(redact('bypass: yes')).toBe('bypass: yes');
  });

  it('redacts passwords and named secrets', () => {
    expect(redact("psql 'host=x password=hunter2 user=y'", ['tok123'])).toBe("psql 'host=x password=*** user=y'");
    expect(redact('curl -H Bearer tok123', ['tok123'])).toBe('curl -H Bearer ***');
  });
});
