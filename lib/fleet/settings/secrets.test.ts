// What a viewer may see of a setting's value: no connection string or command at all (a digest that
// moves when the value does), and no credential in any other value, in each form one is written.
import { describe, expect, it } from 'vitest';
import { changesBetween } from './read-settings';
import { keptChanges, keptSettings, keptValue, withoutSecrets } from './secrets';

const SECRETS = ['S3cret', 'wJalrXUtnFEMI', 'hunter2pass', 'sodiumkey123'];
const clean = (v: string) => SECRETS.every((s) => !v.includes(s));

describe('what is kept of a setting’s value', () => {
  it('no value of a connection string or a command: a digest, the same for the same value, another for another', () => {
    for (const [name, v] of [
      ['primary_conninfo', 'postgresql://repl:S3cret@10.0.0.1:5432/postgres?sslmode=verify-full'],
      ['primary_conninfo', 'host=10.0.0.1 user=repl password=S3cret'],
      ['archive_command', 'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI wal-g wal-push %p'],
      ['restore_command', 'WALG_LIBSODIUM_KEY=sodiumkey123 wal-g wal-fetch %f %p'],
      ['ssl_passphrase_command', 'echo hunter2pass'],
      ['archive_cleanup_command', 'pg_archivecleanup /archive %r'],
    ] as const) {
      const kept = keptValue(name, v);
      expect(kept, `${name} ${v}`).toMatch(/^\(not kept: digest [0-9a-f]{16}\)$/);
      expect(keptValue(name, v)).toBe(kept);
      expect(keptValue(name, kept)).toBe(kept);
      expect(keptValue(name, `${v} `)).not.toBe(kept);
    }
    // None set is worth saying.
    expect(keptValue('restore_command', '')).toBe('');
  });

  it('masks credentials in every form in the other values', () => {
    for (const v of [
      'host=a password=S3cret',
      "host=a password='it''s S3cret' x=1",
      'postgresql://repl:S3cret@db:5432/postgres',
      'postgres://u:S3cret@h/d?password=S3cret',
      'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI other',
      'PGPASSWORD="hunter2pass" x',
      'WALG_LIBSODIUM_KEY=sodiumkey123',
    ]) {
      const kept = withoutSecrets(v);
      expect(clean(kept), `${v} -> ${kept}`).toBe(true);
      expect(withoutSecrets(kept)).toBe(kept);
    }
    expect(withoutSecrets('postgresql://repl:S3cret@db/x')).toBe('postgresql://repl:********@db/x');
    expect(withoutSecrets('%m [%p] %q%u@%d ')).toBe('%m [%p] %q%u@%d ');
    expect(withoutSecrets('4MB')).toBe('4MB');
  });

  it('a snapshot kept by an older version, and its changes, are shown the same way', () => {
    const old = { primary_conninfo: { v: 'postgresql://repl:S3cret@h/x' }, work_mem: { v: '4096' } };
    const shown = keptSettings(old);
    expect(clean(JSON.stringify(shown))).toBe(true);
    expect(shown.work_mem).toEqual({ v: '4096' });
    // Compared with a reading made now, nothing changed.
    expect(changesBetween(shown, keptSettings({ ...old }))).toEqual({});
    const changed = keptChanges({ archive_command: { from: 'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI x', to: '' } });
    expect(clean(JSON.stringify(changed))).toBe(true);
    expect(changed.archive_command).toEqual({ from: expect.stringMatching(/^\(not kept: digest/), to: '' });
  });
});
