// Where a webhook may be sent: a rule's owner names the URL, so without this, pgherd's workers would
// POST (and the delivery log would answer with status codes and connection errors) to anything they
// can reach: the cloud's metadata service, pgherd's own database, Redis, the fleet's SSH ports.
// Loopback, private, link-local, shared (CGNAT), multicast and reserved addresses are refused, and so
// are the IPv6 forms that lead to one (IPv4-mapped and 6to4 are judged by the IPv4 address they carry;
// IPv4-compatible, Teredo and NAT64 are refused whole), unless the operator lists a network in
// PGHERD_WEBHOOK_ALLOW_NETWORKS (a chat relay inside the company, the lab's receiver on loopback). The
// check is made on the address each delivery connects to (the lookup's answer), so a name that resolved
// to a public address when the webhook was saved and to a private one later (DNS rebinding) is refused
// at delivery too.
import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { setting } from '@/lib/settings/settings';

const FORBIDDEN: [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'], // "this network"
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // shared address space (carrier-grade NAT)
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], // link-local: the cloud metadata services (169.254.169.254)
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'], // IETF protocol assignments
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'], // benchmarking
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved, and the broadcast address
  // IPv6 forms of an IPv4 address are judged as that address (IPv4-mapped, 6to4: see embeddedIpv4);
  // the others that lead to one are refused whole, whatever they carry.
  ['::', 96, 'ipv6'], // the unspecified address, loopback, and IPv4-compatible ones (::a.b.c.d, deprecated)
  ['::ffff:0:0:0', 96, 'ipv6'], // IPv4-translated (::ffff:0:a.b.c.d)
  ['64:ff9b::', 96, 'ipv6'], // NAT64: an IPv4 address behind an IPv6 one
  ['64:ff9b:1::', 48, 'ipv6'], // local-use NAT64
  ['100::', 64, 'ipv6'], // discard-only
  ['2001::', 23, 'ipv6'], // IETF protocol assignments: Teredo (2001::/32, its client's IPv4 address obfuscated), benchmarking
  ['2001:db8::', 32, 'ipv6'], // documentation
  ['3fff::', 20, 'ipv6'], // documentation
  ['fc00::', 7, 'ipv6'], // unique local
  ['fe80::', 10, 'ipv6'], // link-local
  ['fec0::', 10, 'ipv6'], // site-local (deprecated, still routed inside some networks)
  ['ff00::', 8, 'ipv6'], // multicast
];

const forbidden = new BlockList();
for (const [net, prefix, type] of FORBIDDEN) forbidden.addSubnet(net, prefix, type);

export class WebhookAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookAddressError';
  }
}

/** The networks PGHERD_WEBHOOK_ALLOW_NETWORKS lets webhooks reach though they are private ("10.1.0.0/16,127.0.0.1/32"). */
export function allowedNetworks(list: readonly string[] = setting('PGHERD_WEBHOOK_ALLOW_NETWORKS')): BlockList {
  const allowed = new BlockList();
  for (const item of list) {
    const [net = '', bits] = item.split('/');
    const type = isIP(net);
    const prefix = bits === undefined ? (type === 6 ? 128 : 32) : Number(bits);
    if (!type || !Number.isInteger(prefix) || prefix < 0 || prefix > (type === 6 ? 128 : 32))
      throw new Error(`PGHERD_WEBHOOK_ALLOW_NETWORKS: ${JSON.stringify(item)} is not a network (an address, or address/prefix)`);
    allowed.addSubnet(net, prefix, type === 6 ? 'ipv6' : 'ipv4');
  }
  return allowed;
}

