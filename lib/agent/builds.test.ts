import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandPattern, extensionDirs, versionNumOf } from './builds';

describe('versionNumOf', () => {
  it('reads the version postgres --version prints, as server_version_num says it', () => {
    expect(versionNumOf('postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)')).toBe(150018);
    expect(versionNumOf('postgres (PostgreSQL) 17.10')).toBe(170010);
    expect(versionNumOf('postgres (PostgreSQL) 18beta1')).toBe(180000);
    expect(versionNumOf('postgres (PostgreSQL) 9.6.24')).toBe(90624);
    expect(versionNumOf('bash: postgres: not found')).toBeNull();
  });
});

describe('expandPattern', () => {
  it('expands one * in a component, in order, and nothing for a relative pattern or a missing parent', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pgherd-builds-'));
    for (const d of ['15/bin', '17/bin', 'x15/bin']) mkdirSync(path.join(root, d), { recursive: true });
    expect(expandPattern(`${root}/1*/bin`)).toEqual([`${root}/15/bin`, `${root}/17/bin`]);
    expect(expandPattern(`${root}/*/bin`)).toHaveLength(3);
    expect(expandPattern(`${root}/15/bin`)).toEqual([`${root}/15/bin`]);
    expect(expandPattern('usr/lib/*/bin')).toEqual([]);
    expect(expandPattern(`${root}/nope/*/bin`)).toEqual([]);
  });
});

describe('extensionDirs', () => {
  it("finds a Debian build's extensions under the prefix it was unpacked in, as its server does", () => {
    const dirs = extensionDirs('/opt/lab/debian/17/usr/lib/postgresql/17/bin', 17);
    expect(dirs).toContain('/opt/lab/debian/17/usr/share/postgresql/17/extension');
    expect(dirs.indexOf('/opt/lab/debian/17/usr/share/postgresql/17/extension')).toBeLessThan(
      dirs.indexOf('/usr/share/postgresql/17/extension'),
    );
    // Not a Debian layout: nothing guessed above it.
    expect(extensionDirs('/opt/pg/17.10/bin', 17)).not.toContain('/share/postgresql/17/extension');
  });
});
