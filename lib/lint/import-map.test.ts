import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DOC, drawing, floorImports, upward, withPicture } from './import-map';

describe('the drawing of the imports', () => {
  const counts = floorImports();

  it('has no arrow running up a floor', () => {
    expect(counts.size).toBeGreaterThan(10);
    expect(upward(counts)).toEqual([]);
    // The check sees one: an import from the engine into the actions would be drawn upward.
    expect(upward(new Map([...counts, ['engine -> actions', 1]]))).toEqual(['engine -> actions']);
  });

  it('is the one docs/architecture.md shows', () => {
    const doc = readFileSync(DOC, 'utf8');
    expect(doc, 'redraw it: node --import tsx lib/lint/import-map.ts --write').toBe(withPicture(doc, drawing(counts)));
  });
});
