import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DOC, foldersOnDisk, renderTree, SOURCE_TREE, withTree } from './source-tree';

describe('the source tree of docs/architecture.md', () => {
  it('lists every folder in git, and no folder that is gone', () => {
    const listed = SOURCE_TREE.map((t) => t.folder);
    const onDisk = foldersOnDisk();
    expect(onDisk).toContain('lib/actions/steps');
    expect(
      onDisk.filter((f) => !listed.includes(f)),
      'say what the new folder holds in lib/lint/source-tree.ts',
    ).toEqual([]);
    expect(
      listed.filter((f) => !onDisk.includes(f)),
      'a folder listed in lib/lint/source-tree.ts is gone',
    ).toEqual([]);
    expect(new Set(listed).size).toBe(listed.length);
  });

  it('is the one the page shows', () => {
    const doc = readFileSync(DOC, 'utf8');
    expect(doc, 'redraw it: node --import tsx lib/lint/source-tree.ts --write').toBe(withTree(doc, renderTree()));
  });

  it('fails the page that does not draw a folder added, and draws sub-folders under their parent', () => {
    const drawn = renderTree([...SOURCE_TREE, { folder: 'lib/adapters/kafka', says: 'a client nobody asked for' }]);
    expect(drawn).toMatch(/^ {2}kafka\/\s+a client nobody asked for$/m);
    expect(readFileSync(DOC, 'utf8')).not.toContain('kafka/');
  });
});
