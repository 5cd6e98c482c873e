import { describe, expect, it } from 'vitest';
import { newDirectoryOf, oldDirectoryOf, pgbackrestKnows } from './in-place.action';

describe('upgrade in place', () => {
  it('knows which pgBackRest can follow which major', () => {
    expect(pgbackrestKnows('2.45', 15)).toBe(true);
    expect(pgbackrestKnows('2.45', 17)).toBe(false);
    expect(pgbackrestKnows('2.53', 17)).toBe(true);
    expect(pgbackrestKnows('2.100', 17)).toBe(true);
    expect(pgbackrestKnows('3.0', 18)).toBe(true);
    // A major no release pgherd knows of: refused rather than guessed.
    expect(pgbackrestKnows('2.99', 19)).toBe(false);
  });

  it('makes the new cluster and keeps the old one beside the data directory', () => {
    expect(newDirectoryOf('/var/lib/postgresql/main/', 17)).toBe('/var/lib/postgresql/main.pgherd-17');
    expect(oldDirectoryOf('/var/lib/postgresql/main', 15)).toBe('/var/lib/postgresql/main.pgherd-old-15');
  });
});
