// Where a request came from: the TCP peer, or, when that peer is one of the proxies the deployment
// says it trusts (PGHERD_TRUSTED_PROXIES), the first hop of X-Forwarded-For from the right that is not
// one of them. Never a value the client alone controls: a header it sends straight to pgherd is
// ignored. pgherd's server (lib/entry/web/server.ts) works this out from the socket and passes it to the
// app in CLIENT_ADDRESS_HEADER, which it overwrites on every request; the audit log and the sign-in
// throttle read it from there.
import net from 'node:net';

export const CLIENT_ADDRESS_HEADER = 'x-pgherd-client-address';

const bare = (a: string) => (a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a);

/** ["10.0.0.0/8", "192.168.1.10", "fd00::/8"] -> a list to check addresses against; null when none is set. */
export function trustedProxies(addresses: readonly string[]): net.BlockList | null {
  if (!addresses.length) return null;
  const list = new net.BlockList();
  for (const raw of addresses) {
    const [addr = '', bits] = raw.split('/');
    const family = net.isIPv4(addr) ? 'ipv4' : net.isIPv6(addr) ? 'ipv6' : null;
    if (!family || (bits !== undefined && !/^\d{1,3}$/.test(bits)))
      throw new Error(`PGHERD_TRUSTED_PROXIES: ${JSON.stringify(raw)} is not an address or a CIDR block`);
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return list;
}

const trusted = (list: net.BlockList, a: string) => net.isIP(a) !== 0 && list.check(a, net.isIPv4(a) ? 'ipv4' : 'ipv6');

/** The client's address from the socket's peer and X-Forwarded-For, trusting only `proxies`. */
export function clientAddressOf(
  peer: string | undefined,
  forwardedFor: string | string[] | undefined,
  proxies: net.BlockList | null,
): string {
  let addr = bare(peer ?? '');
  if (proxies) {
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? ''))
      .split(',')
      .map((h) => bare(h.trim()))
      .filter(Boolean);
    // Walk back from the peer through the proxies we trust; the first hop that is not one is the client.
    while (trusted(proxies, addr)) {
      const next = hops.pop();
      if (next === undefined) break;
      if (!net.isIP(next)) break; // a hop a trusted proxy could not have written: keep what we have
      addr = next;
    }
  }
  return addr.slice(0, 64);
}

/** The address pgherd's server worked out (see above); empty under `next dev`, which has no such server. */
export function clientAddress(header: string | string[] | null | undefined): string {
  const v = Array.isArray(header) ? header[0] : header;
  return (v ?? '').slice(0, 64);
}
