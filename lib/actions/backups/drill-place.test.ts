// Drills of several herds at once on one scratch server: each its own folder and port, so that they never
// claim the same folder or listen on the same port (the restore's own claim would refuse all but one).
import { describe, expect, it } from 'vitest';
import { drillPlace } from './restore-drill.action';

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
