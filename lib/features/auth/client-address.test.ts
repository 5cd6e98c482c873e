import { describe, expect, it } from 'vitest';
import { clientAddressOf, trustedProxies } from './client-address';

describe('the client address', () => {
  it('is the TCP peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddressOf('203.0.113.5', '198.51.100.1', null)).toBe('203.0.113.5');
    expect(clientAddressOf('::ffff:203.0.113.5', ['1.1.1.1, 2.2.2.2'], null)).toBe('203.0.113.5');
    // A rotating header changes nothing.
    for (let i = 0; i < 20; i++) expect(clientAddressOf('203.0.113.5', `10.9.${i}.1`, null)).toBe('203.0.113.5');
  });

  it('behind trusted proxies, is the first hop from the right that is not one of them', () => {
    const proxies = trustedProxies(['10.0.0.0/8', '192.168.1.10', 'fd00::/8']);
    // client -> 192.168.1.10 (trusted) -> 10.1.2.3 (trusted) -> pgherd
    expect(clientAddressOf('10.1.2.3', '203.0.113.9, 192.168.1.10', proxies)).toBe('203.0.113.9');
    // A client that prepends its own hops is not believed past the first untrusted one.
    expect(clientAddressOf('10.1.2.3', '6.6.6.6, 203.0.113.9, 192.168.1.10', proxies)).toBe('203.0.113.9');
    // Straight from an untrusted peer: the header is ignored.
    expect(clientAddressOf('203.0.113.7', '10.1.1.1', proxies)).toBe('203.0.113.7');
    // Garbage written where an address belongs stops the walk at the last proxy.
    expect(clientAddressOf('10.1.2.3', 'not-an-ip', proxies)).toBe('10.1.2.3');
    expect(clientAddressOf('fd00::1', '2001:db8::5', proxies)).toBe('2001:db8::5');
  });

  it('refuses a trusted proxy list it cannot read', () => {
    expect(() => trustedProxies(['10.0.0.0/8', 'example.com'])).toThrow('"example.com" is not an address or a CIDR block');
  });
});
