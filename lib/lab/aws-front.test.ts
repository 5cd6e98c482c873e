import { describe, expect, it } from 'vitest';
import { eachInstance } from './aws-front';

describe('eachInstance', () => {
  it('hands each instance its own item, nested items and all, and leaves the rest as it was', () => {
    const item = (id: string, reason: string) =>
      `<item><groupSet><item><groupId>sg</groupId></item></groupSet><stateReason><code>${reason}</code></stateReason><tagSet><item><key>k</key></item></tagSet><instanceId>${id}</instanceId></item>`;
    const xml = `<r><reservationSet><item><instancesSet>${item('i-1', 'A')}${item('i-2', 'B')}</instancesSet></item><item><instancesSet>${item('i-3', 'C')}</instancesSet></item></reservationSet></r>`;
    expect(eachInstance(xml, (x) => x)).toBe(xml);
    const seen: string[] = [];
    const out = eachInstance(xml, (x) => {
      seen.push(/<instanceId>([^<]+)/.exec(x)![1]!);
      return x.includes('<instanceId>i-2<') ? x.replace(/<code>B</, '<code>Z<') : x;
    });
    expect(seen).toEqual(['i-1', 'i-2', 'i-3']);
    expect(out).toBe(xml.replace('<code>B<', '<code>Z<'));
    expect(eachInstance('<r><instancesSet/></r>', () => 'x')).toBe('<r><instancesSet/></r>');
  });
});
