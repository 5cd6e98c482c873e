// The README is a front page and the manual lives in docs/: a moved section must not leave a link,
// an anchor or a command behind that leads nowhere. GitHub renders these files, so anchors follow
// GitHub's heading slugs.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
/** A path into this repository, as docs and comments name one. */
const REPO_PATH = /^(?:lib|app|components|jobs|db|e2e|docs|deploy)\//;
const README_MAX_LINES = 220;

const docs = [
  'README.md',
  ...fs
    .readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const read = (file: string): string => fs.readFileSync(path.join(root, file), 'utf8');

/** The prose of a markdown file: fenced blocks blanked (a link or `#` there is code, not markdown). */
function prose(text: string): string[] {
  let fenced = false;
  return text.split('\n').map((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line;
  });
}

/** GitHub's anchor for a heading: markup dropped, lowercased, punctuation removed, spaces to '-'. */
function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a file's headings give, duplicates numbered as GitHub numbers them (-1, -2, ...). */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m?.[1]) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Inline links and link definitions, with their line; inline code is not a link. */
function links(text: string): { line: number; target: string }[] {
  const out: { line: number; target: string }[] = [];
  prose(text).forEach((raw, i) => {
    const line = raw.replace(/`[^`]*`/g, '``');
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ line: i + 1, target: m[1] ?? '' });
    const def = /^\s*\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)/.exec(line);
    if (def?.[1]) out.push({ line: i + 1, target: def[1] });
  });
  return out;
}

/** What is wrong with a relative link from `file`, or null when it leads somewhere. */
function broken(file: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // https:, mailto:: not this repository's
  const [p = '', anchor] = target.split('#', 2);
  const resolved = p === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURI(p)));
  if (resolved.startsWith('..')) return `${target}: leads out of the repository`;
  const abs = path.join(root, resolved);
  if (!fs.existsSync(abs)) return `${target}: ${resolved} does not exist`;
  if (anchor === undefined) return null;
  if (!resolved.endsWith('.md')) return `${target}: an anchor into a file that is not markdown`;
  return anchors(fs.readFileSync(abs, 'utf8')).has(anchor) ? null : `${target}: no heading of ${resolved} has the anchor #${anchor}`;
}

describe('the anchors of headings (GitHub slugs)', () => {
  it('lowercase, punctuation dropped, spaces to hyphens, duplicates numbered', () => {
    expect([
      ...anchors(
        '# pgherd\n## Quick start\n### DNS (BIND 9)\n## Sign-in, roles and the audit log\n## `npm test`: what runs\n## Quick start\n',
      ),
    ]).toEqual(['pgherd', 'quick-start', 'dns-bind-9', 'sign-in-roles-and-the-audit-log', 'npm-test-what-runs', 'quick-start-1']);
  });

  it('ignores what only looks like a heading or a link inside code', () => {
    const text = '# Real\n```sh\n# a shell comment\n[x](nowhere.md)\n```\nsee `[y](nowhere.md)` and [z](there.md#real)\n';
    expect([...anchors(text)]).toEqual(['real']);
    expect(links(text)).toEqual([{ line: 6, target: 'there.md#real' }]);
  });
});

describe('README.md and docs/', () => {
  it.each(docs)('%s: every relative link leads to a file, and every anchor to a heading there', (file) => {
    const problems = links(read(file)).flatMap(({ line, target }) => {
      const problem = broken(file, target);
      return problem === null ? [] : [`${file}:${line}: ${problem}`];
    });
    expect(problems).toEqual([]);
  });

  it('every npm script they name is one of package.json', () => {
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    const missing = docs.flatMap((file) =>
      [...read(file).matchAll(/\bnpm (?:run ([\w:.-]+)|(test)\b)/g)]
        .map((m) => m[1] ?? m[2] ?? '')
        .filter((name) => !scripts.includes(name))
        .map((name) => `${file}: npm run ${name}`),
    );
    expect(missing).toEqual([]);
  });

  it('every repository path in a code span names a file or folder that exists (an example says <family>)', () => {
    const missing = docs.flatMap((file) =>
      prose(read(file)).flatMap((line, i) =>
        [...line.matchAll(/`([^`]+)`/g)]
          .map((m) => (m[1] ?? '').trim().split(/[:#]/)[0] ?? '')
          .filter((p) => REPO_PATH.test(p) && !/[*<>{}\s$]/.test(p) && !fs.existsSync(path.join(root, p)))
          .map((p) => `${file}:${String(i + 1)}: ${p}`),
      ),
    );
    expect(missing).toEqual([]);
  });

  it(`README.md is a front page: at most ${README_MAX_LINES} lines`, () => {
    expect(read('README.md').trimEnd().split('\n').length).toBeLessThanOrEqual(README_MAX_LINES);
  });
});

/** The code's files whose names match `ext`: its folders' (the build's and the lab's output left out), then the root's. */
function codeFiles(ext: RegExp): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, e.name);
      if (e.isDirectory()) {
        if (!['node_modules', '.next', '.lab', 'migrations', 'assets'].includes(e.name)) walk(rel);
      } else if (ext.test(e.name)) out.push(rel);
    }
  };
  for (const dir of ['app', 'components', 'db', 'deploy', 'e2e', 'jobs', 'lib']) walk(dir);
  return [...out, ...fs.readdirSync(root).filter((f) => ext.test(f) && fs.statSync(path.join(root, f)).isFile())];
}

describe('the code', () => {
  // Error messages and comments send people to a docs page; it must be there.
  it('names only docs pages that exist', () => {
    const named = codeFiles(/\.(ts|tsx|mts|mjs|json|yml|yaml|sh)$/).flatMap((f) =>
      [...read(f).matchAll(/\bdocs\/[\w-]+\.md\b/g)].map((m) => `${m[0]} (${f})`),
    );
    expect(named.filter((n) => !fs.existsSync(path.join(root, n.split(' ')[0] ?? '')))).toEqual([]);
  });

  // A comment names the export it means (a file moves, the name goes with it); a path it names must still be there.
  it('names only files that exist in its comments', () => {
    const missing = codeFiles(/\.(ts|tsx|mts|mjs)$/).flatMap((f) =>
      read(f)
        .split('\n')
        .flatMap((line, i) =>
          /^\s*(\/\/|\/?\*)/.test(line)
            ? [...line.matchAll(/(?<![\w@/.-])((?:lib|app|components|jobs|db)\/[\w./[\]()-]*\.(?:ts|tsx|sql|mjs|sh|json|md))\b/g)]
                .map((m) => m[1] ?? '')
                .filter((p) => !fs.existsSync(path.join(root, p)))
                .map((p) => `${f}:${String(i + 1)}: ${p}`)
            : [],
        ),
    );
    expect(missing).toEqual([]);
  });
});
