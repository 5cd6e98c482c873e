import { describe, expect, it } from 'vitest';
import { lsnSchema } from './report';

describe('an LSN in a report', () => {
  it('is X/Y in hex, below 80000000/0 (pgherd stores LSNs in bigint columns: beyond is a 4xx, never a 500)', () => {
    for (const ok of ['0/0', '16/B374D848', '7FFFFFFF/FFFFFFFF']) expect(lsnSchema.safeParse(ok).success, ok).toBe(true);
    for (const bad of ['80000000/0', 'FFFFFFFF/FFFFFFFF', '1/2/3', 'G/0', '']) expect(lsnSchema.safeParse(bad).success, bad).toBe(false);
  });
});
