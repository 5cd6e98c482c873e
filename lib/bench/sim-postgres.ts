// Simulated Postgres endpoints for the refresh benchmark: thousands of address:port pairs that speak the
// wire protocol as far as an observation goes, so that a fleet of 10,000 or 30,000 fits on one machine.
//
// What is real, on the worker's side, is everything pgherd does: TLS verified against a CA for each
// address (a certificate per /24 of addresses, naming each), SCRAM-SHA-256 with the server's proof
// checked, the observation statement parsed, bound and executed, its row read. What is simulated is
// the observed server: no backend is forked, no catalog is read; the row answered is one a real lab
// instance gave to the same statement (a primary's, or a replica's), as text with its column types.
// The real cost on the observed Postgres is measured against the lab's real instances, beside it.
//
// Run as its own process (node --import tsx lib/bench/sim-postgres.ts <config.json>): it prints
// "ready <n>" once every endpoint listens, and stops on SIGTERM. One process holds a listening and an
// accepted socket an endpoint: the bench gives each at most what its file descriptor limit allows.
import { createHmac, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

export interface SimAnswer {
  fields: { name: string; oid: number }[];
  values: (string | null)[];
}

export interface SimConfig {
  /** Each endpoint, which answer it gives, and which of `scram` its role's password has (its herd's). */
  endpoints: { host: string; port: number; answer: 'primary' | 'replica'; secret: number }[];
  /** The certificate and key for an address, by its first three octets ("127.30.4"). */
  certs: Record<string, { cert: string; key: string }>;
  user: string;
  /**
   * SCRAM-SHA-256 as pg_authid keeps it: salt and the two keys (base64), and the iterations. One a
   * herd: its replicas replay the primary's pg_authid, so a herd's members share salt and keys, and
   * herds do not (each primary drew its own salt when the password was set).
   */
  scram: ScramSecret[];
  answers: Record<'primary' | 'replica', SimAnswer>;
  /** The same instances' rows for the risks' statement (lib/fleet/risks/read-risks.ts), sent as a simple query. */
  risks?: Record<'primary' | 'replica', SimAnswer>;
}

export { scramSecret, type ScramSecret } from '../fleet/objects/scram';
import type { ScramSecret } from '../fleet/objects/scram';

/** A backend message: its type byte, then its length (itself included) and body. */
function msg(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const int16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');

function rowDescription(a: SimAnswer): Buffer {
  return msg(
    'T',
    Buffer.concat([
      int16(a.fields.length),
      ...a.fields.map((f) => Buffer.concat([cstr(f.name), int32(0), int16(0), int32(f.oid), int16(-1), int32(-1), int16(0)])),
    ]),
  );
}

function dataRow(a: SimAnswer): Buffer {
  return msg(
    'D',
    Buffer.concat([
      int16(a.values.length),
      ...a.values.map((v) => {
        if (v === null) return int32(-1);
        const b = Buffer.from(v, 'utf8');
        return Buffer.concat([int32(b.length), b]);
      }),
    ]),
  );
}

const error = (code: string, text: string) =>
  msg('E', Buffer.concat([Buffer.from('SFATAL\0', 'latin1'), cstr(`C${code}`), cstr(`M${text}`), Buffer.from([0])]));

const ALTER_PASSWORD = /^ALTER ROLE CURRENT_USER PASSWORD 'SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)'/;

/** One client's session: startup (TLS required), SCRAM, then the extended and simple query protocols. */
function serve(raw: net.Socket, cfg: SimConfig, ctx: tls.SecureContext, answer: SimAnswer, secret: ScramSecret, risks?: SimAnswer) {
  raw.on('error', () => {});
  const precomputed = { row: Buffer.concat([dataRow(answer), msg('C', cstr('SELECT 1'))]), desc: rowDescription(answer) };
  const risksAnswer = risks
    ? Buffer.concat([rowDescription(risks), dataRow(risks), msg('C', cstr('SELECT 1')), msg('Z', Buffer.from('I'))])
    : null;
  let sock: net.Socket | tls.TLSSocket = raw;
  let buf: Buffer = Buffer.alloc(0);
  let phase: 'startup' | 'sasl-first' | 'sasl-final' | 'ready' = 'startup';
  let scram: { clientFirstBare: string; serverFirst: string; nonce: string } | null = null;

  const onData = (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    for (;;) {
      if (phase === 'startup') {
        if (buf.length < 8) return;
        const len = buf.readInt32BE(0);
        if (buf.length < len) return;
        const code = buf.readInt32BE(4);
        const body = buf.subarray(8, len);
        buf = buf.subarray(len);
        if (code === 80877103) {
          // SSLRequest: yes, and the rest of the session over TLS.
          raw.removeListener('data', onData);
          raw.write('S');
          const t = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx });
          t.on('error', () => raw.destroy());
          t.on('data', onData);
          sock = t;
          return;
        }
        if (code === 80877104) {
          raw.write('N'); // GSSENCRequest: no
          continue;
        }
        if (!(sock instanceof tls.TLSSocket)) {
          raw.end(error('28000', 'no pg_hba.conf entry: TLS required'));
          return;
        }
        const params = body.toString('utf8').split('\0');
        const user = params[params.indexOf('user') + 1];
        if (user !== cfg.user) {
          sock.end(error('28P01', `password authentication failed for user "${user ?? ''}"`));
          return;
        }
        sock.write(msg('R', Buffer.concat([int32(10), cstr('SCRAM-SHA-256'), Buffer.from([0])])));
        phase = 'sasl-first';
        continue;
      }
      if (buf.length < 5) return;
      const type = String.fromCharCode(buf[0]!);
      const len = buf.readInt32BE(1);
      if (buf.length < len + 1) return;
      const body = buf.subarray(5, len + 1);
      buf = buf.subarray(len + 1);
      if (phase === 'sasl-first') {
        // SASLInitialResponse: the mechanism, then the client-first-message.
        const nul = body.indexOf(0);
        const first = body.subarray(nul + 5).toString('utf8');
        const clientFirstBare = first.replace(/^[^,]*,[^,]*,/, '');
        const clientNonce = /(?:^|,)r=([^,]+)/.exec(clientFirstBare)?.[1] ?? '';
        const nonce = clientNonce + randomBytes(18).toString('base64');
        const serverFirst = `r=${nonce},s=${secret.salt},i=${secret.iterations}`;
        scram = { clientFirstBare, serverFirst, nonce };
        sock.write(msg('R', Buffer.concat([int32(11), Buffer.from(serverFirst, 'utf8')])));
        phase = 'sasl-final';
        continue;
      }
      if (phase === 'sasl-final') {
        const final = body.toString('utf8');
        const withoutProof = final.replace(/,p=[^,]*$/, '');
        const proof = Buffer.from(/,p=([^,]+)$/.exec(final)?.[1] ?? '', 'base64');
        const authMessage = `${scram!.clientFirstBare},${scram!.serverFirst},${withoutProof}`;
        const storedKey = Buffer.from(secret.storedKey, 'base64');
        const signature = createHmac('sha256', storedKey).update(authMessage).digest();
        const clientKey = Buffer.alloc(signature.length);
        for (let i = 0; i < signature.length; i++) clientKey[i] = (proof[i] ?? 0) ^ signature[i]!;
        const ok =
          proof.length === signature.length &&
          withoutProof.includes(`r=${scram!.nonce}`) &&
          timingSafeEqual(createHash('sha256').update(clientKey).digest(), storedKey);
        if (!ok) {
          sock.end(error('28P01', `password authentication failed for user "${cfg.user}"`));
          return;
        }
        const serverSignature = createHmac('sha256', Buffer.from(secret.serverKey, 'base64')).update(authMessage).digest();
        sock.write(
          Buffer.concat([
            msg('R', Buffer.concat([int32(12), Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8')])),
            msg('R', int32(0)),
            ...[
              ['server_version', '15.0 (simulated)'],
              ['client_encoding', 'UTF8'],
              ['DateStyle', 'ISO, MDY'],
              ['integer_datetimes', 'on'],
              ['standard_conforming_strings', 'on'],
              ['TimeZone', 'UTC'],
            ].map(([k, v]) => msg('S', Buffer.concat([cstr(k!), cstr(v!)]))),
            msg('K', Buffer.concat([int32(process.pid), int32(0)])),
            msg('Z', Buffer.from('I')),
          ]),
        );
        phase = 'ready';
        continue;
      }
      // Ready: what an observation sends. Every statement is answered with the endpoint's row.
      switch (type) {
        case 'P':
          sock.write(msg('1'));
          break;
        case 'B':
          sock.write(msg('2'));
          break;
        case 'D':
          // A statement is described with its parameters first; a portal with its row only.
          sock.write(body[0] === 0x53 ? Buffer.concat([msg('t', int16(0)), precomputed.desc]) : precomputed.desc);
          break;
        case 'E':
          sock.write(precomputed.row);
          break;
        case 'S':
          sock.write(msg('Z', Buffer.from('I')));
          break;
        case 'Q': {
          // ALTER ROLE CURRENT_USER PASSWORD '<verifier>' (Rotate pgherd's credentials): the herd's secret
          // changes for every member at once, as a replica replays it.
          const v = ALTER_PASSWORD.exec(body.toString('utf8'));
          if (v) {
            Object.assign(secret, { iterations: Number(v[1]), salt: v[2], storedKey: v[3], serverKey: v[4] });
            sock.write(Buffer.concat([msg('C', cstr('ALTER ROLE')), msg('Z', Buffer.from('I'))]));
            break;
          }
          // The risks' statement: the real instance's row for it.
          if (risksAnswer && body.includes("'freezeMaxAge'")) {
            sock.write(risksAnswer);
            break;
          }
          sock.write(Buffer.concat([precomputed.desc, precomputed.row, msg('Z', Buffer.from('I'))]));
          break;
        }
        case 'X':
          sock.end();
          return;
        default:
          break; // Flush, Close: nothing to answer
      }
    }
  };
  raw.on('data', onData);
}

async function main() {
  const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as SimConfig;
  const contexts = new Map(Object.entries(cfg.certs).map(([prefix, c]) => [prefix, tls.createSecureContext({ cert: c.cert, key: c.key })]));
  const servers: net.Server[] = [];
  await Promise.all(
    cfg.endpoints.map(
      (e) =>
        new Promise<void>((resolve, reject) => {
          const ctx = contexts.get(e.host.split('.').slice(0, 3).join('.'));
          if (!ctx) return void reject(new Error(`no certificate for ${e.host}`));
          const s = net.createServer((sock) => serve(sock, cfg, ctx, cfg.answers[e.answer], cfg.scram[e.secret]!, cfg.risks?.[e.answer]));
          s.once('error', reject);
          s.listen({ host: e.host, port: e.port, backlog: 64 }, () => resolve());
          servers.push(s);
        }),
    ),
  );
  console.log(`ready ${cfg.endpoints.length}`);
  const stop = () => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1]?.endsWith('sim-postgres.ts')) void main();
