// RFC 2136 updates signed with TSIG against the lab's BIND 9, checked by querying it.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { describe, expect, it } from 'vitest';
import { readLab } from '@/lib/lab/lab';
import { parseDnsConfig } from './config';
import { buildUpdate, DnsUpdateError, lookup, replaceRecordSet, sendSigned, soaSerial, waitAnswers } from './rfc2136';
import { verify } from './tsig';

const lab = readLab(inject('labFile'));
const dns = lab.dns!;
const server = { host: dns.server, port: dns.port };
const key = dns.key;
const scratch = () => `t-${randomBytes(4).toString('hex')}.db.${dns.zone}`;
const [first, second] = lab.instances.filter((i) => i.role === 'replica');

describe('the lab zone', () => {
  it('answers each herd\u2019s write name with its primary, and each server with its address', async () => {
    const h = dns.herds[0];
    const primary = lab.instances.find((i) => i.environment === h!.environment && i.herd === h!.herd && i.role === 'primary')!;
    expect(await lookup(server, h!.writeName, 'CNAME')).toEqual([primary.server]);
    expect(await lookup(server, primary.server, 'A')).toEqual([primary.address]);
  });
});

describe('replaceRecordSet', () => {
  it('moves a CNAME in one signed update, and the server\u2019s answer carries a MAC that checks', async () => {
    const name = scratch();
    const serial = await soaSerial(server, dns.zone);
    await replaceRecordSet(server, dns.zone, key, { name, type: 'CNAME', ttl: 30, values: [first!.server] });
    expect(await lookup(server, name, 'CNAME')).toEqual([first!.server]);
    // The zone's serial moved with the update: what the failover bench watches instead of every name.
    expect(await soaSerial(server, dns.zone)).toBeGreaterThan(serial);
    await replaceRecordSet(server, dns.zone, key, { name, type: 'CNAME', ttl: 30, values: [second!.server] });
    expect(await waitAnswers(server, { name, type: 'CNAME', ttl: 30, values: [second!.server] })).toEqual([second!.server]);
  });

  it('replaces only the record type it manages: a TXT record someone else keeps at the name stays', async () => {
    const name = scratch();
    await replaceRecordSet(server, dns.zone, key, { name, type: 'A', ttl: 30, values: [first!.address] });
    // Added the way an administrator would, with nsupdate and the zone's key.
    const add = spawnSync('nsupdate', ['-y', `hmac-sha256:${key.name}:${key.secret}`], {
      input: [
        `server ${server.host} ${server.port}`,
        `zone ${dns.zone}`,
        `update add ${name}. 30 TXT "kept-by-someone-else"`,
        'send',
        '',
      ].join('\n'),
      encoding: 'utf8',
    });
    expect(add.status, add.stderr).toBe(0);
    await replaceRecordSet(server, dns.zone, key, { name, type: 'A', ttl: 30, values: [second!.address] });
    expect(await lookup(server, name, 'A')).toEqual([second!.address]);
    const txt = spawnSync('dig', [`@${server.host}`, '-p', String(server.port), '+short', name, 'TXT'], { encoding: 'utf8' });
    expect(txt.stdout.trim()).toBe('"kept-by-someone-else"');
  });

  it('replaces a whole A record set (a read name over several replicas)', async () => {
    const name = scratch();
    await replaceRecordSet(server, dns.zone, key, { name, type: 'A', ttl: 30, values: [first!.address, second!.address] });
    expect(await lookup(server, name, 'A')).toEqual([first!.address, second!.address].sort());
    await replaceRecordSet(server, dns.zone, key, { name, type: 'A', ttl: 30, values: [second!.address] });
    expect(await lookup(server, name, 'A')).toEqual([second!.address]);
  });

  it('fails with the server\u2019s answer when the key is wrong or unknown, and nothing changes', async () => {
    const name = scratch();
    await replaceRecordSet(server, dns.zone, key, { name, type: 'CNAME', ttl: 30, values: [first!.server] });
    const wrongSecret = { ...key, secret: randomBytes(32).toString('base64') };
    await expect(
      replaceRecordSet(server, dns.zone, wrongSecret, { name, type: 'CNAME', ttl: 30, values: [second!.server] }),
    ).rejects.toThrow(/refused the update of .*: NOTAUTH/);
    const unknown = { ...key, name: 'nobody' };
    const err = (await replaceRecordSet(server, dns.zone, unknown, { name, type: 'CNAME', ttl: 30, values: [second!.server] }).catch(
      (e: unknown) => e,
    )) as DnsUpdateError;
    expect(err).toBeInstanceOf(DnsUpdateError);
    expect(err.rcode).toBe('NOTAUTH');
    expect(await lookup(server, name, 'CNAME')).toEqual([first!.server]);
  });

  it('refuses to trust an answer whose MAC does not check (altered, or signed with another key)', async () => {
    const { id, message } = buildUpdate(dns.zone, { name: scratch(), type: 'CNAME', ttl: 30, values: [first!.server] });
    const { answer, requestMac } = await sendSigned(server, key, id, message);
    expect(verify(answer, key, requestMac)).toEqual({ ok: true });
    const altered = Buffer.from(answer);
    altered[3]! ^= 0x01; // a header bit flipped on the way
    expect(verify(altered, key, requestMac)).toMatchObject({ ok: false });
    expect(verify(answer, { ...key, secret: randomBytes(32).toString('base64') }, requestMac)).toMatchObject({ ok: false });
  });

  it('refuses a second value for a CNAME before sending anything', async () => {
    await expect(
      replaceRecordSet(server, dns.zone, key, { name: scratch(), type: 'CNAME', ttl: 30, values: [first!.server, second!.server] }),
    ).rejects.toThrow('a CNAME holds one value, not 2');
  });
});

describe('parseDnsConfig', () => {
  it('reads the lab\u2019s file and refuses what does not fit, naming the field', () => {
    expect(parseDnsConfig({ zones: [{ zone: dns.zone, provider: 'rfc2136', server, key }] })[0]).toMatchObject({
      zone: dns.zone,
      server,
      key: { name: key.name },
    });
    expect(() => parseDnsConfig({ zones: [{ zone: 'x; rm', provider: 'rfc2136', server, key }] })).toThrow(/zones\.0\.zone/);
    expect(() =>
      parseDnsConfig({ zones: [{ zone: 'a.b', provider: 'rfc2136', server, key: { name: 'k', algorithm: 'hmac-sha256' } }] }),
    ).toThrow(/exactly one of secret and secretFile/);
    expect(() => parseDnsConfig({ zones: [{ zone: 'a.b', provider: 'rfc2136', server, key: { ...key, algorithm: 'hmac-md5' } }] })).toThrow(
      /algorithm/,
    );
  });
});
