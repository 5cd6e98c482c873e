import { describe, expect, it } from 'vitest';
import { fullsToKeep } from './retention';

const now = new Date('2026-11-27T00:00:00Z');
const full = (hoursAgo: number) => ({ type: 'full' as const, stoppedAt: new Date(now.getTime() - hoursAgo * 3600_000), error: false });
const incr = (hoursAgo: number) => ({ ...full(hoursAgo), type: 'incr' as const });

describe('fullsToKeep', () => {
  it('keeps every full backup of the window and the newest before it, whatever the count', () => {
    // Two full backups 20 s apart after one of yesterday: the count (1) would expire yesterday's.
    expect(fullsToKeep([full(24), full(0.01), full(0.005)], 1, 7, now)).toBe(3);
    expect(fullsToKeep([full(24 * 30), full(24 * 10), full(24 * 3), full(1)], 1, 7, now)).toBe(3);
  });

  it('keeps the count when it asks for more', () => {
    expect(fullsToKeep([full(24 * 30), full(24 * 20), full(24 * 10)], 3, 7, now)).toBe(3);
  });

  it('counts full backups only, and none that failed', () => {
    expect(fullsToKeep([full(24 * 30), incr(2), incr(1), { ...full(1), error: true }], 1, 7, now)).toBe(1);
  });
});
