// The shell commands Rotate pgherd's credentials runs on each host's authorized keys file, run here on a
// file of this machine's: what they add, what they take out, and what they refuse to leave behind.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADD_KEY, REMOVE_KEYS } from './rotate-own-credentials.action';

const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-ak-'));
const run = (argv: string[]) => {
  try {
    execFileSync(argv[0]!, argv.slice(1), { stdio: 'pipe' });
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

  it('refuses to leave a file without the new key, and leaves it as it was', () => {
    const f = path.join(dir, 'c');
    writeFileSync(f, `${OLD} pgherd\n`);
    expect(run([...REMOVE_KEYS, f, 'AAAAnew', TAG, 'AAAAold'])).toBe(3);
    expect(readFileSync(f, 'utf8')).toBe(`${OLD} pgherd\n`);
  });
});
