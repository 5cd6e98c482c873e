import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressProblem, allowedNetworks, postGuarded, urlProblem } from './webhook-address';

const none = allowedNetworks([]);

describe('where webhooks may go', () => {
  it.each([
    '127.0.0.1',
    '127.9.9.9',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    '::ffff:10.0.0.1',
    '::ffff:127.0.0.1',
    'fd00::1',
    'fe80::1',
    '64:ff9b::a00:1',
  ])('refuses %s', (a) => {
    expect(addressProblem(a, none)).toMatch(/private|loopback|reserved/);
  });

  // IPv6 forms that reach an IPv4 address, or that are not global: each refused.
  it.each([
    ['2002:7f00:1::', '6to4 of 127.0.0.1'],
    ['2002:a00:1::1', '6to4 of 10.0.0.1'],
    ['2002:a9fe:a9fe::1', '6to4 of the metadata service'],
    ['2002:0:0::', '6to4 of 0.0.0.0'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo (its client obfuscated)'],
    ['2001::1', 'Teredo'],
    ['2001:2::1', 'benchmarking, among the IETF protocol assignments'],
    ['64:ff9b:1::a00:1', 'local-use NAT64'],
    ['::127.0.0.1', 'IPv4-compatible'],
    ['::7f00:1', 'IPv4-compatible, as a URL writes it'],
    ['::8.8.8.8', 'IPv4-compatible, deprecated whatever it embeds'],
    ['::ffff:7f00:1', 'IPv4-mapped, in hexadecimal'],
    ['0:0:0:0:0:ffff:127.0.0.1', 'IPv4-mapped, written out'],
    ['0000:0000:0000:0000:0000:FFFF:7F00:0001', 'IPv4-mapped, zeros and capitals'],
    ['::ffff:0:127.0.0.1', 'IPv4-translated'],
    ['100::1', 'discard-only'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation (3fff::/20)'],
    ['fec0::1', 'site-local'],
    ['fe80::1%eth0', 'link-local with a zone'],
  ])('refuses %s (%s)', (a) => {
    expect(addressProblem(a, none)).toMatch(/private|loopback|reserved/);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '::ffff:808:808', '2a00:1450:4001:81d::200e'])(
    'takes %s',
    (a) => {
      expect(addressProblem(a, none)).toBeNull();
    },
  );

  it('judges a 6to4 address by the IPv4 address it carries', () => {
    expect(addressProblem('2002:808:808::1', none)).toBeNull();
    expect(addressProblem('2002:5db8:d822::', none)).toBeNull();
    expect(addressProblem('2002:c0a8:101::1', none)).toMatch(/192\.168\.1\.1/);
    // An operator's allowed network is what it says: a private IPv4 network is reached through 6to4 only if 2002::/16 is allowed.
    expect(addressProblem('2002:a01:c803::', allowedNetworks(['10.1.0.0/16']))).not.toBeNull();
    expect(addressProblem('2002:a01:c803::', allowedNetworks(['2002:a01::/32']))).toBeNull();
    expect(addressProblem('::ffff:10.1.200.3', allowedNetworks(['10.1.0.0/16']))).toBeNull();
    expect(addressProblem('2002:a01:c803:0:0:ffff::', allowedNetworks(['10.1.0.0/16']))).not.toBeNull();
  });

  it.each([
    'http://[::127.0.0.1]/',
    'http://[::ffff:127.0.0.1]:8080/x',
    'http://[0:0:0:0:0:ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[2002:7f00:1::]/hook',
    'http://[2002:a9fe:a9fe::]/latest/meta-data',
    'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/',
    'http://[64:ff9b:1::a00:1]/',
    'http://[100::1]/',
    'http://[2001:db8::1]/',
    'https://[fec0::1]:8443/',
  ])('refuses the URL %s', async (u) => {
    expect(await urlProblem(new URL(u), none)).toMatch(/private|loopback|reserved/);
  });

  it.each(['https://[2606:4700::1111]/hook', 'http://[2002:808:808::1]:8080/x'])('takes the URL %s', async (u) => {
    expect(await urlProblem(new URL(u), none)).toBeNull();
  });

  it('lets an operator allow a private network, and only that one', () => {
    const allowed = allowedNetworks(['10.1.0.0/16', '127.0.0.1']);
    expect(addressProblem('10.1.200.3', allowed)).toBeNull();
    expect(addressProblem('127.0.0.1', allowed)).toBeNull();
    expect(addressProblem('127.0.0.2', allowed)).not.toBeNull();
    expect(addressProblem('10.2.0.1', allowed)).not.toBeNull();
    expect(() => allowedNetworks(['10.0.0.0/33'])).toThrow(/not a network/);
    expect(() => allowedNetworks(['example.org'])).toThrow(/not a network/);
  });

  it('judges a URL by its literal address or by what its name resolves to', async () => {
    expect(await urlProblem(new URL('http://[::1]:8080/x'), none)).toMatch(/loopback/);
    expect(await urlProblem(new URL('http://169.254.169.254/latest/meta-data'), none)).toMatch(/link-local/);
    expect(await urlProblem(new URL('http://localhost:6379/'), none)).toMatch(/localhost resolves to/);
    expect(await urlProblem(new URL('https://93.184.216.34/hook'), none)).toBeNull();
    // A name that does not resolve here is checked at each delivery instead.
    expect(await urlProblem(new URL('https://hooks.invalid/x'), none)).toBeNull();
  });
});

describe('a delivery', () => {
  let server: http.Server;
  let port: number;
  let hits = 0;
  const saved = process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits++;
      req.resume();
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS;
    else process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS = saved;
    await new Promise((r) => server.close(r));
  });

  it('never connects to a refused address, whether written as one or reached through a name', async () => {
    process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS = '';
    await expect(postGuarded(new URL(`http://127.0.0.1:${port}/x`), {}, '{}', 2000)).rejects.toThrow(/refused: 127.0.0.1 is a loopback/);
    // A name is checked where the connection is made: a rebinding name cannot slip past a check made earlier.
    await expect(postGuarded(new URL(`http://localhost:${port}/x`), {}, '{}', 2000)).rejects.toThrow(/refused: localhost resolves to/);
    // Nor through an IPv6 spelling of the loopback address.
    for (const host of ['[::ffff:127.0.0.1]', '[::127.0.0.1]', '[2002:7f00:1::]'])
      await expect(postGuarded(new URL(`http://${host}:${port}/x`), {}, '{}', 2000), host).rejects.toThrow(/refused: /);
    expect(hits).toBe(0);
    process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS = '127.0.0.0/8,::1';
    expect(await postGuarded(new URL(`http://localhost:${port}/x`), {}, '{}', 2000)).toBe(204);
    expect(hits).toBe(1);
  });
});
