import { describe, expect, it } from 'vitest';
import { parsePostmasterPid, servesAddress } from './postmaster-pid';

// As PostgreSQL 15 wrote it for a lab instance.
const FILE = '41807\n/tmp/lab/h1-a\n1795800000\n5432\n/tmp/lab/h1-a\n127.0.88.4\n  5432001     32789\nready   \n';
const t = { host: '127.0.88.4', port: 5432, dataDirectory: '/tmp/lab/h1-a/' };

describe('postmaster.pid', () => {
  it('reads the fields a postmaster writes', () => {
    expect(parsePostmasterPid(FILE)).toEqual({
      pid: 41807,
      dataDirectory: '/tmp/lab/h1-a',
      startedAt: 1795800000,
      port: 5432,
      listenAddress: '127.0.88.4',
      status: 'ready',
    });
  });

  it('refuses what no postmaster wrote: empty, cut short, not numbers, a relative directory', () => {
    for (const bad of ['', '41807\n', 'x\n/tmp/d\n1\n5432\n', '41807\ndata\n1\n5432\n', '41807\n/d\n1\n70000\n', '-1\n/d\n1\n5432\n'])
      expect(parsePostmasterPid(bad), JSON.stringify(bad)).toBeNull();
  });

  it('proves the address only for the recorded directory, port and address', () => {
    const f = parsePostmasterPid(FILE)!;
    expect(servesAddress(f, t)).toBe(true);
    // Every address proves nothing: a second server with * on a port another holds on IPv4 starts on IPv6 alone.
    expect(servesAddress({ ...f, listenAddress: '*' }, t)).toBe(false);
    // Another cluster's directory on a shared host, on the same port of another address: not this instance.
    expect(servesAddress({ ...f, listenAddress: '127.0.88.9' }, t)).toBe(false);
    expect(servesAddress({ ...f, port: 5433 }, t)).toBe(false);
    expect(servesAddress({ ...f, dataDirectory: '/tmp/lab/h2-a' }, t)).toBe(false);
    // A name where the file has an address proves nothing by itself.
    expect(servesAddress(f, { ...t, host: 'db1.example.com' })).toBe(false);
    expect(servesAddress({ ...f, listenAddress: '' }, t)).toBe(false);
  });
});
