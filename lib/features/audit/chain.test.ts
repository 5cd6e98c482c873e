// What a SIEM runs on an export: canonical JSON is one text for one value, and a line's hash covers the
// hash before it, so a change, a removal or a reordering shows.
import { describe, expect, it } from 'vitest';
import { canonicalJson, chainHash, checkChain, GENESIS, type ChainedEntry, type ChainLine } from './chain';

const entry = (id: number, action: string): ChainedEntry => ({
  id,
  at: '2026-11-28T18:00:00.000001Z',
  user: 'alice',
  address: '10.0.0.1',
  action,
  objectType: 'herd',
  objectId: String(id),
  object: `herd ${id}`,
  environmentId: 1,
  changes: { b: [1, { d: 2, c: 'x' }], a: null },
});

function chain(actions: string[]): ChainLine[] {
  let prev = GENESIS;
  return actions.map((a, i) => {
    const e = entry(i + 1, a);
    const hash = chainHash(prev, e);
    const line = { seq: i + 1, prevHash: prev, hash, entry: e };
    prev = hash;
    return line;
  });
}

describe('the audit chain as a reader checks it', () => {
  it('writes one text for one value, keys sorted at every depth', () => {
    expect(canonicalJson({ b: [1, { d: 2, c: 'x' }], a: null, u: undefined })).toBe('{"a":null,"b":[1,{"c":"x","d":2}]}');
    expect(canonicalJson({ z: 1, a: 2 })).toBe(canonicalJson({ a: 2, z: 1 }));
  });

  it('finds a changed entry, a line taken out, and a line moved', () => {
    const lines = chain(['a', 'b', 'c', 'd']);
    expect(checkChain(lines)).toEqual({ lines: 4, broken: [], gaps: [] });
    const changed = lines.map((l) => (l.seq === 2 ? { ...l, entry: { ...l.entry, user: 'mallory' } } : l));
    expect(checkChain(changed).broken).toEqual([{ seq: 2, why: expect.stringMatching(/changed/) as unknown }]);
    expect(checkChain(lines.filter((l) => l.seq !== 3)).gaps).toEqual([{ after: 2, before: 4 }]);
    // A line rewritten whole, its hash recomputed: the next line no longer follows it.
    const forged = { ...lines[1]!, entry: { ...lines[1]!.entry, action: 'x' } };
    forged.hash = chainHash(forged.prevHash, forged.entry);
    expect(checkChain([lines[0]!, forged, lines[2]!, lines[3]!]).broken).toEqual([
      { seq: 3, why: expect.stringMatching(/prevHash/) as unknown },
    ]);
    expect(checkChain([lines[1]!, lines[0]!]).broken.map((b) => b.why)).toContain('out of order');
  });
});
