// The drawing of pgherd's imports by floor (docs/architecture.md, "Floors"): every import of production
// code, resolved as TypeScript resolves it, counted from floor to floor. `npm run` has no script for
// it: `node --import tsx lib/lint/import-map.ts --write` redraws the docs' picture, and
// lib/lint/import-map.test.ts fails when the picture is not today's or an arrow runs up a floor.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { withSection } from '@/lib/adapters/format/generated-section';

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

/** Every import of production code under `dirs`, resolved as TypeScript resolves it: [importer, imported], paths from the root. */
export function fileImports(dirs: string[] = ['db', 'lib', 'jobs', 'app', 'components']): [string, string][] {
  const parsed = ts.parseJsonConfigFileContent(
    ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), (f) => ts.sys.readFile(f)).config,
    ts.sys,
    ROOT,
  );
  const out: [string, string][] = [];
  for (const file of dirs.flatMap(sources)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(path.join(ROOT, file), 'utf8'), true, true);
    for (const imp of importedFiles) {
      const resolved = ts.resolveModuleName(imp.fileName, path.join(ROOT, file), parsed.options, ts.sys).resolvedModule;
      if (!resolved || resolved.isExternalLibraryImport) continue;
      out.push([file, path.relative(ROOT, resolved.resolvedFileName).split(path.sep).join('/')]);
    }
  }
  return out;
}

/** Every import of production code between two floors, as (from floor, to floor) -> how many. */
export function floorImports(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [file, imported] of fileImports()) {
    const from = floorOf(file);
    const to = floorOf(imported);
    if (!from || !to || from === to) continue;
    const key = `${from} -> ${to}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** The folder of `file` directly under `dir` ('.' for a file of `dir` itself), or null outside it. */
export function folderUnder(dir: string, file: string): string | null {
  if (!file.startsWith(`${dir}/`)) return null;
  const rest = file.slice(dir.length + 1).split('/');
  return rest.length > 1 ? (rest[0] ?? null) : '.';
}

/** The folders that import each other round, directly or through others (each cycle's folders, sorted), from folder-to-folder edges. */
export function folderCycles(edges: [string, string][]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const [a, b] of edges) if (a !== b) next.set(a, (next.get(a) ?? new Set()).add(b));
  // Tarjan's strongly connected components: a component of two folders or more is a cycle.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const at = (m: Map<string, number>, v: string) => m.get(v) ?? Infinity;
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, at(index, v));
    stack.push(v);
    on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(at(low, v), at(low, w)));
      } else if (on.has(w)) low.set(v, Math.min(at(low, v), at(index, w)));
    }
    if (low.get(v) === index.get(v)) {
      const part: string[] = [];
      for (let w = stack.pop(); w !== undefined; w = stack.pop()) {
        on.delete(w);
        part.push(w);
        if (w === v) break;
      }
      if (part.length > 1) out.push(part.sort());
    }
  };
  for (const v of new Set(edges.flat())) if (!index.has(v)) visit(v);
  return out;
}

/** The folder-to-folder imports of production code under `dir` (lib/actions: steps -> ..., grow -> steps). */
export function folderEdges(dir: string): [string, string][] {
  const out: [string, string][] = [];
  for (const [file, imported] of fileImports([dir])) {
    const a = folderUnder(dir, file);
    const b = folderUnder(dir, imported);
    if (a !== null && b !== null && a !== b) out.push([a, b]);
  }
  return out;
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
/** docs/architecture.md with `picture` between its import-map markers. */
export const withPicture = (doc: string, picture: string): string => withSection(doc, 'import-map', picture);

if (process.argv[1] && path.resolve(process.argv[1]) === __filename) {
  const counts = floorImports();
  const up = upward(counts);
  if (up.length) console.error(`imports that run up a floor: ${up.join(', ')}`);
  const picture = drawing(counts);
  if (process.argv.includes('--write')) writeFileSync(DOC, withPicture(readFileSync(DOC, 'utf8'), picture));
  else console.log(picture);
  process.exitCode = up.length ? 1 : 0;
}
