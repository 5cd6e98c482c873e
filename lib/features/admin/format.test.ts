import { describe, expect, it } from 'vitest';
import { formatBytes, formatLsn } from '@/lib/adapters/format/units';
import { formatValue } from './format';
import { lsnToNumber } from '@/lib/adapters/format/lsn';

describe('format', () => {
  it('formats byte counts the way DBAs read lag', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 kB');
    expect(formatBytes(16 * 1024 * 1024)).toBe('16.0 MB');
    expect(formatBytes(300 * 1024 ** 3)).toBe('300 GB');
  });

  it('round-trips Postgres LSNs', () => {
    for (const lsn of ['0/0', '0/3000148', '16/B374D848', 'FFFF/FFFFFFFF']) expect(formatLsn(lsnToNumber(lsn))).toBe(lsn);
  });

  it('renders empty values as empty and booleans as words', () => {
    expect(formatValue('bytes', null)).toBe('');
    expect(formatValue('bool', true)).toBe('yes');
    expect(formatValue('datetime', new Date('2026-01-02T03:04:05.678Z'))).toBe('2026-01-02 03:04:05Z');
  });
});