/** An IPv6 address as its eight 16-bit groups (any spelling: compressed, zeros written out, a dotted IPv4 tail, a zone), or null. */
function ipv6Groups(address: string): number[] | null {
  let a = address.replace(/%.*$/, '').toLowerCase();
  if (isIP(a) !== 6) return null;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (dotted) {
    const [p, q, r, t] = dotted.slice(1).map(Number) as [number, number, number, number];
    a = `${a.slice(0, dotted.index)}${((p << 8) | q).toString(16)}:${((r << 8) | t).toString(16)}`;
  }
  const words = (part: string) => (part ? part.split(':').map((w) => parseInt(w, 16)) : []);
  const [head = '', tail] = a.split('::');
  if (tail === undefined) return words(head);
  const left = words(head);
  const right = words(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

const dottedOf = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/**
 * The IPv4 address an IPv6 one leads to, for the forms that carry it in the clear: IPv4-mapped
 * (::ffff:a.b.c.d, however written: ::ffff:7f00:1 is 127.0.0.1) and 6to4 (2002:aabb:ccdd::/48 is
 * reached through a.b.c.d). Null for any other.
 */
function embeddedIpv4(address: string): { v4: string; mapped: boolean } | null {
  const g = ipv6Groups(address);
  if (!g) return null;
  if (g.slice(0, 5).every((w) => w === 0) && g[5] === 0xffff) return { v4: dottedOf(g[6] ?? 0, g[7] ?? 0), mapped: true };
  if (g[0] === 0x2002) return { v4: dottedOf(g[1] ?? 0, g[2] ?? 0), mapped: false };
  return null;
}

const REFUSED =
  'a loopback, private, link-local or reserved address: webhooks go to public addresses only (an operator may allow a network with PGHERD_WEBHOOK_ALLOW_NETWORKS)';

/** Why a webhook may not be sent to `address`, or null. */
export function addressProblem(address: string, allowed = allowedNetworks()): string | null {
  const type = isIP(address);
  if (!type) return `${address} is not an address`;
  const family = type === 6 ? 'ipv6' : 'ipv4';
  const bare = address.replace(/%.*$/, ''); // a link-local address's zone (fe80::1%eth0)
  if (allowed.check(bare, family)) return null;
  const inner = type === 6 ? embeddedIpv4(bare) : null;
  if (inner) {
    // IPv4-mapped is that IPv4 address on the wire: an allowed IPv4 network allows it too.
    if (inner.mapped && allowed.check(inner.v4, 'ipv4')) return null;
    if (forbidden.check(inner.v4, 'ipv4')) return `${address} leads to ${inner.v4}, ${REFUSED}`;
  }
  if (forbidden.check(bare, family)) return `${address} is ${REFUSED}`;
  return null;
}

/** A URL's host as an address, without the brackets of an IPv6 literal. */
const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, '');

/**
 * Why a webhook may not be saved with `url`: its host is (or its name resolves to) an address webhooks
 * may not reach. A name that does not resolve from here is taken (the receiver's name may be known
 * only where the workers run): each delivery checks again where it connects.
 */
export async function urlProblem(url: URL, allowed = allowedNetworks()): Promise<string | null> {
  const host = hostOf(url);
  if (isIP(host)) return addressProblem(host, allowed);
  let found: LookupAddress[];
  try {
    found = await new Promise<LookupAddress[]>((resolve, reject) =>
      dnsLookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
    );
  } catch {
    return null;
  }
  for (const f of found) {
    const why = addressProblem(f.address, allowed);
    if (why) return `${host} resolves to ${why}`;
  }
  return null;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http.request: the name resolved as usual, and refused when any address it gives is
 * one webhooks may not reach (the connection then never starts). http.request does not call a lookup
 * for an address literal: the caller checks those with addressProblem first.
 */
export function guardedLookup(allowed = allowedNetworks()) {
  return (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      const blocked = addresses.map((a) => addressProblem(a.address, allowed)).find((why) => why !== null);
      const first = addresses[0];
      if (blocked)
        callback(Object.assign(new WebhookAddressError(`refused: ${hostname} resolves to ${blocked}`), { code: 'EPGHERDBLOCKED' }), '', 0);
      else if (options.all) callback(null, addresses);
      else if (!first) callback(Object.assign(new Error(`${hostname} resolves to no address`), { code: 'ENOTFOUND' }), '', 0);
      else callback(null, first.address, first.family);
    });
  };
}

/**
 * POSTs `body` to `url` where webhooks may go: an address literal checked before, a name at each
 * connection's lookup; no redirect followed; the whole exchange bounded by `timeoutMs`. The status.
 */
export async function postGuarded(url: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<number> {
  const allowed = allowedNetworks();
  const host = hostOf(url);
  if (isIP(host)) {
    const why = addressProblem(host, allowed);
    if (why) throw new WebhookAddressError(`refused: ${why}`);
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<number>((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: guardedLookup(allowed) as unknown as http.RequestOptions['lookup'],
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        res.resume(); // the receiver's body is not read: only its status counts
        resolve(res.statusCode ?? 0);
      },
    );
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
