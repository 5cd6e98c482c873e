// What makes two plans the same: their values in one canonical form, never their words.
import { describe, expect, it } from 'vitest';
import { canonical, changedSince, confirmedSteps, type Arg, type ConfirmedStep } from '@/lib/engine/plan-identity';

const step = (says: string, kind: string, args: Record<string, Arg> = {}): ConfirmedStep => ({ says, does: { kind, ...args } });

describe('canonical', () => {
  it('reads the same value the same however its keys were ordered, nested or not, and leaves out what is undefined', () => {
    expect(canonical({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}');
    expect(canonical({ kind: 'pg.stop', mode: undefined })).toBe(canonical({ kind: 'pg.stop' }));
    // The order of a list is part of what it says (fallback types are tried in order).
    expect(canonical({ types: ['a', 'b'] })).not.toBe(canonical({ types: ['b', 'a'] }));
  });
});

describe('changedSince', () => {
  const confirmed = [
    step('stop i-1 and wait (at most 600 s)', 'ec2.stop', { instanceId: 'i-1' }),
    step('set the type to m6i.xlarge', 'ec2.set-type-and-start', { instanceId: 'i-1', types: ['m6i.xlarge'] }),
  ];

  it('takes the same values in other words for the same plan', () => {
    expect(
      changedSince(confirmed, [step('EC2: stop i-1', 'ec2.stop', { instanceId: 'i-1' }), { ...confirmed[1]!, says: 'resize' }]),
    ).toBeNull();
  });

  it('names each step whose values differ, with its words then and now and the arguments that changed', () => {
    const now = [
      confirmed[0]!,
      step('set the type to m6i.2xlarge', 'ec2.set-type-and-start', { instanceId: 'i-1', types: ['m6i.2xlarge'] }),
    ];
    expect(changedSince(confirmed, now)).toMatchObject({
      code: 'stale',
      reason:
        'what it would do changed since it was confirmed: step 2 was "set the type to m6i.xlarge", now "set the type to m6i.2xlarge" (types ["m6i.xlarge"], now ["m6i.2xlarge"]). Nothing was run; plan it again',
    });
  });

  it('names a step of another kind, one added, one gone, and counts those past the third', () => {
    expect(changedSince(confirmed, [step('start i-1', 'ec2.start', { instanceId: 'i-1' })])?.reason).toBe(
      'what it would do changed since it was confirmed: step 1 was "stop i-1 and wait (at most 600 s)", now "start i-1" (another kind of step: ec2.stop, now ec2.start); step 2 was "set the type to m6i.xlarge", now "(none)". Nothing was run; plan it again',
    );
    const five = [1, 2, 3, 4, 5].map((k) => step(`touch ${k}`, 'touch', { k: String(k) }));
    expect(changedSince([], five)?.reason).toMatch(
      /step 1 was "\(none\)", now "touch 1"; .*step 3 was "\(none\)", now "touch 3"; and 2 more steps\. Nothing was run/,
    );
  });

  it('compares a step confirmed in words only (before steps carried what they do) by its words', () => {
    expect(changedSince(['stop i-1 and wait (at most 600 s)'], [confirmed[0]!])).toBeNull();
    expect(changedSince(['stop i-2 and wait (at most 600 s)'], [confirmed[0]!])?.reason).toMatch(
      /step 1 was "stop i-2 [^"]*", now "stop i-1 [^"]*"\. Nothing/,
    );
  });

  it('pairs each step of a target plan with its words', () => {
    expect(confirmedSteps({ steps: ['a', 'b'], does: [{ kind: 'x' }, { kind: 'y' }] })).toEqual([
      { says: 'a', does: { kind: 'x' } },
      { says: 'b', does: { kind: 'y' } },
    ]);
  });
});
