// SQL longer than a few lines lives in a .sql file beside the module that runs it, where it reads as
// SQL and where a test can hand every statement to Postgres to parse against the schema
// (lib/adapters/sql/sql-files.int.test.ts). A file is read once per process. A line `\ir other.sql`
// (psql's include, relative to the file) is replaced by that file's text, so a select list several
// statements share is written once.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const texts = new Map<string, string>();

/** The project's root: the nearest folder up from the working directory that holds this module. */
function projectRoot(): string {
  let dir = process.cwd();
  for (;;) {
    if (existsSync(/* turbopackIgnore: true */ path.join(dir, 'lib', 'adapters', 'sql', 'sql-file.ts'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/** The statement in `file` (a path from the project's root: 'lib/engine/claim-targets.sql'), includes resolved. */
export function sqlFile(file: string): string {
  let text = texts.get(file);
  if (text === undefined) {
    text = resolveIncludes(path.join(/* turbopackIgnore: true */ projectRoot(), file), []);
    texts.set(file, text);
  }
  return text;
}

function resolveIncludes(abs: string, seen: string[]): string {
  if (seen.includes(abs)) throw new Error(`${abs} includes itself (through ${seen.join(' -> ')})`);
  // Read from the checkout at run time (the console runs from it, not from a traced bundle): the build's
  // file tracer is told not to follow this path, which it would take for the whole project.
  const text = readFileSync(/* turbopackIgnore: true */ abs, 'utf8');
  return text
    .split('\n')
    .map((line) => {
      const m = /^\s*\\ir\s+(\S+)\s*$/.exec(line);
      return m?.[1] ? resolveIncludes(path.join(path.dirname(abs), m[1]), [...seen, abs]).trimEnd() : line;
    })
    .join('\n')
    .trim();
}
