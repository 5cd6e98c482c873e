// Where a webhook may be sent (issue 17, the attack's SSRF finding): a rule's owner names the URL, so
// without this, pgherd's workers would POST (and the delivery log would answer with status codes and
// connection errors) to anything they can reach: the cloud's metadata service, pgherd's own database,
// Redis, the fleet's SSH ports. Loopback, private, link-local, shared (CGNAT), multicast and reserved
// addresses are refused, unless the operator lists a network in PGHERD_WEBHOOK_ALLOW_NETWORKS (a chat
// relay inside the company, the lab's receiver on loopback). The check is made on the address each
// delivery connects to (the lookup's answer), so a name that resolved to a public address when the
// webhook was saved and to a private one later (DNS rebinding) is refused at delivery too.
import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';

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
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['64:ff9b::', 96, 'ipv6'], // NAT64: an IPv4 address behind an IPv6 one
  ['fc00::', 7, 'ipv6'], // unique local
  ['fe80::', 10, 'ipv6'], // link-local
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
export function allowedNetworks(raw = process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS ?? ''): BlockList {
  const allowed = new BlockList();
  for (const item of raw.split(/[\s,]+/).filter(Boolean)) {
    const [net = '', bits] = item.split('/');
    const type = isIP(net);
    const prefix = bits === undefined ? (type === 6 ? 128 : 32) : Number(bits);
    if (!type || !Number.isInteger(prefix) || prefix < 0 || prefix > (type === 6 ? 128 : 32))
      throw new Error(`PGHERD_WEBHOOK_ALLOW_NETWORKS: ${JSON.stringify(item)} is not a network (an address, or address/prefix)`);
    allowed.addSubnet(net, prefix, type === 6 ? 'ipv6' : 'ipv4');
  }
  return allowed;
}

/** An IPv4 address written as IPv6 (::ffff:10.0.0.1) is judged as the IPv4 address it is. */
function plain(address: string): { address: string; type: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return { address: mapped[1], type: 'ipv4' };
  return { address, type: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
}

/** Why a webhook may not be sent to `address`, or null. */
export function addressProblem(address: string, allowed = allowedNetworks()): string | null {
  const a = plain(address);
  if (!isIP(a.address)) return `${address} is not an address`;
  if (allowed.check(a.address, a.type)) return null;
  if (forbidden.check(a.address, a.type))
    return `${address} is a loopback, private, link-local or reserved address: webhooks go to public addresses only (an operator may allow a network with PGHERD_WEBHOOK_ALLOW_NETWORKS)`;
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
