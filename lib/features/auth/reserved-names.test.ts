import { describe, expect, it } from 'vitest';
import { isReservedName, refuseReservedName, ReservedNameError } from './reserved-names';

describe('names pgherd uses for itself', () => {
  it('are reserved in any case, with spaces or invisible characters, and in compatibility forms', () => {
    for (const n of [
      'system',
      'SYSTEM',
      ' System ',
      'sys tem',
      'sys\u200btem',
      '\uff53ystem',
      'schedule',
      'rule: nightly',
      'RULE:x',
      'rule :x',
      'rule\uff1a x',
    ])
      expect(isReservedName(n), n).toBe(true);
  });

  it('leave people\u2019s names alone', () => {
    for (const n of ['alice', 'systems', 'system-admin', 'ruler', 'rules', 'scheduler']) expect(isReservedName(n), n).toBe(false);
  });

  it('are refused with a typed error', () => {
    expect(() => refuseReservedName('System')).toThrow(ReservedNameError);
    expect(() => refuseReservedName('alice')).not.toThrow();
  });
});
