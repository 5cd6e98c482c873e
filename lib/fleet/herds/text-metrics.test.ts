import { describe, expect, it } from 'vitest';
import { lineHeight, textWidth, wrapText } from './text-metrics';

const bold13 = { size: 13, bold: true };

describe('textWidth', () => {
  it('counts each character at its class width, never less than DejaVu Sans Bold draws it', () => {
    // DejaVu Sans Bold at 13 px: "db-1:5432" is about 75 px wide, "WWW" about 43 px.
    expect(textWidth('db-1:5432', bold13)).toBeGreaterThanOrEqual(75);
    expect(textWidth('WWW', bold13)).toBeGreaterThanOrEqual(43);
    expect(textWidth('iii', bold13)).toBeLessThan(textWidth('mmm', bold13));
    expect(textWidth('', bold13)).toBe(0);
    // Outside ASCII counts wider than any ASCII character.
    expect(textWidth('é', bold13)).toBeGreaterThan(textWidth('W', bold13));
  });

  it('leaves room between lines for the glyphs of each', () => {
    expect(lineHeight({ size: 11 })).toBeGreaterThanOrEqual(Math.ceil(11 * 1.17));
  });
});

describe('wrapText', () => {
  const name = 'db-prod-orders-replica-2.eu-west-1.compute.internal.databases.example.com:5432';

  it('keeps a line that fits as it is', () => {
    expect(wrapText('db-1:5432', bold13, 200)).toEqual(['db-1:5432']);
  });

  it('breaks after separators, each line within the width, nothing cut or added', () => {
    const lines = wrapText(name, bold13, 200);
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.join('')).toBe(name);
    for (const l of lines) expect(textWidth(l, bold13)).toBeLessThanOrEqual(200);
    for (const l of lines.slice(0, -1)) expect(l).toMatch(/[.\-:_/, ]$/);
  });

  it('breaks a name with no separator between characters', () => {
    const word = 'x'.repeat(90);
    const lines = wrapText(word, bold13, 100);
    expect(lines.join('')).toBe(word);
    for (const l of lines) expect(textWidth(l, bold13)).toBeLessThanOrEqual(100);
  });
});
