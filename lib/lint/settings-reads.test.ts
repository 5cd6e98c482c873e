// Every PGHERD_* setting is read through lib/settings, where it is declared once: production
// code that reads process.env.PGHERD_X itself would skip the check at start and the documented
// default, and a second declaration of a name would let the two disagree.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '@/lib/settings/settings';

const root = path.resolve(__dirname, '../..');
const SETTINGS_DIR = 'lib/settings';
/** Where tests, the lab and the test helpers live: they may set and read the environment of the processes they start. */
const TEST_SIDE = [/\.test\.ts$/, /^e2e\//, /^lib\/lab\//, /^lib\/testing\//, /^lib\/bench\//];
const SKIPPED_DIRS = new Set(['node_modules', '.next', '.lab', '.git', 'dist', 'test-results', 'playwright-report', 'migrations']);

/** The repository's TypeScript and JavaScript sources, as paths from its root. */
function sources(dir = ''): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) return SKIPPED_DIRS.has(e.name) ? [] : sources(rel);
    return /\.(ts|tsx|mts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** A read of the environment that names a PGHERD_ variable: process.env.PGHERD_X, process.env['PGHERD_X'], env.PGHERD_X. */
const DIRECT_READ = /process\.env\s*(\.\s*PGHERD_|\[\s*['"`]PGHERD_)|\benv\s*(\.\s*PGHERD_|\[\s*['"`]PGHERD_)/;

describe('PGHERD_* settings', () => {
  it('are read only through the settings module in production code', () => {
    const production = sources().filter((f) => !f.startsWith(`${SETTINGS_DIR}/`) && !TEST_SIDE.some((re) => re.test(f)));
    expect(production.length).toBeGreaterThan(100);
    const reads = production.flatMap((f) =>
      fs
        .readFileSync(path.join(root, f), 'utf8')
        .split('\n')
        .flatMap((line, i) => (DIRECT_READ.test(line) ? [`${f}:${String(i + 1)}: ${line.trim()}`] : [])),
    );
    expect(reads, "read it with setting('PGHERD_X') from lib/settings/settings.ts").toEqual([]);
  });

  it('catches the spellings of a direct read', () => {
    for (const line of [
      'const n = Number(process.env.PGHERD_X ?? 5);',
      "const v = process.env['PGHERD_X'];",
      'const v = process.env["PGHERD_X"];',
      'const v = env.PGHERD_X;',
    ])
      expect(DIRECT_READ.test(line), line).toBe(true);
    expect(DIRECT_READ.test("setting('PGHERD_X')")).toBe(false);
    expect(DIRECT_READ.test("{ PGHERD_SKIP_BUILD: '1' }")).toBe(false);
  });

  it('are each declared once', () => {
    const text = fs.readFileSync(path.join(root, SETTINGS_DIR, 'settings.ts'), 'utf8');
    const declared = [...text.matchAll(/^ {2}(PGHERD_[A-Z0-9_]+):/gm)].map((m) => m[1] ?? '');
    const twice = declared.filter((name, i) => declared.indexOf(name) !== i);
    expect(twice).toEqual([]);
    expect(declared).toEqual(Object.keys(SETTINGS));
  });
});
