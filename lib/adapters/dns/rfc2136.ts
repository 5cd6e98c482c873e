// RFC 2136 dynamic updates over UDP, signed with TSIG, and plain queries to the zone's authoritative
// server to verify them. Messages are built and read with dns-packet.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { sign, verify, type TsigKey } from './tsig';

export interface DnsServer {
  host: string;
  port: number;
}

export type RecordType = 'CNAME' | 'A';

/** The whole record set a name should hold afterwards (a CNAME has exactly one value). */
export interface RecordSet {
  name: string;
  type: RecordType;
  ttl: number;
  values: string[];
}

export class DnsUpdateError extends Error {
  constructor(
    message: string,
    readonly rcode?: string,
  ) {
    super(message);
    this.name = 'DnsUpdateError';
  }
}

const OPCODE_UPDATE = 5 << 11; // dns-packet has no opcode field: the header's flags carry it

const fqdn = (n: string) => n.replace(/\.$/, '').toLowerCase();

/** Whether a name's answers are exactly these values (order, case, trailing dots and repeats aside: a record set is a set). */
export function sameAnswers(values: string[], answers: string[]): boolean {
  const set = (xs: string[]) => [...new Set(xs.map(fqdn))].sort().join(',');
  return set(values) === set(answers);
}

/** One datagram out, the answer with the same id back (or a timeout), retried on silence. */
async function exchange(server: DnsServer, wire: Buffer, id: number, timeoutMs: number, attempts = 3): Promise<Buffer> {
  let lastError: Error = new Error('no answer');
  for (let i = 0; i < attempts; i++) {
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        const sock = dgram.createSocket(server.host.includes(':') ? 'udp6' : 'udp4');
        const timer = setTimeout(() => {
          sock.close();
          reject(new Error(`no answer from ${server.host}:${server.port} within ${timeoutMs} ms`));
        }, timeoutMs);
        sock.on('error', (err) => {
          clearTimeout(timer);
          sock.close();
          reject(err);
        });
        sock.on('message', (msg) => {
          if (msg.length < 12 || msg.readUInt16BE(0) !== id) return; // not ours
          clearTimeout(timer);
          sock.close();
          resolve(msg);
        });
        sock.send(wire, server.port, server.host);
      });
    } catch (err) {
      lastError = err as Error;
    }
  }
  throw lastError;
}

/** What the step record shows: the change in words, never the key. */
export function describeUpdate(server: DnsServer, zone: string, rs: RecordSet): string {
  return `DNS UPDATE zone ${fqdn(zone)} at ${server.host}:${server.port}: ${fqdn(rs.name)} ${rs.ttl} ${rs.type} ${rs.values.map(fqdn).join(', ') || '(removed)'}`;
}

/** The UPDATE message that replaces everything at `rs.name` with `rs.values` (not signed yet). */
export function buildUpdate(zone: string, rs: RecordSet): { id: number; message: Buffer } {
  if (rs.type === 'CNAME' && rs.values.length > 1) throw new DnsUpdateError(`a CNAME holds one value, not ${rs.values.length}`);
  const id = randomInt(0, 65536);
  const message = dnsPacket.encode({
    type: 'query',
    id,
    flags: OPCODE_UPDATE,
    questions: [{ name: fqdn(zone), type: 'SOA', class: 'IN' }], // the zone section
    answers: [], // prerequisites: none
    // The update section: delete the RRset of the type pgherd manages at the name (RFC 2136 2.5.2),
    // then add the new one. Never every type: a TXT or MX someone else keeps at the name stays.
    authorities: [
      { name: fqdn(rs.name), type: 'ANY', class: 'ANY', ttl: 0, data: Buffer.alloc(0) } as unknown as dnsPacket.Answer,
      ...rs.values.map((v): dnsPacket.Answer => ({
        name: fqdn(rs.name),
        type: rs.type,
        class: 'IN',
        ttl: rs.ttl,
        data: rs.type === 'CNAME' ? fqdn(v) : v,
      })),
    ],
    additionals: [],
  });
  // dns-packet cannot write a typed record with empty data (an RRset deletion): it was written as type
  // ANY above, and its TYPE field is set here. dns-packet does not compress names, so the field sits
  // right after the header, the zone section and the record's name.
  const at = 12 + nameLength(fqdn(zone)) + 4 + nameLength(fqdn(rs.name));
  if (message.readUInt16BE(at) !== TYPE_ANY) throw new Error('internal: the RRset deletion is not where it was written');
  message.writeUInt16BE(TYPE_CODES[rs.type], at);
  return { id, message };
}

const TYPE_ANY = 255;
/** A name's length on the wire, uncompressed: each label with its length byte, and the root's zero. */
const nameLength = (n: string) =>
  n
    .replace(/\.$/, '')
    .split('.')
    .filter(Boolean)
    .reduce((sum, l) => sum + Buffer.byteLength(l) + 1, 0) + 1;
const TYPE_CODES: Record<RecordSet['type'], number> = { A: 1, CNAME: 5 };

/** Signs and sends a message; the raw answer and the request's MAC (to verify it with). */
export async function sendSigned(
  server: DnsServer,
  key: TsigKey,
  id: number,
  message: Buffer,
  timeoutMs = 3000,
): Promise<{ answer: Buffer; requestMac: Buffer }> {
  const signed = sign(message, key);
  return { answer: await exchange(server, signed.wire, id, timeoutMs), requestMac: signed.requestMac };
}

