// The shell commands Rotate pgherd's credentials runs on each host's authorized keys file, run here on a
// file of this machine's: what they add, what they take out, and what they refuse to leave behind.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADD_KEY, REMOVE_KEYS } from './rotate-own-credentials.action';
import { DROP_USERLIST, SET_AUTH_USER, SET_USERLIST, SET_USERLIST_PLAIN } from './pgbouncer-files';

const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-ak-'));
const run = (argv: string[], input?: string) => {
  try {
    execFileSync(argv[0]!, argv.slice(1), { stdio: 'pipe', input });
    return 0;
  } catch (err) {
    return (err as { status: number }).status;
  }
};
const OLD = 'ssh-ed25519 AAAAold';
const NEW = 'ssh-ed25519 AAAAnew pgherd-rotated-staging-op7';
const TAG = 'pgherd-rotated-staging-op[0-9]+';

describe("the hosts' authorized keys, as a rotation changes them", () => {
  it('adds the new key once, on a line of its own even when the last line has no newline', () => {
    const f = path.join(dir, 'a');
    writeFileSync(f, `${OLD} pgherd`);
    expect(run([...ADD_KEY, f, NEW])).toBe(0);
    expect(run([...ADD_KEY, f, NEW])).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe(`${OLD} pgherd\n${NEW}\n`);
    expect(run([...ADD_KEY, path.join(dir, 'missing'), NEW])).toBe(3);
  });

  it("takes out retired keys and this environment's earlier rotations only, never the new key", () => {
    const f = path.join(dir, 'b');
    const lines = [
      `${OLD} pgherd`,
      'ssh-ed25519 AAAAops ops@laptop',
      'ssh-ed25519 AAAAfailed pgherd-rotated-staging-op5',
      'ssh-ed25519 AAAAeu pgherd-rotated-staging-eu-op5',
      'ssh-ed25519 AAAAsub comment pgherd-rotated-staging-op5 kept',
      NEW,
    ];
    writeFileSync(f, `${lines.join('\n')}\n`);
    expect(run([...REMOVE_KEYS, f, 'AAAAnew', TAG, 'AAAAold'])).toBe(0);
    expect(readFileSync(f, 'utf8').trim().split('\n')).toEqual([
      'ssh-ed25519 AAAAops ops@laptop',
      'ssh-ed25519 AAAAeu pgherd-rotated-staging-eu-op5',
      'ssh-ed25519 AAAAsub comment pgherd-rotated-staging-op5 kept',
      NEW,
    ]);
  });

  it('keeps every other line as it was, repeated comments and blank lines too, through a link', () => {
    const f = path.join(dir, 'dup');
    const lines = ['# break-glass key below', '', '', 'ssh-ed25519 AAAAbg glass', '# break-glass key below', `${OLD} pgherd`, NEW];
    writeFileSync(f, `${lines.join('\n')}\n`);
    symlinkSync(f, path.join(dir, 'dup-link'));
    expect(run([...REMOVE_KEYS, path.join(dir, 'dup-link'), 'AAAAnew', TAG, 'AAAAold'])).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe(`${lines.filter((l) => l !== `${OLD} pgherd`).join('\n')}\n`);
  });

  it('refuses to leave a file without the new key, and leaves it as it was', () => {
    const f = path.join(dir, 'c');
    writeFileSync(f, `${OLD} pgherd\n`);
    expect(run([...REMOVE_KEYS, f, 'AAAAnew', TAG, 'AAAAold'])).toBe(3);
    expect(readFileSync(f, 'utf8')).toBe(`${OLD} pgherd\n`);
  });
});

