// Where a drill goes and to when a restore recovers. Drills of several herds at once on one scratch server:
// each its own folder and port, so that they never claim the same folder or listen on the same port (the
// restore's own claim would refuse all but one). A target time: every digit typed reaches pgBackRest.
import { describe, expect, it } from 'vitest';
import { drillPlace } from './restore-drill.action';
import { pgbackrestTime } from '@/lib/actions/steps/restore-steps';

describe('drillPlace', () => {
  const given = { dataDirectory: '/srv/scratch/drill/data', port: 25910 };
  it('a folder of its own beside the one given, and the port plus its rank', () => {
    const places = ['prod-alpha', 'prod-beta', 'prod-gamma'].map((s, k) => drillPlace(given, s, k));
    expect(places).toEqual([
      { dataDirectory: '/srv/scratch/drill-prod-alpha/data', port: 25910 },
      { dataDirectory: '/srv/scratch/drill-prod-beta/data', port: 25911 },
      { dataDirectory: '/srv/scratch/drill-prod-gamma/data', port: 25912 },
    ]);
  });
});

describe('pgbackrestTime', () => {
  it('keeps every digit of the fraction, in UTC, whatever the zone typed', () => {
    expect(pgbackrestTime('2026-11-25T21:00:00.123456Z')).toBe('2026-11-25 21:00:00.123456+00');
    expect(pgbackrestTime('2026-11-25 22:00:00.000789+01:00')).toBe('2026-11-25 21:00:00.000789+00');
    expect(pgbackrestTime('2026-11-25T21:00:00Z')).toBe('2026-11-25 21:00:00.000000+00');
    expect(pgbackrestTime('2026-11-25T21:00:00.5-0230')).toBe('2026-11-25 23:30:00.500000+00');
  });
});