/**
 * Replaces the `rs.type` records at `rs.name` with `rs.values` in one UPDATE, signed with `key`; the answer's
 * MAC is checked. Throws DnsUpdateError with the server's answer (NOTAUTH for a wrong key, REFUSED
 * for an update the zone does not allow, ...).
 */
export async function replaceRecordSet(server: DnsServer, zone: string, key: TsigKey, rs: RecordSet, timeoutMs = 3000): Promise<void> {
  const { id, message } = buildUpdate(zone, rs);
  await sendUpdate(server, key, id, message, `the update of ${fqdn(rs.name)}`, timeoutMs);
}

/** Sends a signed UPDATE; throws DnsUpdateError unless the server answers NOERROR with a good MAC. */
async function sendUpdate(server: DnsServer, key: TsigKey, id: number, message: Buffer, what: string, timeoutMs: number): Promise<void> {
  const { answer, requestMac } = await sendSigned(server, key, id, message, timeoutMs);
  const decoded = dnsPacket.decode(answer) as dnsPacket.Packet & { rcode?: string };
  const rcode = decoded.rcode ?? 'UNKNOWN';
  const check = verify(answer, key, requestMac);
  if (rcode !== 'NOERROR') {
    throw new DnsUpdateError(`${server.host}:${server.port} refused ${what}: ${rcode}${check.ok ? '' : ` (${check.reason})`}`, rcode);
  }
  if (!check.ok) throw new DnsUpdateError(`${server.host}:${server.port} answered NOERROR but ${check.reason}: not trusted`, rcode);
}

/**
 * Whether the server would take an UPDATE of `zone` signed with `key`, changing nothing: an UPDATE
 * whose only content is the prerequisite "the zone's name is in use" (RFC 2136 2.4.4). A wrong key
 * gets NOTAUTH, a zone that takes no updates from this key REFUSED; both throw DnsUpdateError.
 */
export async function checkUpdateAccess(server: DnsServer, zone: string, key: TsigKey, timeoutMs = 3000): Promise<void> {
  const id = randomInt(0, 65536);
  const message = dnsPacket.encode({
    type: 'query',
    id,
    flags: OPCODE_UPDATE,
    questions: [{ name: fqdn(zone), type: 'SOA', class: 'IN' }],
    answers: [{ name: fqdn(zone), type: 'ANY', class: 'ANY', ttl: 0, data: Buffer.alloc(0) } as unknown as dnsPacket.Answer],
    authorities: [],
    additionals: [],
  });
  await sendUpdate(server, key, id, message, `a signed UPDATE of zone ${fqdn(zone)}`, timeoutMs);
}

/** The values `name` holds for `type` at `server` (no recursion): CNAME targets and A addresses. */
export async function lookup(server: DnsServer, name: string, type: RecordType, timeoutMs = 2000): Promise<string[]> {
  const id = randomInt(0, 65536);
  const wire = dnsPacket.encode({ type: 'query', id, flags: 0, questions: [{ name: fqdn(name), type, class: 'IN' }] });
  const answer = dnsPacket.decode(await exchange(server, wire, id, timeoutMs)) as dnsPacket.Packet & { rcode?: string };
  if (answer.rcode !== 'NOERROR' && answer.rcode !== 'NXDOMAIN')
    throw new Error(`${server.host}:${server.port} answered ${answer.rcode ?? 'no rcode'} for ${fqdn(name)} ${type}`);
  return (answer.answers ?? [])
    .filter((a) => a.type === type && fqdn(a.name) === fqdn(name))
    .map((a) => fqdn(String((a as { data: unknown }).data)))
    .sort();
}

/**
 * The zone's SOA serial as `server` answers it: it moves with every change to the zone, so one question
 * says whether any of its names may answer otherwise than before.
 */
export async function soaSerial(server: DnsServer, zone: string, timeoutMs = 2000): Promise<number> {
  const id = randomInt(0, 65536);
  const wire = dnsPacket.encode({ type: 'query', id, flags: 0, questions: [{ name: fqdn(zone), type: 'SOA', class: 'IN' }] });
  const answer = dnsPacket.decode(await exchange(server, wire, id, timeoutMs));
  const soa = (answer.answers ?? []).find((a) => a.type === 'SOA');
  if (!soa) throw new Error(`${server.host}:${server.port} answered no SOA for ${fqdn(zone)}`);
  return (soa as dnsPacket.Answer & { data: { serial: number } }).data.serial;
}

/**
 * Asks until `name` answers exactly `values` (a deadline: DNS that does not follow is a failure). A
 * lookup that fails is asked again; if the last one failed, the error says so, not "still answers".
 */
export async function waitAnswers(
  server: DnsServer,
  rs: RecordSet,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<string[]> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const wanted = rs.values.map(fqdn).join(', ') || 'nothing';
  for (;;) {
    const last = await lookup(server, rs.name, rs.type).then(
      (answers) => ({ answers }),
      (err: unknown) => ({ failed: err instanceof Error ? err.message : String(err) }),
    );
    if ('answers' in last && sameAnswers(rs.values, last.answers)) return last.answers;
    if (opts.signal?.aborted || Date.now() > deadline) {
      throw new DnsUpdateError(
        'answers' in last
          ? `${fqdn(rs.name)} still answers ${last.answers.join(', ') || 'nothing'} instead of ${wanted}`
          : `${fqdn(rs.name)} could not be asked whether it answers ${wanted}: ${last.failed}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
