import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressProblem, allowedNetworks, postGuarded, urlProblem } from './webhook-address';

const none = allowedNetworks('');

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

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])('takes %s', (a) => {
    expect(addressProblem(a, none)).toBeNull();
  });

  it('lets an operator allow a private network, and only that one', () => {
    const allowed = allowedNetworks('10.1.0.0/16, 127.0.0.1');
    expect(addressProblem('10.1.200.3', allowed)).toBeNull();
    expect(addressProblem('127.0.0.1', allowed)).toBeNull();
    expect(addressProblem('127.0.0.2', allowed)).not.toBeNull();
    expect(addressProblem('10.2.0.1', allowed)).not.toBeNull();
    expect(() => allowedNetworks('10.0.0.0/33')).toThrow(/not a network/);
    expect(() => allowedNetworks('example.org')).toThrow(/not a network/);
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
    process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS = saved;
    await new Promise((r) => server.close(r));
  });

  it('never connects to a refused address, whether written as one or reached through a name', async () => {
    process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS = '';
    await expect(postGuarded(new URL(`http://127.0.0.1:${port}/x`), {}, '{}', 2000)).rejects.toThrow(/refused: 127.0.0.1 is a loopback/);
    // A name is checked where the connection is made: a rebinding name cannot slip past a check made earlier.
    await expect(postGuarded(new URL(`http://localhost:${port}/x`), {}, '{}', 2000)).rejects.toThrow(/refused: localhost resolves to/);
    expect(hits).toBe(0);
    process.env.PGHERD_WEBHOOK_ALLOW_NETWORKS = '127.0.0.0/8,::1';
    expect(await postGuarded(new URL(`http://localhost:${port}/x`), {}, '{}', 2000)).toBe(204);
    expect(hits).toBe(1);
  });
});
