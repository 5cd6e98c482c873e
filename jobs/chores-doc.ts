// docs/architecture.md's table of the worker's chores, rendered from the chores themselves (workerChores),
// so the manual cannot drift from what a worker runs. The table sits between two marker comments; the
// prose around it is the manual's own. jobs/chores-doc.test.ts fails when the docs are not the rendering.
//   node --import tsx jobs/chores-doc.ts --write   rewrites the table in place
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withSection } from '@/lib/adapters/format/generated-section';
import type { Chore } from './chores';
import { workerChores, type ChoreContext } from './worker-chores';

export const ARCHITECTURE_MD = path.resolve(__dirname, '../docs/architecture.md');

const every = (c: Chore): string => {
  if (c.everySays) return c.everySays;
  if (!c.every) return 'when asked';
  return c.every % 60_000 === 0 ? `${c.every / 60_000} min` : c.every % 1000 === 0 ? `${c.every / 1000} s` : `${c.every} ms`;
};

/** The chores of a worker with every feature on (discovery configured), as the docs list them. */
export function workerChoreList(): Chore[] {
  // Nothing is connected or run: the chores are only listed (their clocks start in the runner, not here).
  const none = {} as never;
  const x: ChoreContext = {
    cfg: {} as ChoreContext['cfg'],
    db: none,
    ssh: none,
    holder: 'docs',
    queue: none,
    rulesQueue: none,
    clock: none,
    discovery: {} as ChoreContext['discovery'],
    reconcileNow: async () => {},
    runner: none,
    log: () => {},
    quietly: () => {},
  };
  const made = workerChores(x);
  made.stopRefresh();
  void made.closeListener();
  return made.chores;
}

/** The markdown between the markers. */
export function renderChores(chores: Chore[] = workerChoreList()): string {
  const missing = chores.filter((c) => !c.says).map((c) => c.name);
  if (missing.length) throw new Error(`chores without a line of what they do (says): ${missing.join(', ')}`);
  return [
    '| chore | every | on one worker at a time (a turn) | asked while it runs | what it does |',
    '|---|---|---|---|---|',
    ...chores.map(
      (c) =>
        `| \`${c.name}\` | ${every(c)}${c.atStart ? ', and at start' : ''} | ${c.turn ? 'yes' : ''} | ${c.whileRunning === 'again' ? 'runs again after' : ''} | ${c.says ?? ''} |`,
    ),
  ].join('\n');
}

/** `doc` with `table` between its chores markers. */
export const withChores = (doc: string, table: string): string => withSection(doc, 'chores', table);

if (process.argv[1] && path.resolve(process.argv[1]) === __filename) {
  const doc = readFileSync(ARCHITECTURE_MD, 'utf8');
  const next = withChores(doc, renderChores());
  if (process.argv.includes('--write')) writeFileSync(ARCHITECTURE_MD, next);
  else if (next !== doc) {
    console.error('docs/architecture.md: the table of chores is not current (node --import tsx jobs/chores-doc.ts --write)');
    process.exitCode = 1;
  }
  process.exit();
}
