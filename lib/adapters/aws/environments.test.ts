import { describe, expect, it } from 'vitest';
import { awsEnvironments, environmentOfInstance } from './environments';

const parse = (v: unknown) => awsEnvironments({ PGHERD_AWS_ENVIRONMENTS: JSON.stringify(v) });

describe('PGHERD_AWS_ENVIRONMENTS', () => {
  it("gives an instance its VPC's environment first, then its account's in its region, then its account's anywhere", () => {
    const map = parse([
      { environment: 'production', vpc: 'vpc-0a' },
      { environment: 'staging', account: '123456789012', region: 'eu-west-1', approve: true },
      { environment: 'dev', account: '123456789012' },
    ]);
    const at = (vpcId: string, region: string) => environmentOfInstance(map, { vpcId, account: '123456789012', region })?.environment;
    expect([at('vpc-0a', 'eu-west-1'), at('vpc-0b', 'eu-west-1'), at('vpc-0b', 'us-east-1')]).toEqual(['production', 'staging', 'dev']);
    expect(environmentOfInstance(map, { vpcId: 'vpc-0b', account: '999999999999', region: 'eu-west-1' })).toBeNull();
    expect(environmentOfInstance(null, { vpcId: 'vpc-0a', account: '123456789012', region: 'eu-west-1' })).toBeNull();
  });

  it('refuses a bad value, saying what is wrong', () => {
    expect(awsEnvironments({})).toBeNull();
    expect(() => awsEnvironments({ PGHERD_AWS_ENVIRONMENTS: '[' })).toThrow(/not JSON/);
    expect(() => parse([{ environment: 'x', vpc: 'vpc-0a', account: '123456789012' }])).toThrow(/either a vpc, or an account/);
    expect(() => parse([{ environment: 'x', account: '12' }])).toThrow(/12-digit/);
    expect(() =>
      parse([
        { environment: 'a', vpc: 'vpc-0a' },
        { environment: 'b', vpc: 'vpc-0a' },
      ]),
    ).toThrow(/vpc vpc-0a is mapped to both a and b/);
  });
});
