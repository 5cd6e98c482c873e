import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readSecret, secretFor, writeSecret } from './secret-store';

const before = process.env.PGHERD_SECRET_FILES;
afterEach(() => {
  if (before === undefined) delete process.env.PGHERD_SECRET_FILES;
  else process.env.PGHERD_SECRET_FILES = before;
});

describe('a secret reference', () => {
  it('is filled in per herd, and a file secret stays in its environment\u2019s folder', () => {
    expect(secretFor('aws:pgherd/{environment}/{herd}/app', { environment: 'staging', herd: 'orders' })).toEqual({
      store: 'aws',
      name: 'pgherd/staging/orders/app',
    });
    expect(secretFor('file:{herd}-app', { environment: 'staging', herd: 'orders' })).toEqual({ store: 'file', name: 'orders-app' });
    expect(secretFor('file:../etc/passwd', { environment: 'staging', herd: 'orders' })).toMatch(/not a secret reference|no \//);
    expect(secretFor('file:a/b', { environment: 'staging', herd: 'orders' })).toMatch(/no \//);
    expect(secretFor('file:{user}', { environment: 'staging', herd: 'orders' })).toMatch(/only \{environment\} and \{herd\}/);
    expect(secretFor('env:X', { environment: 'staging', herd: 'orders' })).toMatch(/not a secret reference/);
    // A staging declaration cannot name production's secret.
    expect(secretFor('aws:pgherd/production/orders/app', { environment: 'staging', herd: 'orders' })).toMatch(/is named pgherd\/staging\//);
  });

  it('a file secret is written whole, 0600, and read back; none yet reads as null', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-secrets-'));
    process.env.PGHERD_SECRET_FILES = JSON.stringify({ staging: dir });
    const where = { store: 'file' as const, name: 'orders-app' };
    expect(await readSecret('staging', where)).toBeNull();
    await writeSecret('staging', where, { username: 'app_a', password: 'x'.repeat(20) });
    expect(await readSecret('staging', where)).toEqual({ username: 'app_a', password: 'x'.repeat(20) });
    expect(statSync(path.join(dir, 'orders-app')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path.join(dir, 'orders-app'), 'utf8'))).toEqual({ username: 'app_a', password: 'x'.repeat(20) });
    await expect(readSecret('production', where)).rejects.toThrow(/no folder for file secrets: add it to PGHERD_SECRET_FILES/);
  });
});
