import { describe, expect, it } from 'vitest';
import { visibleEnds } from './visible';

describe('visibleEnds', () => {
  it('shows spaces at the ends of each part, and escapes what prints as nothing', () => {
    expect(visibleEnds('cloud/orders ')).toBe('cloud/orders\u2423');
    expect(visibleEnds(' cloud/orders')).toBe('\u2423cloud/orders');
    expect(visibleEnds('cloud/ord ers')).toBe('cloud/ord ers');
    expect(visibleEnds('cloud/orders\u200b')).toBe('cloud/orders\\u200b');
    expect(visibleEnds('cloud/\t')).toBe('cloud/\u2423');
    expect(visibleEnds('cloud/?')).toBe('cloud/?');
  });
});
