import { describe, expect, it } from 'vitest';
import { safeNext } from './safe-next';

describe('next= after sign-in', () => {
  it('keeps paths on this console', () => {
    expect(safeNext('/admin/instances?role=replica#x')).toBe('/admin/instances?role=replica#x');
    expect(safeNext('/operations/12')).toBe('/operations/12');
  });
  it('sends everything that could lead elsewhere to the dashboard', () => {
    for (const bad of [
      '//evil.example',
      '/\\evil.example',
      '/\t/evil.example',
      '/\n/evil.example',
      'https://evil.example',
      'javascript:alert(1)',
      '',
      '/%5C%5Cevil.example/..',
      undefined,
      ['/x'],
    ]) {
      const out = safeNext(bad);
      expect(new URL(out, 'http://pgherd.invalid').origin, String(bad)).toBe('http://pgherd.invalid');
    }
    expect(safeNext('//evil.example')).toBe('/');
    expect(safeNext('/\\evil.example')).toBe('/');
  });
});
