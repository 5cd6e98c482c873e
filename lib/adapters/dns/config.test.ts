import { describe, expect, it } from 'vitest';
import { parseDnsConfig } from './config';
import { route53Bounds } from './provider';

describe('a Route 53 zone in the DNS configuration', () => {
  it('takes a hosted zone id (with or without /hostedzone/) and no key; refuses a key, a bad id, another provider', () => {
    const [z] = parseDnsConfig({
      zones: [{ zone: 'cloud.db.example.com.', environments: ['cloud'], provider: 'route53', hostedZoneId: '/hostedzone/Z0ABC123' }],
    });
    expect(z).toEqual({
      zone: 'cloud.db.example.com',
      provider: 'route53',
      hostedZoneId: 'Z0ABC123',
      owners: [{ suffix: 'cloud.db.example.com', environments: ['cloud'] }],
    });
    const bad = (zone: Record<string, unknown>) => () => parseDnsConfig({ zones: [{ zone: 'a.b', ...zone }] });
    expect(bad({ provider: 'route53', hostedZoneId: 'z; rm -rf /' })).toThrow(/zones\.0\.hostedZoneId: a hosted zone id/);
    expect(bad({ provider: 'route53' })).toThrow(/zones\.0\.hostedZoneId/);
    expect(bad({ provider: 'route53', hostedZoneId: 'Z1', key: { name: 'k', algorithm: 'hmac-sha256', secret: 'c2VjcmV0' } })).toThrow(
      /Unrecognized key/,
    );
    expect(bad({ provider: 'nsupdate', hostedZoneId: 'Z1' })).toThrow(/zones\.0\.provider/);
  });

  it('bounds the wait for INSYNC from the environment, within limits', () => {
    expect(route53Bounds({})).toEqual({ timeoutMs: 120_000, pollMs: 5000 });
    expect(route53Bounds({ PGHERD_ROUTE53_WAIT_SECONDS: '10', PGHERD_ROUTE53_POLL_SECONDS: '0.2' })).toEqual({
      timeoutMs: 10_000,
      pollMs: 200,
    });
    // Out of bounds, or not a number: refused, naming the setting, never clamped nor taken for the default.
    expect(() => route53Bounds({ PGHERD_ROUTE53_WAIT_SECONDS: '99999' })).toThrow(
      'PGHERD_ROUTE53_WAIT_SECONDS must be a number from 1 to 3600 (got "99999")',
    );
    expect(() => route53Bounds({ PGHERD_ROUTE53_POLL_SECONDS: 'soon' })).toThrow(
      'PGHERD_ROUTE53_POLL_SECONDS must be a number from 0.05 to 60',
    );
  });
});