describe("a PgBouncer's auth_file, as a rotation changes it", () => {
  const V = 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy';
  it("replaces the admin user's line alone, in the file the [pgbouncer] section names", () => {
    const d = mkdtempSync(path.join(dir, 'pgb-'));
    writeFileSync(
      path.join(d, 'pgbouncer.ini'),
      `[databases]\nauth_file = ${path.join(d, 'not-this.txt')}\n[PgBouncer] ; main\nauth_type = scram-sha-256\n  auth_file =  ${path.join(d, 'userlist.txt')}  \n[users]\nauth_file = ${path.join(d, 'nor-this.txt')}\n`,
    );
    writeFileSync(path.join(d, 'userlist.txt'), '"app" "SCRAM-SHA-256$4096:x$y:z"\n"pgbouncer" "old"\n"pgbouncer2" "keep"', {
      mode: 0o640,
    });
    expect(run([...SET_USERLIST, path.join(d, 'pgbouncer.ini'), 'pgbouncer'], `${V}\n`)).toBe(0);
    expect(readFileSync(path.join(d, 'userlist.txt'), 'utf8')).toBe(
      `"app" "SCRAM-SHA-256$4096:x$y:z"\n"pgbouncer2" "keep"\n"pgbouncer" "${V}"\n`,
    );
    expect(statSync(path.join(d, 'userlist.txt')).mode & 0o777).toBe(0o640);
    // Again: the same file, one line for the user.
    expect(run([...SET_USERLIST, path.join(d, 'pgbouncer.ini'), 'pgbouncer'], `${V}\n`)).toBe(0);
    expect(readFileSync(path.join(d, 'userlist.txt'), 'utf8').match(/"pgbouncer" /g)).toHaveLength(1);
  });

  it("takes a user's line out, and sets auth_user in the [pgbouncer] section alone", () => {
    const d = mkdtempSync(path.join(dir, 'pgb-'));
    const ini = path.join(d, 'pgbouncer.ini');
    writeFileSync(path.join(d, 'userlist.txt'), '"a" "1"\n"b" "2"\n');
    writeFileSync(ini, `[databases]\nx = host=h auth_user=keep\n[pgbouncer]\nauth_file = ${path.join(d, 'userlist.txt')}\n`);
    expect(run([...DROP_USERLIST, ini, 'a'])).toBe(0);
    expect(readFileSync(path.join(d, 'userlist.txt'), 'utf8')).toBe('"b" "2"\n');
    expect(run([...SET_AUTH_USER, ini, 'auth_b'])).toBe(0);
    expect(readFileSync(ini, 'utf8')).toBe(
      `[databases]\nx = host=h auth_user=keep\n[pgbouncer]\nauth_file = ${path.join(d, 'userlist.txt')}\nauth_user = auth_b\n`,
    );
    writeFileSync(ini, '[pgbouncer]\n  auth_user = auth_a\nlisten_port = 6432\n[users]\nauth_user = not-this-one\n');
    expect(run([...SET_AUTH_USER, ini, 'auth_b'])).toBe(0);
    expect(readFileSync(ini, 'utf8')).toBe('[pgbouncer]\nauth_user = auth_b\nlisten_port = 6432\n[users]\nauth_user = not-this-one\n');
    writeFileSync(ini, '[pgbouncer]\nlisten_port = 6432\n\n[users]\nx = y\n');
    expect(run([...SET_AUTH_USER, ini, 'auth_b'])).toBe(0);
    expect(readFileSync(ini, 'utf8')).toBe('[pgbouncer]\nlisten_port = 6432\n\nauth_user = auth_b\n[users]\nx = y\n');
    // A comment after the section's name; a second [pgbouncer] section's auth_user (it would win) taken out.
    writeFileSync(ini, '[pgbouncer] ; main\nlisten_port = 6432\n[pgbouncer]\nauth_user = other\n');
    expect(run([...SET_AUTH_USER, ini, 'auth_b'])).toBe(0);
    expect(readFileSync(ini, 'utf8')).toBe('[pgbouncer] ; main\nlisten_port = 6432\nauth_user = auth_b\n[pgbouncer]\n');
    writeFileSync(ini, '[databases]\n[pgbouncerx]\nauth_user = a\n');
    expect(run([...SET_AUTH_USER, ini, 'auth_b'])).toBe(3);
    expect(readFileSync(ini, 'utf8')).toBe('[databases]\n[pgbouncerx]\nauth_user = a\n');
  });

  it('follows links to their targets, and writes no password in the clear to a file every user may read', () => {
    const d = mkdtempSync(path.join(dir, 'pgb-'));
    writeFileSync(path.join(d, 'real.txt'), '"pgbouncer" "old"\n', { mode: 0o644 });
    symlinkSync(path.join(d, 'real.txt'), path.join(d, 'users.txt'));
    writeFileSync(path.join(d, 'target.ini'), `[pgbouncer]\nauth_file = ${path.join(d, 'users.txt')}\nauth_user = a\n`);
    symlinkSync(path.join(d, 'target.ini'), path.join(d, 'link.ini'));
    const ini = path.join(d, 'link.ini');
    expect(run([...SET_USERLIST, ini, 'pgbouncer'], `${V}\n`)).toBe(0);
    expect(readFileSync(path.join(d, 'real.txt'), 'utf8')).toBe(`"pgbouncer" "${V}"\n`);
    expect(run([...SET_AUTH_USER, ini, 'b'])).toBe(0);
    expect(readFileSync(path.join(d, 'target.ini'), 'utf8')).toContain('auth_user = b\n');
    // The auth user's password, in the clear: refused while the file is world-readable, written once it is not.
    expect(run([...SET_USERLIST_PLAIN, ini, 'auth_b'], 'secret-password\n')).toBe(3);
    expect(readFileSync(path.join(d, 'real.txt'), 'utf8')).not.toContain('secret-password');
    chmodSync(path.join(d, 'real.txt'), 0o640);
    expect(run([...SET_USERLIST_PLAIN, ini, 'auth_b'], 'secret-password\n')).toBe(0);
    expect(readFileSync(path.join(d, 'real.txt'), 'utf8')).toContain('"auth_b" "secret-password"');
  });

  it('refuses a configuration with no auth_file, or one that is not there, changing nothing', () => {
    const d = mkdtempSync(path.join(dir, 'pgb-'));
    writeFileSync(path.join(d, 'pgbouncer.ini'), '[pgbouncer]\nauth_type = trust\n');
    expect(run([...SET_USERLIST, path.join(d, 'pgbouncer.ini'), 'pgbouncer'], `${V}\n`)).toBe(3);
    writeFileSync(path.join(d, 'pgbouncer.ini'), `[pgbouncer]\nauth_file = ${path.join(d, 'gone.txt')}\n`);
    expect(run([...SET_USERLIST, path.join(d, 'pgbouncer.ini'), 'pgbouncer'], `${V}\n`)).toBe(3);
    writeFileSync(path.join(d, 'userlist.txt'), '"pgbouncer" "old"\n');
    writeFileSync(path.join(d, 'pgbouncer.ini'), '[pgbouncer]\nauth_file = userlist.txt\n');
    expect(run([...SET_USERLIST, path.join(d, 'pgbouncer.ini'), 'pgbouncer'], `${V}\n`)).toBe(3);
    expect(readFileSync(path.join(d, 'userlist.txt'), 'utf8')).toBe('"pgbouncer" "old"\n');
    expect(run([...SET_USERLIST, path.join(d, 'pgbouncer.ini'), 'pgbouncer'], '')).toBe(3);
  });
});
