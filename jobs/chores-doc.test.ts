// docs/architecture.md lists the chores a worker runs, as the worker has them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ARCHITECTURE_MD, renderChores, withChores, workerChoreList } from './chores-doc';

describe("the docs' table of chores", () => {
  it('is the rendering of the chores a worker runs', () => {
    const doc = readFileSync(ARCHITECTURE_MD, 'utf8');
    expect(withChores(doc, renderChores()), 'node --import tsx jobs/chores-doc.ts --write').toBe(doc);
  });

  it('names every chore, each saying what it does', () => {
    const names = workerChoreList().map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(['reconcile', 'refresh', 'settings', 'discovery', 'restores.expire']));
    expect(() => renderChores([{ name: 'mute', every: 1000, run: async () => {} }])).toThrow(
      /without a line of what they do \(says\): mute/,
    );
  });
});
