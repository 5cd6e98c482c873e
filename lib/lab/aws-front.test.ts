import { describe, expect, it } from 'vitest';
import { eachInstance, takeClientTokenFilter, withClientToken } from './aws-front';

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

describe('client tokens, as EC2 says them and moto does not', () => {
  it('takes the client-token filter out of DescribeInstances, keeping the other filters', () => {
    const p = new URLSearchParams({
      Action: 'DescribeInstances',
      'Filter.1.Name': 'tag:Name',
      'Filter.1.Value.1': 'x',
      'Filter.2.Name': 'client-token',
      'Filter.2.Value.1': 'pgherd-a',
      'Filter.2.Value.2': 'pgherd-b',
    });
    expect(takeClientTokenFilter(p)).toEqual(['pgherd-a', 'pgherd-b']);
    expect([...p.keys()]).toEqual(['Action', 'Filter.1.Name', 'Filter.1.Value.1']);
    expect(takeClientTokenFilter(new URLSearchParams({ Action: 'DescribeInstances' }))).toBeNull();
  });

  it('says an instance its token once, after its id', () => {
    const item = '<item><instanceId>i-1</instanceId><tagSet/></item>';
    const once = withClientToken(item, 'pgherd-a');
    expect(once).toBe('<item><instanceId>i-1</instanceId><clientToken>pgherd-a</clientToken><tagSet/></item>');
    expect(withClientToken(once, 'pgherd-b')).toBe(once);
  });
});
