import { describe, expect, it } from 'vitest';
import { minorTargets } from './pending';

describe('minorTargets', () => {
  it('reads a release per major, and refuses what is not a release', () => {
    expect([...minorTargets('15.18, 17.10')]).toEqual([
      [15, 150018],
      [17, 170010],
    ]);
    expect(minorTargets('').size).toBe(0);
    expect(() => minorTargets('15.18,latest')).toThrow(/"latest" is not a release such as 15\.18/);
  });
});
