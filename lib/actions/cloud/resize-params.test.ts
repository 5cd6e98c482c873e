import { describe, expect, it } from 'vitest';
import { planBody } from '@/lib/engine/operation-schemas';
import { resizeParams } from '@/lib/actions/drivers/resize';

describe('resize parameters', () => {
  const ok = (p: unknown) => resizeParams.safeParse(p);
  it('take decimal numbers as form text or JSON numbers, never true, hex or exponents', () => {
    expect(ok({ minVcpus: '4', minMemoryGiB: '0.5' }).data).toEqual({ minVcpus: 4, minMemoryGiB: 0.5 });
    expect(ok({ minVcpus: 4 }).data).toEqual({ minVcpus: 4 });
    for (const bad of [true, '0x10', '1e3', '-2', 'NaN', ' ', []]) expect(ok({ minVcpus: bad }).success, JSON.stringify(bad)).toBe(false);
  });

  it('take fallback types as a list (the API) or one line (a form), in order, at most five', () => {
    expect(ok({ instanceType: 'm6i.xlarge', fallbackTypes: ['r6i.xlarge', 'm5.xlarge'] }).data?.fallbackTypes).toEqual([
      'r6i.xlarge',
      'm5.xlarge',
    ]);
    expect(ok({ instanceType: 'm6i.xlarge', fallbackTypes: 'r6i.xlarge, m5.xlarge' }).data?.fallbackTypes).toEqual([
      'r6i.xlarge',
      'm5.xlarge',
    ]);
    expect(ok({ instanceType: 'm6i.xlarge', fallbackTypes: ['a.b', 'c.d', 'e.f', 'g.h', 'i.j', 'k.l'] }).success).toBe(false);
    expect(ok({ instanceType: 'm6i.xlarge', fallbackTypes: ['x; rm -rf /'] }).success).toBe(false);
    // The API body carries the list as it is.
    expect(
      planBody.safeParse({ action: 'resize', instanceIds: [1], params: { instanceType: 'm6i.xlarge', fallbackTypes: ['r6i.xlarge'] } })
        .success,
    ).toBe(true);
  });
  it("take backTo (a type for each instance, a reverse's) instead of a wish, never with one, with ids and type names only", () => {
    expect(ok({ backTo: { '3': 'm6i.large', '12': 't3.medium' } }).data).toEqual({ backTo: { '3': 'm6i.large', '12': 't3.medium' } });
    expect(ok({ backTo: { '3': 'm6i.large' }, instanceType: 'm6i.xlarge' }).success).toBe(false);
    expect(ok({ backTo: { '3': 'm6i.large' }, minVcpus: 4 }).success).toBe(false);
    for (const bad of [{}, { '0': 'm6i.large' }, { x: 'm6i.large' }, { '3': 'm6i.large; reboot' }, { '3': '' }, []])
      expect(ok({ backTo: bad }).success, JSON.stringify(bad)).toBe(false);
  });
});
