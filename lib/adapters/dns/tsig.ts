// TSIG (RFC 8945) with HMAC-SHA256: signs a DNS message and checks the MAC of the answer to it.
// dns-packet has no TSIG, so the record is built here; names are written uncompressed, lower case.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface TsigKey {
  /** The key's name as the server knows it (`key "NAME" { ... }` in named.conf). */
  name: string;
  algorithm: 'hmac-sha256';
  /** The shared secret, base64 as tsig-keygen prints it. Never logged, never shown back. */
  secret: string;
}

const TSIG_TYPE = 250;
const CLASS_ANY = 255;
const FUDGE = 300;
const ALGORITHM = 'hmac-sha256.';

/** A domain name in canonical wire form: length-prefixed labels, lower case, no compression. */
export function wireName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = Buffer.from(l.toLowerCase(), 'ascii');
    if (b.length > 63) throw new Error(`DNS label too long: ${l}`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function u16(n: number) {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u48(n: number) {
  const b = Buffer.alloc(6);
  b.writeUIntBE(n, 0, 6);
  return b;
}

/** The TSIG variables that go into every MAC after the message. */
function variables(key: TsigKey, timeSigned: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([
    wireName(key.name),
    u16(CLASS_ANY),
    Buffer.alloc(4),
    wireName(ALGORITHM),
    u48(timeSigned),
    u16(FUDGE),
    u16(error),
    u16(other.length),
    other,
  ]);
}

function hmac(key: TsigKey, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', Buffer.from(key.secret, 'base64'));
  for (const p of parts) h.update(p);
  return h.digest();
}

export interface Signed {
  wire: Buffer;
  /** What the answer's MAC is computed over, with the answer: keep it to verify. */
  requestMac: Buffer;
}

/** Appends a TSIG record to an encoded message (whose ARCOUNT does not count it yet). */
export function sign(message: Buffer, key: TsigKey, now = Math.floor(Date.now() / 1000)): Signed {
  const mac = hmac(key, message, variables(key, now, 0, Buffer.alloc(0)));
  const id = message.readUInt16BE(0);
  const rdata = Buffer.concat([wireName(ALGORITHM), u48(now), u16(FUDGE), u16(mac.length), mac, u16(id), u16(0), u16(0)]);
  const rr = Buffer.concat([wireName(key.name), u16(TSIG_TYPE), u16(CLASS_ANY), Buffer.alloc(4), u16(rdata.length), rdata]);
  const wire = Buffer.concat([message, rr]);
  wire.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { wire, requestMac: mac };
}

export type TsigCheck = { ok: true } | { ok: false; reason: string };

/**
 * Checks the TSIG record that ends `answer` against the request's MAC. An answer without one is not
 * signed (servers answer BADKEY and BADSIG unsigned): the caller reports the server's rcode.
 */
export function verify(answer: Buffer, key: TsigKey, requestMac: Buffer, now = Math.floor(Date.now() / 1000)): TsigCheck {
  const arcount = answer.readUInt16BE(10);
  if (arcount === 0) return { ok: false, reason: 'the answer is not signed' };
  // The TSIG record is the last one and is never compressed: find it by its owner name and type.
  const owner = wireName(key.name);
  const start = lastIndexOfRecord(answer, owner);
  if (start < 0) return { ok: false, reason: 'the answer is not signed with this key' };
  let o = start + owner.length + 10;
  const alg = wireName(ALGORITHM);
  if (!answer.subarray(o, o + alg.length).equals(alg)) return { ok: false, reason: 'the answer is signed with another algorithm' };
  o += alg.length;
  const timeSigned = answer.readUIntBE(o, 6);
  const fudge = answer.readUInt16BE(o + 6);
  const macSize = answer.readUInt16BE(o + 8);
  const mac = answer.subarray(o + 10, o + 10 + macSize);
  o += 10 + macSize;
  const originalId = answer.readUInt16BE(o);
  const error = answer.readUInt16BE(o + 2);
  const otherLen = answer.readUInt16BE(o + 4);
  const other = answer.subarray(o + 6, o + 6 + otherLen);
  const unsigned = Buffer.from(answer.subarray(0, start));
  unsigned.writeUInt16BE(arcount - 1, 10);
  unsigned.writeUInt16BE(originalId, 0);
  const expected = hmac(key, u16(requestMac.length), requestMac, unsigned, variables(key, timeSigned, error, other));
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected))
    return { ok: false, reason: 'the answer\u2019s MAC does not match (wrong key, or altered on the way)' };
  if (Math.abs(now - timeSigned) > fudge) return { ok: false, reason: 'the answer was signed outside the allowed time window' };
  if (error !== 0) return { ok: false, reason: `TSIG error ${error}` };
  return { ok: true };
}

function lastIndexOfRecord(buf: Buffer, owner: Buffer): number {
  const needle = Buffer.concat([owner, u16(TSIG_TYPE), u16(CLASS_ANY)]);
  return buf.lastIndexOf(needle);
}
