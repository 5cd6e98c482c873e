// The drawing of pgherd's imports by floor (docs/architecture.md, "Floors"): every import of production
// code, resolved as TypeScript resolves it, counted from floor to floor. `npm run` has no script for
// it: `node --import tsx lib/lint/import-map.ts --write` redraws the docs' picture, and
// lib/lint/import-map.test.ts fails when the picture is not today's or an arrow runs up a floor.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export const ROOT = path.resolve(__dirname, '..', '..');

/** The floors, lowest first, with the folders that make each. */
export const FLOOR_OF: [floor: string, prefixes: string[]][] = [
  ['settings', ['lib/settings/']],
  ['db', ['db/']],
  ['adapters', ['lib/adapters/']],
  ['agent', ['lib/agent/']],
  ['fleet', ['lib/fleet/']],
  ['engine', ['lib/engine/']],
  ['actions', ['lib/actions/']],
  ['features', ['lib/features/']],
  ['entry', ['lib/entry/', 'jobs/', 'app/', 'components/']],
];

/** What is not production code: tests, the lab, the test helpers, the benchmarks, lint's own tests. */
const NOT_PRODUCTION = [/\.test\.tsx?$/, /^e2e\//, /^lib\/(lab|testing|bench|lint|setup)\//, /^lib\/entry\/cli\/(demo|lab|bench)\.ts$/];

export function floorOf(file: string): string | null {
  return FLOOR_OF.find(([, prefixes]) => prefixes.some((p) => file.startsWith(p)))?.[0] ?? null;
}

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')))
    .filter((f) => /\.(ts|tsx)$/.test(f) && !f.endsWith('.d.ts') && !NOT_PRODUCTION.some((re) => re.test(f)));
}

/** Every import of production code between two floors, as (from floor, to floor) -> how many. */
export function floorImports(): Map<string, number> {
  const parsed = ts.parseJsonConfigFileContent(
    ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), (f) => ts.sys.readFile(f)).config,
    ts.sys,
    ROOT,
  );
  const files = ['db', 'lib', 'jobs', 'app', 'components'].flatMap(sources);
  const counts = new Map<string, number>();
  for (const file of files) {
    const from = floorOf(file);
    const { importedFiles } = ts.preProcessFile(readFileSync(path.join(ROOT, file), 'utf8'), true, true);
    for (const imp of importedFiles) {
      const resolved = ts.resolveModuleName(imp.fileName, path.join(ROOT, file), parsed.options, ts.sys).resolvedModule;
      if (!resolved || resolved.isExternalLibraryImport) continue;
      const to = floorOf(path.relative(ROOT, resolved.resolvedFileName).split(path.sep).join('/'));
      if (!from || !to || from === to) continue;
      const key = `${from} -> ${to}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

/** The imports that run up a floor ("fleet -> engine"). */
export function upward(counts: Map<string, number>): string[] {
  const rank = (f: string) => FLOOR_OF.findIndex(([x]) => x === f);
  return [...counts.keys()].filter((k) => {
    const [a = '', b = ''] = k.split(' -> ');
    return rank(b) > rank(a);
  });
}

/** The drawing: a Mermaid flowchart, the highest floor on top, each arrow with how many imports it carries. */
export function drawing(counts: Map<string, number>): string {
  const floors = FLOOR_OF.map(([f]) => f).reverse();
  const lines = ['```mermaid', 'flowchart TD'];
  for (const f of floors) lines.push(`  ${f}["${f}: ${FLOOR_OF.find(([x]) => x === f)?.[1].join(' ') ?? ''}"]`);
  for (const [k, n] of [...counts].sort(([a], [b]) => a.localeCompare(b))) {
    const [a, b] = k.split(' -> ');
    lines.push(`  ${a ?? ''} -->|${String(n)}| ${b ?? ''}`);
  }
  lines.push('```');
  return lines.join('\n');
}

export const DOC = path.join(ROOT, 'docs', 'architecture.md');
const START = '<!-- import-map:start -->';
const END = '<!-- import-map:end -->';

/** docs/architecture.md with `picture` between its markers. */
export function withPicture(doc: string, picture: string): string {
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${DOC} has no ${START} … ${END}`);
  return `${doc.slice(0, a + START.length)}\n\n${picture}\n\n${doc.slice(b)}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === __filename) {
  const counts = floorImports();
  const up = upward(counts);
  if (up.length) console.error(`imports that run up a floor: ${up.join(', ')}`);
  const picture = drawing(counts);
  if (process.argv.includes('--write')) writeFileSync(DOC, withPicture(readFileSync(DOC, 'utf8'), picture));
  else console.log(picture);
  process.exitCode = up.length ? 1 : 0;
}
